/* sige info: what a weights file is (format, key layout, model, sizes), and
 * why it is refused when it is. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "sige/model.h"
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
    params += sige_weights_get(w, names[i])->numel;
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
  g_autoptr(sige_weights) w = sige_weights_load_file(path, &error);
  if (!w) return sige_cli_fail(error);
  const char *dict = sige_weights_metadata(w, "sige.source.dict");
  printf("file:       %s\nformat:     %s\n", path, sige_weights_metadata(w, "sige.source.format"));
  if (dict) printf("state dict: %s\n", dict);
  print_tensors(w);
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
