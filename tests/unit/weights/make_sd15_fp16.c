/* `make_sd15_fp16 OUT.safetensors`: a Stable Diffusion 1.5-shaped single
 * file with random weights (tools/harness random_weights: the UNet of
 * v1-inference.yaml and the CLIP ViT-L/14 text encoder, in single-file
 * names, and the kl-f8 AutoencoderKL, encoder and decoder), stored as F16:
 * what docs/PERFORMANCE.md loads with load_rss, and runs `sige edit --model
 * sd:` on, to measure the memory an fp16 SD checkpoint and session cost.
 * Built, not run by the suite: it needs about 4.5 GB of memory and
 * minutes. */
#include <stdio.h>

#include "random_weights.h"
#include "sige/model.h"
#include "sige/weights.h"

/* Adds the tensors of `from` that `into` lacks (the VAE halves share none
 * but may both be asked for shared keys in a future layout). */
static gboolean merge(sige_weights *into, const sige_weights *from, GError **error) {
  guint n;
  const char *const *names = sige_weights_names(from, &n);
  for (guint i = 0; i < n; i++) {
    if (sige_weights_contains(into, names[i])) continue;
    sige_tensor *copy = sige_tensor_dup(sige_weights_get(from, names[i]), error);
    if (!copy) return FALSE;
    sige_weights_insert(into, names[i], copy);
  }
  return TRUE;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_sd15_fp16 OUT.safetensors\n");
    return 2;
  }
  g_autoptr(GError) error = NULL;
  sige_sd_unet_config u;
  sige_sd_unet_config_init(&u);
  sige_clip_text_config c;
  sige_clip_text_config_init(&c);
  g_autoptr(sige_weights) w = sige_random_model_weights(SIGE_MODEL_SD_UNET, &u, 15, &error);
  sige_sd_vae_config ve, vd;
  sige_sd_vae_config_init(&ve, SIGE_MODEL_SD_VAE_ENCODER);
  sige_sd_vae_config_init(&vd, SIGE_MODEL_SD_VAE_DECODER);
  g_autoptr(sige_weights) t =
      w ? sige_random_model_weights(SIGE_MODEL_CLIP_TEXT, &c, 16, &error) : NULL;
  g_autoptr(sige_weights) e =
      t ? sige_random_model_weights(SIGE_MODEL_SD_VAE_ENCODER, &ve, 17, &error) : NULL;
  g_autoptr(sige_weights) d =
      e ? sige_random_model_weights(SIGE_MODEL_SD_VAE_DECODER, &vd, 18, &error) : NULL;
  if (!d || !merge(w, t, &error) || !merge(w, e, &error) || !merge(w, d, &error)) {
    fprintf(stderr, "make_sd15_fp16: %s\n", error->message);
    return 1;
  }
  if (!sige_weights_save_safetensors(w, argv[1], SIGE_DTYPE_F16, NULL, &error)) {
    fprintf(stderr, "make_sd15_fp16: %s\n", error->message);
    return 1;
  }
  return 0;
}
