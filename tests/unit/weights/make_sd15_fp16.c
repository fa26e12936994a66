/* `make_sd15_fp16 OUT.safetensors`: a Stable Diffusion 1.5-shaped single
 * file with random weights (tools/harness random_weights: the UNet of
 * v1-inference.yaml and the CLIP ViT-L/14 text encoder, in single-file
 * names), stored as F16: what docs/PERFORMANCE.md loads with load_rss to
 * measure the memory an fp16 SD checkpoint costs.  No VAE (its model class
 * is not in this build yet).  Built, not run by the suite: it needs about
 * 4.5 GB of memory and a minute. */
#include <stdio.h>

#include "random_weights.h"
#include "sige/model.h"
#include "sige/weights.h"

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
  g_autoptr(sige_weights) t =
      w ? sige_random_model_weights(SIGE_MODEL_CLIP_TEXT, &c, 16, &error) : NULL;
  if (!t) {
    fprintf(stderr, "make_sd15_fp16: %s\n", error->message);
    return 1;
  }
  guint n;
  const char *const *names = sige_weights_names(t, &n);
  for (guint i = 0; i < n; i++) {
    sige_tensor *copy = sige_tensor_dup(sige_weights_get(t, names[i]), &error);
    if (!copy) {
      fprintf(stderr, "make_sd15_fp16: %s\n", error->message);
      return 1;
    }
    sige_weights_insert(w, names[i], copy);
  }
  if (!sige_weights_save_safetensors(w, argv[1], SIGE_DTYPE_F16, NULL, &error)) {
    fprintf(stderr, "make_sd15_fp16: %s\n", error->message);
    return 1;
  }
  return 0;
}
