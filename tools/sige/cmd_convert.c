/* sige convert: any weights file we read -> safetensors with canonical names. */
#include <stdio.h>

#include "commands.h"
#include "sige/weights.h"

/* metadata that still means something in the converted file */
static const char *const kept_metadata[] = {
  "sige.contain_instance", "sige.crop_size", "sige.aspect_ratio",
  "sige.num_upsampling_layers", "sige.image_size", "sige.model", "sige.note",
  "sige.source.format", "sige.source.dict", "sige.source.layout",
};

int sige_cmd_convert(int argc, char **argv) {
  gboolean f16 = FALSE;
  GOptionEntry entries[] = {
      {"f16", 0, 0, G_OPTION_ARG_NONE, &f16, "write F16 instead of F32", NULL},
      {NULL}};
  g_autoptr(GOptionContext) oc = g_option_context_new("IN OUT.safetensors");
  g_option_context_set_summary(oc,
                               "Convert a weights file (safetensors, or a PyTorch checkpoint in "
                               "zip or legacy form) to safetensors with our canonical key names.");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &error)) return sige_cli_fail(error);
  if (argc != 3) {
    fprintf(stderr, "sige convert: expected IN and OUT.safetensors\n");
    return 2;
  }
  g_autoptr(sige_weights) w = sige_weights_load_any(argv[1], &error);
  if (!w) return sige_cli_fail(error);
  g_autoptr(GHashTable) meta = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < G_N_ELEMENTS(kept_metadata); i++) {
    const char *v = sige_weights_metadata(w, kept_metadata[i]);
    if (v) g_hash_table_insert(meta, (gpointer)kept_metadata[i], (gpointer)v);
  }
  if (!sige_weights_save_safetensors(w, argv[2], f16 ? SIGE_DTYPE_F16 : SIGE_DTYPE_F32, meta,
                                     &error))
    return sige_cli_fail(error);
  guint n;
  sige_weights_names(w, &n);
  printf("wrote %s: %u tensors (%s layout), %s\n", argv[2], n,
         sige_weights_metadata(w, "sige.source.layout"), f16 ? "F16" : "F32");
  return 0;
}
