/* sige edit: snapshot the original label map, then regenerate only what the
 * edit changed. */
#include <stdio.h>

#include <string.h>

#include "commands.h"
#include "sige-app/names.h"
#include "image_input.h"
#include "label_input.h"
#include "sige/sampler.h"
#include "sige/session.h"

int sige_cmd_edit(int argc, char **argv) {
  g_autofree char *model_spec = NULL, *orig = NULL, *edited = NULL, *out_path = NULL,
                  *orig_inst = NULL, *edit_inst = NULL, *dense_out = NULL, *sampler = NULL,
                  *device_name = NULL;
  int threads = 0, steps = 0, seed = 0;
  double strength = 0;
  gboolean fp16 = FALSE;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_STRING, &model_spec,
       "spade:|gancomp:[CONFIG:]|ddpm:|pd:[HEAD_DIM:]WEIGHTS (CONFIG e.g. 32_32_32_48_32_24_24_32)", "SPEC"},
      {"original", 'a', 0, G_OPTION_ARG_FILENAME, &orig, "original label map (image for ddpm/pd) PNG", "FILE"},
      {"edited", 'b', 0, G_OPTION_ARG_FILENAME, &edited, "edited label map (image for ddpm/pd) PNG", "FILE"},
      {"original-instance", 0, 0, G_OPTION_ARG_FILENAME, &orig_inst, "instance ids of the original", "FILE"},
      {"edited-instance", 0, 0, G_OPTION_ARG_FILENAME, &edit_inst, "instance ids of the edit", "FILE"},
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "output PNG", "FILE"},
      {"dense-out", 0, 0, G_OPTION_ARG_FILENAME, &dense_out, "also write the snapshot's output", "FILE"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "threads", "N"},
      {"sampler", 0, 0, G_OPTION_ARG_STRING, &sampler, "DDPM: ddim or dpmsolver++ (default); PD: pd (the only one)", "NAME"},
      {"steps", 0, 0, G_OPTION_ARG_INT, &steps, "DDPM: denoising steps (default 10); PD: steps, at most the noise level (default: equal to it)", "N"},
      {"strength", 0, 0, G_OPTION_ARG_DOUBLE, &strength, "DDPM: noise level / 1000 (default 0.75); PD: noise level / 8 of the 8-step schedule (default 0.625, level 5)", "S"},
      {"seed", 0, 0, G_OPTION_ARG_INT, &seed, "DDPM/PD: noise seed (default 0)", "S"},
      {"fp16-caches", 0, 0, G_OPTION_ARG_NONE, &fp16, "store activation caches as fp16", NULL},
      {"device", 'd', 0, G_OPTION_ARG_STRING, &device_name, SIGE_CLI_DEVICE_HELP, "DEVICE"},
      {NULL}};
  g_autoptr(GOptionContext) oc = g_option_context_new("");
  g_option_context_set_summary(oc, "Regenerate only the edited region with spatially sparse "
                                   "inference: label maps for spade: and gancomp: models, RGB "
                                   "images (SDEdit) for ddpm: and pd: models.\n\n"
                                   "PD models (Progressive Distillation, 8-step schedule) use the "
                                   "PD sampler: --strength S starts at noise level round(8 S) "
                                   "(at least 1) and --steps N takes N of those levels (N <= the "
                                   "level; the default takes every level).");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &error)) return sige_cli_fail(error);
  if (!model_spec || !orig || !edited || !out_path) {
    fprintf(stderr, "sige edit: --model, --original, --edited and --out are required\n");
    return 2;
  }
  g_autoptr(sige_model) model = sige_cli_load_model(model_spec, &error);
  if (!model) return sige_cli_fail(error);
  sige_session_options opts;
  sige_session_options_init(&opts);
  opts.n_threads = threads;
  opts.fp16_caches = fp16;
  if (!sige_device_from_option("--device", device_name, &opts.device, &error)) return sige_cli_fail(error);
  g_autoptr(sige_tensor) a = NULL, b = NULL;
  const sige_model_kind mk = sige_model_get_kind(model);
  if (mk == SIGE_MODEL_DDPM_UNET || mk == SIGE_MODEL_PD_UNET) {
    const int size = mk == SIGE_MODEL_PD_UNET ? sige_model_pd_config(model)->image_size
                                              : sige_model_ddpm_config(model)->image_size;
    sige_sampler_kind kind = SIGE_SAMPLER_DPM_SOLVER_PP;
    if (mk == SIGE_MODEL_PD_UNET) {
      kind = SIGE_SAMPLER_PD;
      if (sampler && strcmp(sampler, "pd")) {
        fprintf(stderr, "sige edit: --sampler %s: a PD UNet samples with its own sampler (pd)\n",
                sampler);
        return 2;
      }
    } else if (sampler && !strcmp(sampler, "ddim")) {
      kind = SIGE_SAMPLER_DDIM;
    } else if (sampler && strcmp(sampler, "dpmsolver++")) {
      fprintf(stderr, "sige edit: --sampler %s: expected ddim or dpmsolver++\n", sampler);
      return 2;
    }
    if (strength < 0 || strength > 1) {
      fprintf(stderr, "sige edit: --strength %g: expected a value in (0, 1]\n", strength);
      return 2;
    }
    opts.sdedit = TRUE;
    sige_sampler_config_init(&opts.sampler, kind);
    /* the noise level is strength * the schedule's length (1000 for DDPM, 8
     * for PD), at least 1; the steps are at most the noise level */
    if (strength > 0) {
      const int level = (int)(strength * opts.sampler.total_steps + 0.5);
      opts.sampler.noise_level = MAX(1, level);
    }
    if (steps > 0)
      opts.sampler.sample_steps = steps;
    else if (mk == SIGE_MODEL_PD_UNET)
      opts.sampler.sample_steps = opts.sampler.noise_level; /* one step per level */
    if (mk == SIGE_MODEL_PD_UNET && opts.sampler.sample_steps > opts.sampler.noise_level) {
      fprintf(stderr,
              "sige edit: --steps %d: a PD model takes at most one step per noise level "
              "(%d here: --strength %g of %d levels)\n",
              opts.sampler.sample_steps, opts.sampler.noise_level,
              (double)opts.sampler.noise_level / opts.sampler.total_steps,
              opts.sampler.total_steps);
      return 2;
    }
    opts.seed = (guint64)seed;
    if (!(a = sige_cli_read_image(orig, size, size, &error)) ||
        !(b = sige_cli_read_image(edited, size, size, &error)))
      return sige_cli_fail(error);
  } else {
    if (!(a = sige_cli_semantic_from_png(model, orig, orig_inst, &error)) ||
        !(b = sige_cli_semantic_from_png(model, edited, edit_inst, &error)))
      return sige_cli_fail(error);
  }
  g_autoptr(sige_session) s = sige_session_new(model, &opts, &error);
  g_autoptr(sige_tensor) first = NULL, out = NULL;
  if (!s || !sige_session_snapshot(s, a, &first, &error)) return sige_cli_fail(error);
  const sige_session_stats st0 = *sige_session_last_stats(s);
  sige_rect r;
  if (!sige_session_regenerate(s, b, NULL, NULL, NULL, &out, &r, &error)) return sige_cli_fail(error);
  const sige_session_stats *st = sige_session_last_stats(s);
  if (!sige_cli_write_image(out, out_path, &error)) return sige_cli_fail(error);
  if (dense_out && !sige_cli_write_image(first, dense_out, &error)) return sige_cli_fail(error);
  printf("edit ratio      %.2f %% of the pixels (dilated difference)\n", 100.0 * st->edit_ratio);
  printf("snapshot (full) %8.1f ms  %8.2f GMACs\n", st0.seconds * 1e3, st0.dense_macs / 1e9);
  printf("edit (%s) %8.1f ms  %8.2f GMACs  (%.1fx fewer MACs)\n",
         st->was_sparse ? "sparse" : (st->macs ? "full  " : "none  "), st->seconds * 1e3,
         st->macs / 1e9, st->macs ? (double)st0.dense_macs / st->macs : 0.0);
  printf("changed region  x %d, y %d, %d x %d\n", r.x, r.y, r.width, r.height);
  printf("cache memory    %.1f MiB%s\n", sige_session_cache_bytes(s) / 1048576.0,
         fp16 ? " (fp16)" : "");
  printf("device          %s\n", sige_session_device_info(s));
  printf("wrote %s\n", out_path);
  return 0;
}
