/* sige edit: snapshot the original label map, then regenerate only what the
 * edit changed. */
#include <stdio.h>

#include "cli_input.h"
#include "cli_output.h"
#include "commands.h"
#include "sige-app/edit_params.h"
#include "sige-app/image_files.h"
#include "sige-app/model_spec.h"
#include "sige-app/names.h"
#include "sige-app/png_io.h"
#include "sige/sampler.h"
#include "sige/session.h"

int sige_cmd_edit(int argc, char **argv) {
  g_autofree char *model_spec = NULL, *orig = NULL, *edited = NULL, *out_path = NULL,
                  *orig_inst = NULL, *edit_inst = NULL, *dense_out = NULL, *sampler = NULL,
                  *device_name = NULL, *steps_text = NULL, *strength_text = NULL;
  sige_edit_params params;
  sige_edit_params_init(&params);
  int threads = 0, seed = 0, budget_mib = 0;
  gboolean fp16 = FALSE, dense = FALSE;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_STRING, &model_spec,
       "spade:|gancomp:[CONFIG:]|ddpm:|pd:[HEAD_DIM:]WEIGHTS (CONFIG e.g. 32_32_32_48_32_24_24_32), "
       "or sd:FILE_OR_FOLDER (its options: sige edit --model sd: --help); default: the shipped "
       "street GauGAN for a label map, the church DDPM for a picture",
       "SPEC"},
      {"original", 'a', 0, G_OPTION_ARG_FILENAME, &orig, "original label map (image for ddpm/pd) PNG", "FILE"},
      {"edited", 'b', 0, G_OPTION_ARG_FILENAME, &edited, "edited label map (image for ddpm/pd) PNG", "FILE"},
      {"original-instance", 0, 0, G_OPTION_ARG_FILENAME, &orig_inst, "instance ids of the original", "FILE"},
      {"edited-instance", 0, 0, G_OPTION_ARG_FILENAME, &edit_inst, "instance ids of the edit", "FILE"},
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "output PNG", "FILE"},
      {"dense-out", 0, 0, G_OPTION_ARG_FILENAME, &dense_out, "also write the snapshot's output", "FILE"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "threads", "N"},
      {"sampler", 0, 0, G_OPTION_ARG_STRING, &sampler, "DDPM: ddim or dpmsolver++ (default); PD: pd (the only one)", "NAME"},
      {"steps", 0, 0, G_OPTION_ARG_STRING, &steps_text, "DDPM: denoising steps (default 10); PD: steps, at most the noise level (default: equal to it)", "N"},
      {"strength", 0, 0, G_OPTION_ARG_STRING, &strength_text, "DDPM: noise level / 1000 (default 0.75); PD: noise level / 8 of the 8-step schedule (default 0.625, level 5)", "S"},
      {"seed", 0, 0, G_OPTION_ARG_INT, &seed, "DDPM/PD: noise seed (default 0)", "S"},
      {"fp16-caches", 0, 0, G_OPTION_ARG_NONE, &fp16, "store activation caches as fp16", NULL},
      {"memory-budget", 0, 0, G_OPTION_ARG_INT, &budget_mib,
       "refuse a snapshot whose caches need more than MIB mebibytes, saying what fits "
       "(default: no limit; the plug-ins' Memory budget)", "MIB"},
      {"dense", 0, 0, G_OPTION_ARG_NONE, &dense,
       "compute the edit with full passes (same semantics: the reference for the sparse result)", NULL},
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
  if (!orig || !edited || !out_path) {
    fprintf(stderr, "sige edit: --original, --edited and --out are required\n");
    return 2;
  }
  /* before the model loads and runs, not after */
  if (!sige_png_check_writable(out_path, &error) ||
      (dense_out && !sige_png_check_writable(dense_out, &error)))
    return sige_cli_fail(error);
  /* a bad option value is a usage error (status 2), as a missing option */
  if ((steps_text && !sige_edit_steps_parse("--steps", steps_text, &params.steps, &error)) ||
      (strength_text &&
       !sige_edit_strength_parse("--strength", strength_text, &params.strength, &error)))
    return sige_cli_fail(error) + 1;
  if (budget_mib < 0) {
    fprintf(stderr, "sige edit: --memory-budget %d: expected a number of MiB, 1 or more (0: no "
                    "limit)\n", budget_mib);
    return 2;
  }
  params.memory_budget = (size_t)budget_mib << 20;
  /* no --model: the shipped default for what the original holds */
  sige_input_kind holds = SIGE_INPUT_LABELS;
  if (!model_spec && (!sige_cli_guess_input_kind(orig, &holds, &error) ||
                      !(model_spec = sige_cli_default_model(holds, &error))))
    return sige_cli_fail(error);
  params.n_threads = threads;
  params.fp16_caches = fp16;
  g_autoptr(sige_model) model = sige_model_load_spec(model_spec, &error);
  if (!model) {
    sige_edit_explain_nomem(&error, SIGE_EDIT_PHASE_WEIGHTS, &params, SIGE_EDIT_UI_CLI);
    return sige_cli_fail(error);
  }
  params.seed = (guint64)seed;
  if (!sige_device_from_option("--device", device_name, &params.device, &error))
    return sige_cli_fail(error);
  if (sampler) {
    sige_sampler_kind kind;
    /* a bad option value is a usage error (status 2), as a missing option */
    if (!sige_sampler_kind_parse("--sampler", sampler, &kind, &error))
      return sige_cli_fail(error) + 1;
    params.sampler = (int)kind;
  }
  sige_session_options opts;
  if (!sige_edit_session_options(model, &params, &opts, &error)) return sige_cli_fail(error) + 1;
  /* any difference is then "more than" the threshold: the same edit, full passes */
  if (dense) opts.full_pass_above = -1.0;
  g_autoptr(sige_tensor) a = NULL, b = NULL;
  if (!(a = sige_cli_read_input(model, orig, orig_inst, &error)) ||
      !(b = sige_cli_read_input(model, edited, edit_inst, &error))) {
    sige_edit_explain_nomem(&error, SIGE_EDIT_PHASE_IMAGE, &params, SIGE_EDIT_UI_CLI);
    return sige_cli_fail(error);
  }
  g_autoptr(sige_session) s = sige_session_new(model, &opts, &error);
  if (!s) {
    sige_edit_explain_nomem(&error, SIGE_EDIT_PHASE_CACHES, &params, SIGE_EDIT_UI_CLI);
    return sige_cli_fail(error);
  }
  g_autoptr(sige_tensor) first = NULL, out = NULL;
  if (!sige_session_snapshot(s, a, &first, &error)) {
    sige_edit_explain_nomem(&error, SIGE_EDIT_PHASE_SNAPSHOT, &params, SIGE_EDIT_UI_CLI);
    return sige_cli_fail(error);
  }
  /* the session keeps its own copy of the current input */
  g_clear_pointer(&a, sige_tensor_free);
  const sige_session_stats st0 = *sige_session_last_stats(s);
  sige_rect r;
  if (!sige_session_regenerate(s, b, NULL, NULL, NULL, &out, &r, &error)) {
    sige_edit_explain_nomem(&error, SIGE_EDIT_PHASE_SPARSE, &params, SIGE_EDIT_UI_CLI);
    return sige_cli_fail(error);
  }
  const sige_session_stats *st = sige_session_last_stats(s);
  if (!sige_cli_write_png(out, out_path, &error)) return sige_cli_fail(error);
  if (dense_out && !sige_cli_write_png(first, dense_out, &error)) return sige_cli_fail(error);
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
