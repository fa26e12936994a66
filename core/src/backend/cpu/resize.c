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

/* One (image, channel) plane of a resize or pool: src is w wide, dst is
 * ho x wo; tab holds the source indices or taps all planes share. */
typedef void (*plane_op)(const float *src, float *dst, int w, int ho, int wo, const void *tab);

/* Runs op over every plane of x into the same plane of out, planes in
 * parallel (one call a plane: the loops over a plane stay direct). */
static void each_plane(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out, plane_op op,
                       const void *tab) {
  const int w = SIGE_W(x), ho = SIGE_H(out), wo = SIGE_W(out);
  const int planes = SIGE_N(x) * SIGE_C(x), c_all = SIGE_C(x);
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int pc = 0; pc < planes; pc++)
    op(sige_cpu_plane(x, pc / c_all, pc % c_all), sige_cpu_plane(out, pc / c_all, pc % c_all), w,
       ho, wo, tab);
}

/* tab: the source column of each output column, then the source row of
 * each output row. */
static void nearest_plane(const float *src, float *dst, int w, int ho, int wo, const void *tab) {
  const int *col = tab, *row = col + wo;
  for (int i = 0; i < ho; i++) {
    const float *srow = src + (size_t)row[i] * w;
    float *drow = dst + (size_t)i * wo;
    for (int j = 0; j < wo; j++) drow[j] = srow[col[j]];
  }
}

void sige_cpu_resize_nearest(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  const int h = SIGE_H(x), w = SIGE_W(x), ho = SIGE_H(out), wo = SIGE_W(out);
  int *col = g_new(int, (size_t)wo + ho);
  for (int j = 0; j < wo; j++) col[j] = nearest_src(j, w, wo);
  for (int i = 0; i < ho; i++) col[wo + i] = nearest_src(i, h, ho);
  each_plane(ctx, x, out, nearest_plane, col);
  g_free(col);
}

/* tab: the taps of each output column, then of each output row. */
static void bilinear_plane(const float *src, float *dst, int w, int ho, int wo, const void *tab) {
  const sige_k_tap *cols = tab, *rows = cols + wo;
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

void sige_cpu_resize_bilinear(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  const int h = SIGE_H(x), w = SIGE_W(x), ho = SIGE_H(out), wo = SIGE_W(out);
  sige_k_tap *cols = g_new(sige_k_tap, (size_t)wo + ho);
  sige_k_tap *rows = cols + wo;
  for (int j = 0; j < wo; j++) cols[j] = sige_k_bilinear_tap(j, w, wo);
  for (int i = 0; i < ho; i++) rows[i] = sige_k_bilinear_tap(i, h, ho);
  each_plane(ctx, x, out, bilinear_plane, cols);
  g_free(cols);
}

static void pool_plane(const float *src, float *dst, int w, int ho, int wo, const void *tab) {
  (void)tab;
  for (int i = 0; i < ho; i++) {
    const float *a = src + (size_t)(2 * i) * w, *b = a + w;
    float *drow = dst + (size_t)i * wo;
    for (int j = 0; j < wo; j++)
      drow[j] = (a[2 * j] + a[2 * j + 1] + b[2 * j] + b[2 * j + 1]) * 0.25f;
  }
}

void sige_cpu_avg_pool2x2(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  each_plane(ctx, x, out, pool_plane, NULL);
}
