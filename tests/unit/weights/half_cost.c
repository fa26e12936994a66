/* What keeping half weights half costs in time: `half_cost sd FILE` loads
 * the UNet of an SD checkpoint twice (weights widened at load, and kept
 * half) and times dense forwards at its latent size, alternating;
 * `half_cost gaugan DIR` does the same with the published GauGAN
 * (Cityscapes 512 x 256) on random weights saved as F16 in DIR.  Prints per
 * forward the wall time and, for the kept model, the values widened and the
 * time the widening took (sige_ctx_widen_stats).  Built, not run by the
 * suite: docs/PERFORMANCE.md runs it. */
#include <stdio.h>
#include <string.h>

#include "random_weights.h"
#include "sige/context.h"
#include "sige/model.h"
#include "sige/rng.h"
#include "sige/sd_checkpoint.h"
#include "sige/weights.h"

static sige_tensor *random_tensor(int ndim, const int64_t *shape, uint64_t seed) {
  sige_tensor *t = sige_tensor_new(ndim, shape, NULL);
  sige_rng r;
  sige_rng_init(&r, seed);
  for (size_t i = 0; i < t->numel; i++) t->data[i] = (float)(2.0 * sige_rng_uniform(&r) - 1.0);
  return t;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "sd") && strcmp(argv[1], "gaugan"))) {
    fprintf(stderr, "usage: half_cost sd FILE | half_cost gaugan DIR\n");
    return 2;
  }
  const gboolean sd = !strcmp(argv[1], "sd");
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  if (sd) {
    path = g_strdup(argv[2]);
  } else {
    sige_spade_config c;
    sige_spade_config_init(&c);
    g_autoptr(sige_weights) w = sige_random_model_weights(SIGE_MODEL_SPADE, &c, 3, &error);
    path = g_build_filename(argv[2], "gaugan_f16.safetensors", NULL);
    if (!w || !sige_weights_save_safetensors(w, path, SIGE_DTYPE_F16, NULL, &error)) {
      fprintf(stderr, "half_cost: %s\n", error->message);
      return 1;
    }
  }
  sige_model *m[2] = {NULL, NULL}; /* widened, kept */
  for (int k = 0; k < 2; k++) {
    sige_weights_set_keep_half(k == 1);
    const gint64 t0 = g_get_monotonic_time();
    m[k] = sd ? sige_sd_load_model(path, SIGE_SD_PART_UNET, 0, &error) : sige_model_load(path, &error);
    if (!m[k]) {
      fprintf(stderr, "half_cost: %s\n", error->message);
      return 1;
    }
    printf("load %s: %.1f s, weights %.1f MB\n", k ? "kept" : "widened",
           (g_get_monotonic_time() - t0) / 1e6, sige_model_weight_bytes(m[k]) / 1e6);
  }
  int64_t s[4];
  sige_model_input_shape(m[0], s);
  g_autoptr(sige_tensor) x = random_tensor(4, s, 1);
  int64_t cs[2] = {77, 768};
  g_autoptr(sige_tensor) cond = sd ? random_tensor(2, cs, 2) : NULL;
  /* one context per model: Winograd weights are kept on each model's own
   * tensors, the first forward of each makes them (a warm-up) */
  sige_ctx *ctx[2] = {sige_ctx_new(2), sige_ctx_new(2)};
  for (int run = 0; run < 6; run++) {
    const int k = run % 2;
    uint64_t v0, n0, v1, n1;
    sige_ctx_widen_stats(ctx[k], &v0, &n0);
    g_autoptr(sige_tensor) out = NULL;
    const gint64 t0 = g_get_monotonic_time();
    if (!sige_model_forward_dense_cond(m[k], ctx[k], x, 500.0f, cond, &out, &error)) {
      fprintf(stderr, "half_cost: %s\n", error->message);
      return 1;
    }
    const double ms = (g_get_monotonic_time() - t0) / 1e3;
    sige_ctx_widen_stats(ctx[k], &v1, &n1);
    printf("%s forward %d%s: %.0f ms; widened %.1f M values in %.0f ms (%.2f ns/value); "
           "Winograd weights %.0f MB\n",
           k ? "kept" : "widened", run / 2, run < 2 ? " (warm-up)" : "", ms, (v1 - v0) / 1e6,
           (n1 - n0) / 1e6, v1 > v0 ? (double)(n1 - n0) / (double)(v1 - v0) : 0.0,
           sige_ctx_prepared_bytes(ctx[k]) / 1e6);
    fflush(stdout);
  }
  for (int k = 0; k < 2; k++) {
    sige_ctx_free(ctx[k]);
    sige_model_free(m[k]);
  }
  return 0;
}
