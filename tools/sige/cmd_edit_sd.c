/* sige edit / sige inpaint with a Stable Diffusion checkpoint (--model
 * sd:FILE_OR_FOLDER): snapshot on the original, then the sparse
 * regenerate of the edit (img2img: the difference of the two pictures;
 * inpainting: the mask), or with --dense the same task with full passes. */
#include <stdio.h>
#include <string.h>

#include "cli_output.h"
#include "commands.h"
#include "sige-app/edit_params.h"
#include "sige-app/names.h"
#include "sige-app/png_io.h"
#include "sige-app/sd_app.h"
#include "sige/error.h"
#include "sige/sd_pipeline.h"

/* The vocabulary of single files: the installed copy, else the source
 * tree's (a run from the build tree). */
static const char *bpe_path(void) {
  return g_file_test(SIGE_CLIP_VOCAB_INSTALLED, G_FILE_TEST_EXISTS) ? SIGE_CLIP_VOCAB_INSTALLED
                                                                     : SIGE_CLIP_VOCAB_SOURCE;
}

gboolean sige_cli_model_is_sd(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    if ((!strcmp(argv[i], "--model") || !strcmp(argv[i], "-m")) && i + 1 < argc)
      v = argv[i + 1];
    else if (g_str_has_prefix(argv[i], "--model="))
      v = argv[i] + 8;
    if (v) return g_str_has_prefix(v, "sd:");
  }
  return FALSE;
}

static gboolean picture_size_ok(const char *path, const sige_tensor *t, GError **error) {
  const int h = (int)t->shape[2], w = (int)t->shape[3];
  if (w % 8 == 0 && h % 8 == 0) return TRUE;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
              "%s: %d x %d; Stable Diffusion needs both sides multiples of 8", path, w, h);
  return FALSE;
}

static double seconds_since(gint64 t0) { return (g_get_monotonic_time() - t0) / 1e6; }

