/* Nearest and bilinear resizing, 2x2 average pooling on the CPU. */
#include <math.h>

#include "../bilinear_tap.h"
#include "cpu_internal.h"

/* torch's legacy "nearest" index: the scale is rounded to float first, which
 * makes some odd sizes pick a different source pixel than exact arithmetic. */
static int nearest_src(int dst, int in, int out) {
  const float scale = (float)in / (float)out;
  const int s = (int)floorf((float)dst * scale);
  return s < in - 1 ? s : in - 1;
}

void sige_cpu_resize_nearest(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  const int h = SIGE_H(x), w = SIGE_W(x), ho = SIGE_H(out), wo = SIGE_W(out);
  int *col = g_new(int, wo);
  for (int j = 0; j < wo; j++) col[j] = nearest_src(j, w, wo);
  const int planes = SIGE_N(x) * SIGE_C(x), c_all = SIGE_C(x);
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int pc = 0; pc < planes; pc++) {
    const float *src = sige_cpu_plane(x, pc / c_all, pc % c_all);
    float *dst = sige_cpu_plane(out, pc / c_all, pc % c_all);
    for (int i = 0; i < ho; i++) {
      const float *srow = src + (size_t)nearest_src(i, h, ho) * w;
      float *drow = dst + (size_t)i * wo;
      for (int j = 0; j < wo; j++) drow[j] = srow[col[j]];
    }
  }
  g_free(col);
}

void sige_cpu_resize_bilinear(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  const int h = SIGE_H(x), w = SIGE_W(x), ho = SIGE_H(out), wo = SIGE_W(out);
  sige_k_tap *cols = g_new(sige_k_tap, (size_t)wo + ho);
  sige_k_tap *rows = cols + wo;
  for (int j = 0; j < wo; j++) cols[j] = sige_k_bilinear_tap(j, w, wo);
  for (int i = 0; i < ho; i++) rows[i] = sige_k_bilinear_tap(i, h, ho);
  const int planes = SIGE_N(x) * SIGE_C(x), c_all = SIGE_C(x);
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int pc = 0; pc < planes; pc++) {
    const float *src = sige_cpu_plane(x, pc / c_all, pc % c_all);
    float *dst = sige_cpu_plane(out, pc / c_all, pc % c_all);
    for (int i = 0; i < ho; i++) {
      const sige_k_tap r = rows[i];
      const float *a = src + (size_t)r.i0 * w, *b = src + (size_t)r.i1 * w;
      float *drow = dst + (size_t)i * wo;
      for (int j = 0; j < wo; j++) {
        const sige_k_tap c = cols[j];
        /* Same association as torch's CPU kernel. */
        drow[j] = r.l0 * (c.l0 * a[c.i0] + c.l1 * a[c.i1]) + r.l1 * (c.l0 * b[c.i0] + c.l1 * b[c.i1]);
      }
    }
  }
  g_free(cols);
}

void sige_cpu_avg_pool2x2(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  const int w = SIGE_W(x), ho = SIGE_H(out), wo = SIGE_W(out);
  const int planes = SIGE_N(x) * SIGE_C(x), c_all = SIGE_C(x);
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int pc = 0; pc < planes; pc++) {
    const float *src = sige_cpu_plane(x, pc / c_all, pc % c_all);
    float *dst = sige_cpu_plane(out, pc / c_all, pc % c_all);
    for (int i = 0; i < ho; i++) {
      const float *a = src + (size_t)(2 * i) * w, *b = a + w;
      float *drow = dst + (size_t)i * wo;
      for (int j = 0; j < wo; j++)
        drow[j] = (a[2 * j] + a[2 * j + 1] + b[2 * j] + b[2 * j + 1]) * 0.25f;
    }
  }
}
