/* sige info: what a weights file is (format, key layout, model, sizes), and
 * why it is refused when it is. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/sd_checkpoint.h"
#include "sige/weights.h"

static void print_model(const sige_model *m) {
  int64_t in[4];
  sige_model_input_shape(m, in);
  printf("model:      %s\n", sige_model_kind_name(sige_model_get_kind(m)));
  g_autoptr(GString) settings = g_string_new(NULL);
  sige_model_describe_settings(m, settings);
  fputs(settings->str, stdout);
  printf("  %-22s[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]\n",
         "input shape", in[0], in[1], in[2], in[3]);
  /* what the model reads of the file: its parameter list (a spectral-norm
   * conv reads weight_orig, weight_u and weight_v for its one weight) */
  g_autoptr(sige_param_list) l = sige_model_params(m, NULL);
  guint64 params = 0;
  for (guint i = 0; l && i < sige_param_list_length(l); i++)
    params += (guint64)sige_param_list_get(l, i)->numel;
  if (l)
    printf("  %-22s%u tensors, %" G_GUINT64_FORMAT " parameters\n", "reads",
           sige_param_list_length(l), params);
}

static void print_tensors(const sige_weights *w) {
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  guint64 params = 0;
  guint per_dtype[SIGE_DTYPE_BOOL + 1] = {0};
  for (guint i = 0; i < n; i++) {
    /* from the index: converting every tensor would cost the whole file in
     * float32 (16 GB for an SD training checkpoint) */
    int ndim;
    int64_t shape[SIGE_MAX_DIMS];
    guint64 numel = 1;
    if (sige_weights_shape(w, names[i], &ndim, shape))
      for (int d = 0; d < ndim; d++) numel *= (guint64)shape[d];
    params += numel;
    sige_dtype d = sige_weights_dtype(w, names[i]);
    if ((unsigned)d <= SIGE_DTYPE_BOOL) per_dtype[d]++;
  }
  printf("tensors:    %u\nparameters: %" G_GUINT64_FORMAT " (%.2f M)\ndtypes:     ", n, params,
         params / 1e6);
  gboolean first = TRUE;
  for (int d = 0; d <= SIGE_DTYPE_BOOL; d++) {
    if (!per_dtype[d]) continue;
    printf("%s%s x %u", first ? "" : ", ", sige_dtype_name((sige_dtype)d), per_dtype[d]);
    first = FALSE;
  }
  printf("\n");
}

/* The parts of a Stable Diffusion checkpoint with their configurations
 * (inferred from the shapes, nothing loaded); FALSE when a part is
 * refused (its error printed). */
static gboolean print_sd(const sige_sd_checkpoint *ck) {
  /* in the order of sige_model_load_parts: UNet, text encoder, VAE */
  static const sige_sd_part order[] = {SIGE_SD_PART_UNET, SIGE_SD_PART_TEXT_ENCODER,
                                       SIGE_SD_PART_VAE};
  gboolean ok = TRUE;
  g_autoptr(GString) body = g_string_new(NULL);
  g_autoptr(GString) kinds = g_string_new(NULL);
  for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
    const sige_sd_part part = order[i];
    if (!sige_sd_checkpoint_has_part(ck, part)) {
      g_string_append_printf(body, "part %-13s absent\n", sige_sd_part_name(part));
      continue;
    }
    const char *file = sige_sd_checkpoint_part_path(ck, part);
    g_string_append_printf(body, "part %-13s %s\n", sige_sd_part_name(part), file);
    g_autoptr(GError) error = NULL;
    g_autoptr(sige_weights) w = sige_sd_checkpoint_part(ck, part, 0, &error);
    g_autoptr(GString) d = g_string_new(NULL);
    if (w && sige_model_describe_weights(w, file, d, kinds, &error)) {
      guint n;
      sige_weights_names(w, &n);
      g_string_append_printf(body, "  %-22s%u (%s names)\n", "tensors", n,
                             sige_weights_metadata(w, "sige.source.layout"));
      g_string_append(body, d->str);
    } else {
      /* a part without a model class in this build is information, a part
       * that cannot be read an error */
      g_string_append_printf(body, "  %s\n", error->message);
      if (!w || error->code != SIGE_ERROR_UNSUPPORTED) ok = FALSE;
    }
  }
  printf("Stable Diffusion checkpoint (%s)\nparts:      %s\n", sige_sd_checkpoint_format(ck),
         kinds->str);
  fputs(body->str, stdout);
  if (sige_sd_checkpoint_has_ema(ck))
    printf("EMA:        model_ema.* present; the UNet part is the non-EMA one (as SD's "
           "v1-inference.yaml, use_ema: False)\n");
  const sige_sd_schedule *s = sige_sd_checkpoint_schedule(ck);
  printf("schedule:   %s %g .. %g over %d%s\n",
         s->schedule == SIGE_SD_BETAS_SCALED_LINEAR ? "scaled_linear" : "linear", s->beta_start,
         s->beta_end, s->num_train_timesteps, s->from_file ? "" : " (SD 1.x default)");
  if (sige_sd_checkpoint_vocab_json(ck))
    printf("tokenizer:  %s + merges.txt\n", sige_sd_checkpoint_vocab_json(ck));
  else
    printf("tokenizer:  none in the checkpoint (the shipped openai CLIP vocabulary)\n");
  return ok;
}

int sige_cmd_info(int argc, char **argv) {
  g_autoptr(GOptionContext) oc = g_option_context_new("FILE");
  g_option_context_set_summary(oc,
                               "Describe a weights file: safetensors or a PyTorch checkpoint "
                               "(.pth/.ckpt/.bin, zip or legacy).  Exits 1 when it is refused.");
  GError *error = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &error)) return sige_cli_fail(error);
  if (argc != 2) {
    fprintf(stderr, "sige info: expected one FILE\n");
    return 2;
  }
  const char *path = argv[1];
  if (sige_sd_path_is_folder(path)) {
    g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(path, &error);
    if (!ck) return sige_cli_fail(error);
    printf("folder:     %s\n", path);
    return print_sd(ck) ? 0 : 1;
  }
  g_autoptr(sige_weights) w = sige_weights_load_file(path, &error);
  if (!w) return sige_cli_fail(error);
  const char *dict = sige_weights_metadata(w, "sige.source.dict");
  printf("file:       %s\nformat:     %s\n", path, sige_weights_metadata(w, "sige.source.format"));
  if (dict) printf("state dict: %s\n", dict);
  print_tensors(w);
  /* a file with SD parts (a whole SD checkpoint, or one of its parts saved
   * alone): each part and its configuration */
  g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(path, NULL);
  if (ck) return print_sd(ck) ? 0 : 1;
  if (!sige_weights_canonicalize(&w, &error)) {
    printf("layout:     unknown\n");
    return sige_cli_fail(error);
  }
  printf("layout:     %s\n", sige_weights_metadata(w, "sige.source.layout"));
  /* the model is built from the file again: the inference of its
   * configuration belongs to sige_model_load */
  /* an SD 1.x single file holds several models: each is described */
  g_autoptr(GPtrArray) parts = sige_model_load_parts(path, &error);
  if (!parts) return sige_cli_fail(error);
  if (parts->len > 1) {
    printf("parts:      ");
    for (guint i = 0; i < parts->len; i++)
      printf("%s%s", i ? ", " : "",
             sige_model_kind_name(sige_model_get_kind(g_ptr_array_index(parts, i))));
    printf("\n");
  }
  for (guint i = 0; i < parts->len; i++) print_model(g_ptr_array_index(parts, i));
  return 0;
}
