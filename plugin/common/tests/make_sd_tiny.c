/* Writes a tiny Stable Diffusion checkpoint for the plug-in's tests: one
 * single-file safetensors (F16, as the reference weights) with the UNet and
 * VAE of the reference case sd-img2img-tiny and the text encoder of
 * clip-text-tiny, heads as those cases use (2), and no sizes, so that the
 * plug-in sizes its models to the layer.  About 7 MB: made at test time
 * rather than committed.
 *   make_sd_tiny REFERENCE_DIR OUT.safetensors
 *   make_sd_tiny --diffusers REFERENCE_DIR OUTDIR
 * The second writes the same weights as a diffusers folder (model_index.json,
 * unet/, vae/, text_encoder/ with their config.json) for the tests that pick
 * a folder: each part keeps its single-file names, which the folder reader
 * accepts beside diffusers' own, and no tokenizer/ (the plug-in's shipped
 * vocabulary serves), so no Python is needed to make it. */
#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
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

static gboolean write_text(const char *dir, const char *sub, const char *name, const char *text,
                           GError **error) {
  g_autofree gchar *d = g_build_filename(dir, sub, NULL);
  if (g_mkdir_with_parents(d, 0755) != 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: cannot make it", d);
    return FALSE;
  }
  g_autofree gchar *p = g_build_filename(d, name, NULL);
  return g_file_set_contents(p, text, -1, error);
}

/* The tensors of w under `prefix`, saved to DIR/SUB/NAME (F16). */
static gboolean save_part(const sige_weights *w, const char *prefix, const char *dir,
                          const char *sub, const char *name, GError **error) {
  g_autoptr(sige_weights) part = sige_weights_new();
  guint n = 0;
  const char *const *names = sige_weights_names(w, &n);
  for (guint i = 0; i < n; i++) {
    if (strncmp(names[i], prefix, strlen(prefix)) != 0) continue;
    sige_tensor *t = sige_weights_read_tensor(w, names[i], 0, NULL, error);
    if (!t) return FALSE;
    sige_weights_insert(part, names[i], t);
  }
  g_autofree gchar *d = g_build_filename(dir, sub, NULL);
  g_autofree gchar *p = g_build_filename(d, name, NULL);
  return g_mkdir_with_parents(d, 0755) == 0 &&
         sige_weights_save_safetensors(part, p, SIGE_DTYPE_F16, NULL, error);
}

static gboolean write_diffusers(const sige_weights *w, const char *dir, GError **error) {
  return write_text(dir, ".", "model_index.json",
                    "{\"_class_name\": \"StableDiffusionPipeline\", \"unet\": [\"diffusers\", "
                    "\"UNet2DConditionModel\"], \"vae\": [\"diffusers\", \"AutoencoderKL\"], "
                    "\"text_encoder\": [\"transformers\", \"CLIPTextModel\"]}\n",
                    error) &&
         write_text(dir, "unet", "config.json", "{\"attention_head_dim\": 2}\n", error) &&
         write_text(dir, "text_encoder", "config.json", "{\"num_attention_heads\": 2}\n",
                    error) &&
         save_part(w, "model.diffusion_model.", dir, "unet",
                   "diffusion_pytorch_model.safetensors", error) &&
         save_part(w, "first_stage_model.", dir, "vae", "diffusion_pytorch_model.safetensors",
                   error) &&
         save_part(w, "cond_stage_model.", dir, "text_encoder", "model.safetensors", error);
}

int main(int argc, char **argv) {
  const gboolean diffusers = argc == 4 && !strcmp(argv[1], "--diffusers");
  if (argc != 3 && !diffusers) {
    fprintf(stderr, "usage: make_sd_tiny REFERENCE_DIR OUT.safetensors\n"
                    "       make_sd_tiny --diffusers REFERENCE_DIR OUTDIR\n");
    return 2;
  }
  const char *ref = argv[argc - 2], *out = argv[argc - 1];
  GError *error = NULL;
  g_autoptr(sige_weights) w = sige_weights_new();
  g_autoptr(GHashTable) meta = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(meta, "sige.unet.heads", "2");
  g_hash_table_insert(meta, "sige.text-encoder.heads", "2");
  if (!add_all(w, ref, "sd-img2img-tiny", &error) ||
      !add_all(w, ref, "clip-text-tiny", &error) ||
      !(diffusers ? write_diffusers(w, out, &error)
                  : sige_weights_save_safetensors(w, out, SIGE_DTYPE_F16, meta, &error))) {
    fprintf(stderr, "make_sd_tiny: %s\n", error->message);
    return 1;
  }
  return 0;
}
