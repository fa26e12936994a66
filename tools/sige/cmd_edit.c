/* sige edit: snapshot the original label map, then regenerate only what the
 * edit changed. */
#include <stdio.h>

#include "commands.h"
#include "label_input.h"
#include "sige/session.h"

int sige_cmd_edit(int argc, char **argv) {
  g_autofree char *model_spec = NULL, *orig = NULL, *edited = NULL, *out_path = NULL,
                  *orig_inst = NULL, *edit_inst = NULL, *dense_out = NULL;
  int threads = 0;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_STRING, &model_spec, "spade:WEIGHTS.safetensors", "SPEC"},
      {"original", 'a', 0, G_OPTION_ARG_FILENAME, &orig, "original label map PNG", "FILE"},
      {"edited", 'b', 0, G_OPTION_ARG_FILENAME, &edited, "edited label map PNG", "FILE"},
      {"original-instance", 0, 0, G_OPTION_ARG_FILENAME, &orig_inst, "instance ids of the original", "FILE"},
      {"edited-instance", 0, 0, G_OPTION_ARG_FILENAME, &edit_inst, "instance ids of the edit", "FILE"},
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "output PNG", "FILE"},
      {"dense-out", 0, 0, G_OPTION_ARG_FILENAME, &dense_out, "also write the snapshot's output", "FILE"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "threads", "N"},
      {NULL}};
  g_autoptr(GOptionContext) oc = g_option_context_new("");
  g_option_context_set_summary(oc, "Regenerate only the edited region of a label map with "
                                   "spatially sparse inference.");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &error)) return sige_cli_fail(error);
  if (!model_spec || !orig || !edited || !out_path) {
    fprintf(stderr, "sige edit: --model, --original, --edited and --out are required\n");
    return 2;
  }
  g_autoptr(sige_model) model = sige_cli_load_model(model_spec, &error);
  if (!model) return sige_cli_fail(error);
  g_autoptr(sige_tensor) a = sige_cli_semantic_from_png(model, orig, orig_inst, &error);
  if (!a) return sige_cli_fail(error);
  g_autoptr(sige_tensor) b = sige_cli_semantic_from_png(model, edited, edit_inst, &error);
  if (!b) return sige_cli_fail(error);
  sige_session_options opts;
  sige_session_options_init(&opts);
  opts.n_threads = threads;
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
  printf("cache memory    %.1f MiB\n", sige_session_cache_bytes(s) / 1048576.0);
  printf("wrote %s\n", out_path);
  return 0;
}
