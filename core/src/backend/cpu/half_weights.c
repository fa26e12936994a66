#define _POSIX_C_SOURCE 199309L /* clock_gettime */
/* Weights kept as F16 (sige_weights_keep_half) seen as float32 by the CPU
 * kernels: widened per call, never stored widened. */
#include <time.h>

#include "cpu_internal.h"
#include "sige/error.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Values per OpenMP chunk: large enough that a thread's share is mostly
 * streaming, small enough that two threads split a 1x1 conv's weight. */
#define WIDEN_CHUNK ((size_t)1 << 15)

void sige_cpu_widen(sige_ctx *ctx, const uint16_t *src, float *dst, size_t n) {
  const size_t chunks = (n + WIDEN_CHUNK - 1) / WIDEN_CHUNK;
  const int threads = chunks > 1 ? sige_ctx_threads(ctx) : 1;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (size_t c = 0; c < chunks; c++) {
    const size_t i = c * WIDEN_CHUNK;
    sige_f16_to_f32_n(src + i, dst + i, MIN(WIDEN_CHUNK, n - i));
  }
}

const float *sige_cpu_weight_f32(sige_ctx *ctx, const sige_tensor *w, GError **error) {
  if (!w || w->storage == SIGE_STORAGE_F32) return w ? w->data : NULL;
  /* one slot: a conv or linear widens one weight at a time; the largest
   * weight of a model bounds it (SD 1.x: 2560 x 1280 x 3 x 3, 118 MB) */
  float *buf = sige_ctx_scratch(ctx, SIGE_CPU_WEIGHT_SLOT, w->numel, error);
  if (!buf) return NULL;
  const uint64_t t0 = now_ns();
  sige_cpu_widen(ctx, w->data16, buf, w->numel);
  sige_ctx_add_widen(ctx, w->numel, now_ns() - t0);
  return buf;
}

const sige_tensor *sige_cpu_param_f32(const sige_tensor *t, sige_tensor **tmp, GError **error) {
  if (!t || t->storage == SIGE_STORAGE_F32) return t;
  return *tmp = sige_tensor_to_f32(t, error);
}
