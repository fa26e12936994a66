/* Writes a tiny Stable Diffusion checkpoint for the plug-in's tests: one
 * single-file safetensors (F16, as the reference weights) with the UNet and
 * VAE of the reference case sd-img2img-tiny and the text encoder of
 * clip-text-tiny, heads as those cases use (2), and no sizes, so that the
 * plug-in sizes its models to the layer.  About 7 MB: made at test time
 * rather than committed.
 *   make_sd_tiny REFERENCE_DIR OUT.safetensors */
#include <stdio.h>
#include "sige/weights.h"

static gboolean add_all(sige_weights *dst, const char *ref, const char *cas, GError **error) {
  g_autofree gchar *path = g_build_filename(ref, cas, "weights.safetensors", NULL);
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(path, error);
  if (!w) return FALSE;
  guint n = 0;
  const char *const *names = sige_weights_names(w, &n);
  for (guint i = 0; i < n; i++) {
    sige_tensor *t = sige_weights_read_tensor(w, names[i], 0, NULL, error);
    if (!t) return FALSE;
    sige_weights_insert(dst, names[i], t);
  }
  return TRUE;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: make_sd_tiny REFERENCE_DIR OUT.safetensors\n");
    return 2;
  }
  GError *error = NULL;
  g_autoptr(sige_weights) w = sige_weights_new();
  g_autoptr(GHashTable) meta = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(meta, "sige.unet.heads", "2");
  g_hash_table_insert(meta, "sige.text-encoder.heads", "2");
  if (!add_all(w, argv[1], "sd-img2img-tiny", &error) ||
      !add_all(w, argv[1], "clip-text-tiny", &error) ||
      !sige_weights_save_safetensors(w, argv[2], SIGE_DTYPE_F16, meta, &error)) {
    fprintf(stderr, "make_sd_tiny: %s\n", error->message);
    return 1;
  }
  return 0;
}
