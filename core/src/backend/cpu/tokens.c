/* The token-sequence ops on the CPU: LayerNorm per row, the embedding
 * lookup, and attention over tokens (per sample and head, the score matrix
 * in row tiles: two SGEMMs around a row softmax). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "../softmax_row.h"
#include "cpu_internal.h"
#include "sige/error.h"

void sige_cpu_layer_norm(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *gamma,
                         const sige_tensor *beta, float eps, sige_tensor *out) {
  const int64_t rows = x->shape[0], c = x->shape[1];
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x->data + r * c;
    float *yr = out->data + r * c;
    /* two passes in double: the rows are short, and a one-pass variance
     * loses digits when the mean is large against the spread */
    double s = 0.0;
    for (int64_t i = 0; i < c; i++) s += xr[i];
    const double mean = s / (double)c;
    double s2 = 0.0;
    for (int64_t i = 0; i < c; i++) s2 += (xr[i] - mean) * (xr[i] - mean);
    const float inv = (float)(1.0 / sqrt(s2 / (double)c + (double)eps));
    const float m = (float)mean;
    for (int64_t i = 0; i < c; i++) {
      const float v = (xr[i] - m) * inv;
      yr[i] = v * (gamma ? gamma->data[i] : 1.0f) + (beta ? beta->data[i] : 0.0f);
    }
  }
}

void sige_cpu_token_embedding(sige_ctx *ctx, const sige_tensor *table, const int32_t *ids, int n,
                              int tokens, const sige_tensor *pos, sige_tensor *out) {
  const int64_t c = table->shape[1], rows = (int64_t)n * tokens;
  const gboolean t16 = table->storage == SIGE_STORAGE_F16;
  const gboolean p16 = pos && pos->storage == SIGE_STORAGE_F16;
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    float *y = out->data + r * c;
    /* half tables: only the rows read are widened (out serves as the
     * row's buffer, the position row is added in pieces) */
    const float *e = y;
    if (t16)
      sige_f16_to_f32_n(table->data16 + (int64_t)ids[r] * c, y, (size_t)c);
    else
      e = table->data + (int64_t)ids[r] * c;
    if (!pos) {
      if (e != y) memcpy(y, e, (size_t)c * sizeof(float));
      continue;
    }
    if (!p16) {
      const float *p = pos->data + (r % tokens) * c;
      for (int64_t i = 0; i < c; i++) y[i] = e[i] + p[i];
      continue;
    }
    float pb[256];
    for (int64_t i0 = 0; i0 < c; i0 += 256) {
      const int64_t m = MIN(256, c - i0);
      sige_f16_to_f32_n(pos->data16 + (r % tokens) * c + i0, pb, (size_t)m);
      for (int64_t i = 0; i < m; i++) y[i0 + i] = e[i0 + i] + pb[i];
    }
  }
}

gboolean sige_cpu_token_attention(sige_ctx *ctx, const sige_tensor *q, const sige_tensor *k,
                                  const sige_tensor *v, int n, int heads, gboolean causal,
                                  sige_tensor *out, GError **error) {
  const int width = (int)q->shape[1], d = width / heads;
  const int tq = (int)(q->shape[0] / n), tk = (int)(k->shape[0] / n);
  const float scale = (float)(1.0 / sqrt((double)d));
  int tile = (int)MIN((size_t)tq, MAX((size_t)1, SIGE_CPU_SCRATCH_LIMIT / (size_t)tk));
  float *s = sige_aligned_alloc((size_t)tile * tk * sizeof(float));
  if (!s) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM,
                "token_attention: no memory for a %d x %d score tile", tile, tk);
    return FALSE;
  }
  for (int b = 0; b < n; b++)
    for (int h = 0; h < heads; h++) {
      const float *qb = q->data + (size_t)b * tq * width + (size_t)h * d;
      const float *kb = k->data + (size_t)b * tk * width + (size_t)h * d;
      const float *vb = v->data + (size_t)b * tk * width + (size_t)h * d;
      float *ob = out->data + (size_t)b * tq * width + (size_t)h * d;
      for (int i0 = 0; i0 < tq; i0 += tile) {
        const int rows = MIN(tile, tq - i0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, tk, d, scale,
                    qb + (size_t)i0 * width, width, kb, width, 0.0f, s, tk);
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
        for (int i = 0; i < rows; i++) {
          float *r = s + (size_t)i * tk;
          /* causal: key j is masked for query i when j > i; key 0 always
           * stays, so every row has a finite maximum */
          if (causal)
            for (int j = i0 + i + 1; j < tk; j++) r[j] = -INFINITY;
          sige_softmax_row(r, tk);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, tk, 1.0f, s, tk, vb,
                    width, 0.0f, ob + (size_t)i0 * width, width);
      }
      sige_ctx_add_macs(ctx, 2 * (uint64_t)tq * (uint64_t)tk * (uint64_t)d);
    }
  sige_aligned_free(s);
  return TRUE;
}

void sige_cpu_geglu(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  const int64_t rows = out->shape[0], c = out->shape[1];
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *a = x->data + r * 2 * c, *g = a + c;
    float *y = out->data + r * c;
    for (int64_t i = 0; i < c; i++)
      y[i] = a[i] * (0.5f * g[i] * (1.0f + erff(g[i] * (float)M_SQRT1_2)));
  }
}

/* In tiles, so that both sides are read and written a cache line at a
 * time. */
void sige_cpu_transpose(sige_ctx *ctx, const sige_tensor *x, int64_t rows, int64_t cols,
                        sige_tensor *out) {
  enum { T = 32 };
  const int64_t tr = (rows + T - 1) / T, tc = (cols + T - 1) / T;
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int64_t t = 0; t < tr * tc; t++) {
    const int64_t r0 = (t / tc) * T, c0 = (t % tc) * T;
    const int64_t r1 = r0 + T < rows ? r0 + T : rows, c1 = c0 + T < cols ? c0 + T : cols;
    for (int64_t r = r0; r < r1; r++)
      for (int64_t c = c0; c < c1; c++) out->data[c * rows + r] = x->data[r * cols + c];
  }
}