int sige_cmd_edit_sd(int argc, char **argv, gboolean inpaint) {
  g_autofree char *model_spec = NULL, *orig = NULL, *edited = NULL, *mask_path = NULL,
                  *out_path = NULL, *dense_out = NULL, *sampler = NULL, *prompt = NULL,
                  *negative = NULL, *device_name = NULL, *steps_text = NULL,
                  *strength_text = NULL;
  int threads = 0, budget_mib = 0;
  gint64 seed = 0;
  double guidance = 7.5;
  gboolean fp16 = FALSE, dense = FALSE;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_STRING, &model_spec,
       "sd:FILE_OR_FOLDER (an SD 1.x single file, .safetensors or .ckpt, or a diffusers folder)", "SPEC"},
      {"prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "what the picture shows (required)", "TEXT"},
      {"negative-prompt", 0, 0, G_OPTION_ARG_STRING, &negative, "what to steer away from (default: empty)", "TEXT"},
      {"guidance", 0, 0, G_OPTION_ARG_DOUBLE, &guidance, "classifier-free guidance scale (default 7.5)", "G"},
      {"steps", 0, 0, G_OPTION_ARG_STRING, &steps_text, "steps of the whole schedule (default 50)", "N"},
      {"strength", 0, 0, G_OPTION_ARG_STRING, &strength_text,
       "edit: the fraction of the steps run, (0, 1] (default 0.75)", "S"},
      {"sampler", 0, 0, G_OPTION_ARG_STRING, &sampler, "ddim or dpmsolver++ (default ddim)", "NAME"},
      {"seed", 0, 0, G_OPTION_ARG_INT64, &seed, "noise seed (default 0)", "N"},
      {"original", 'a', 0, G_OPTION_ARG_FILENAME, &orig, "original picture (PNG, sides multiples of 8)", "FILE"},
      {"edited", 'b', 0, G_OPTION_ARG_FILENAME, &edited, "edit: the edited picture (PNG)", "FILE"},
      {"mask", 0, 0, G_OPTION_ARG_FILENAME, &mask_path, "inpaint: the mask (PNG; white = regenerate)", "FILE"},
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "output PNG", "FILE"},
      {"dense-out", 0, 0, G_OPTION_ARG_FILENAME, &dense_out,
       "also write the snapshot's picture (edit: the original's result; inpaint: the decoded original)", "FILE"},
      {"dense", 0, 0, G_OPTION_ARG_NONE, &dense, "compute the edit with full passes (the reference for the sparse result)", NULL},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "threads", "N"},
      {"fp16-caches", 0, 0, G_OPTION_ARG_NONE, &fp16, "store activation caches as fp16", NULL},
      {"memory-budget", 0, 0, G_OPTION_ARG_INT, &budget_mib, "refuse a snapshot whose caches need more than MIB mebibytes", "MIB"},
      {"device", 'd', 0, G_OPTION_ARG_STRING, &device_name, SIGE_CLI_DEVICE_HELP, "DEVICE"},
      {NULL}};
  g_autoptr(GOptionContext) oc = g_option_context_new("");
  g_option_context_set_summary(oc, inpaint
      ? "Stable Diffusion inpainting: regenerate the mask's white area of the original, "
        "computing only what it reaches."
      : "Stable Diffusion img2img (SDEdit): snapshot the original, then regenerate only what "
        "the edited picture changed.");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  const char *cmd = inpaint ? "sige inpaint" : "sige edit";
  if (!g_option_context_parse(oc, &argc, &argv, &error)) return sige_cli_fail(error) + 1;
  if (!model_spec || !orig || !out_path || (inpaint ? !mask_path : !edited)) {
    fprintf(stderr, "%s: --model, --original, %s and --out are required\n", cmd,
            inpaint ? "--mask" : "--edited");
    return 2;
  }
  if (!g_str_has_prefix(model_spec, "sd:") || !model_spec[3]) {
    fprintf(stderr, "%s: --model %s: expected sd:FILE_OR_FOLDER\n", cmd, model_spec);
    return 2;
  }
  if (!prompt) {
    fprintf(stderr, "%s: --prompt is required with an sd: model (it may be \"\")\n", cmd);
    return 2;
  }
  sige_sd_params prm;
  sige_sd_params_init(&prm);
  prm.task = inpaint ? SIGE_SD_INPAINT : SIGE_SD_IMG2IMG;
  if ((steps_text && !sige_edit_steps_parse("--steps", steps_text, &prm.steps, &error)) ||
      (strength_text && !sige_edit_strength_parse("--strength", strength_text, &prm.strength, &error)))
    return sige_cli_fail(error) + 1;
  if (sampler) {
    if (!sige_sampler_kind_parse("--sampler", sampler, &prm.sampler, &error))
      return sige_cli_fail(error) + 1;
    if (!sige_edit_sampler_fits(SIGE_MODEL_SD_UNET, prm.sampler)) {
      fprintf(stderr, "%s: --sampler %s: Stable Diffusion runs ddim or dpmsolver++\n", cmd,
              sampler);
      return 2;
    }
  }
  if (!(guidance >= 0.0 && guidance <= 100.0)) {
    fprintf(stderr, "%s: --guidance %g: expected 0 .. 100\n", cmd, guidance);
    return 2;
  }
  if (budget_mib < 0 || seed < 0) {
    fprintf(stderr, "%s: --memory-budget and --seed take numbers >= 0\n", cmd);
    return 2;
  }
  prm.guidance = guidance;
  prm.seed = (guint64)seed;
  prm.n_threads = threads;
  prm.fp16_caches = fp16;
  prm.memory_budget = (size_t)budget_mib << 20;
  if (!sige_device_from_option("--device", device_name, &prm.device, &error))
    return sige_cli_fail(error);
  if (!sige_png_check_writable(out_path, &error) ||
      (dense_out && !sige_png_check_writable(dense_out, &error)))
    return sige_cli_fail(error);

  g_autoptr(sige_tensor) a = sige_sd_app_read_picture(orig, &error);
  if (!a || !picture_size_ok(orig, a, &error)) return sige_cli_fail(error);
  const int w = (int)a->shape[3], h = (int)a->shape[2];
  g_autoptr(sige_tensor) b = NULL;
  g_autoptr(sige_mask) mask = NULL;
  if (inpaint) {
    if (!(mask = sige_sd_app_read_mask(mask_path, w, h, &error))) return sige_cli_fail(error);
  } else {
    if (!(b = sige_sd_app_read_picture(edited, &error))) return sige_cli_fail(error);
    if (b->shape[2] != h || b->shape[3] != w) {
      fprintf(stderr, "sige: %s is %d x %d; the original %s is %d x %d\n", edited,
              (int)b->shape[3], (int)b->shape[2], orig, w, h);
      return 1;
    }
  }
  sige_sd_app_models m;
  if (!sige_sd_app_load(model_spec + 3, w, h, bpe_path(), &m, &error)) return sige_cli_fail(error);
  int rc = 1;
  g_autoptr(sige_tensor) cond = NULL, uncond = NULL, first = NULL, out = NULL;
  g_autoptr(sige_sd_pipeline) p = NULL;
  const sige_sd_models models = {m.unet, m.encoder, m.decoder};
  /* The published runner stops the inpainting mask pyramid at 8, SD 1.x's
   * smallest UNet level at 512 x 512; smaller models or pictures have a
   * smaller last level, which the pyramid must reach. */
  const sige_sd_unet_config *uc = sige_model_sd_unet_config(m.unet);
  const int last_h = uc->latent_h >> (uc->n_channel_mult - 1);
  const int last_w = uc->latent_w >> (uc->n_channel_mult - 1);
  prm.inpaint_min_res = MAX(1, MIN(prm.inpaint_min_res, MIN(last_h, last_w)));
  if (!(cond = sige_sd_app_context(&m, prompt, threads, &error)) ||
      !(uncond = sige_sd_app_context(&m, negative ? negative : "", threads, &error)) ||
      !(p = sige_sd_pipeline_new(&models, &prm, &error)) ||
      !sige_sd_pipeline_set_contexts(p, cond, uncond, &error))
    goto done;
  gint64 t0 = g_get_monotonic_time();
  guint64 macs0 = sige_sd_pipeline_macs(p);
  if (!sige_sd_pipeline_snapshot(p, a, NULL, NULL, NULL, &first, &error)) goto done;
  const double snap_s = seconds_since(t0);
  const guint64 snap_macs = sige_sd_pipeline_macs(p) - macs0;
  t0 = g_get_monotonic_time();
  macs0 = sige_sd_pipeline_macs(p);
  const gboolean ok = dense ? sige_sd_pipeline_run_dense(p, inpaint ? a : b, mask, NULL, NULL,
                                                         NULL, NULL, &out, &error)
                            : sige_sd_pipeline_regenerate(p, b, mask, NULL, NULL, NULL, NULL,
                                                          &out, &error);
  if (!ok) goto done;
  const double edit_s = seconds_since(t0);
  const guint64 edit_macs = sige_sd_pipeline_macs(p) - macs0;
  if (!sige_cli_write_png(out, out_path, &error) ||
      (dense_out && !sige_cli_write_png(first, dense_out, &error)))
    goto done;
  printf("task            %s, %d of %d %s steps, guidance %g, seed %" G_GINT64_FORMAT "\n",
         inpaint ? "inpainting" : "img2img", sige_sd_pipeline_steps(p), prm.steps,
         sige_sampler_kind_name(prm.sampler), prm.guidance, seed);
  printf("snapshot (full) %8.1f ms  %8.2f GMACs\n", snap_s * 1e3, snap_macs / 1e9);
  printf("edit (%s) %8.1f ms  %8.2f GMACs  (%.1fx fewer MACs)\n", dense ? "full  " : "sparse",
         edit_s * 1e3, edit_macs / 1e9, edit_macs ? (double)snap_macs / edit_macs : 0.0);
  printf("wrote %s\n", out_path);
  rc = 0;
done:
  sige_sd_app_models_clear(&m);
  return error ? sige_cli_fail(error) : rc;
}
