/* The token-sequence ops on a device, step for step as cpu/tokens.c:
 * LayerNorm and the embedding lookup as element kernels, attention per
 * sample and head as two row-major SGEMMs around the causal mask kernel and
 * the softmax primitive, the scores in row tiles. */
#include <math.h>

#include "device_impl.h"
#include "sige/error.h"

/* Score tiles beyond this many floats are split by rows. */
#define SCORES_LIMIT ((size_t)64 << 20)

void sige_dev_layer_norm(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *gamma,
                         const sige_tensor *beta, float eps, sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "layer_norm")) return;
  const sige_k_layer_norm_args a = {.x = x->data, .y = out->data,
                                    .gamma = sige_dev_param(be, gamma),
                                    .beta = sige_dev_param(be, beta),
                                    .c = (int32_t)x->shape[1], .eps = eps};
  if ((gamma && !a.gamma) || (beta && !a.beta)) return; /* latched */
  sige_dev_launch(be, SIGE_K_LAYER_NORM, &a, (size_t)x->shape[0]);
}

void sige_dev_token_embedding(sige_ctx *ctx, const sige_tensor *table, const int32_t *ids, int n,
                              int tokens, const sige_tensor *pos, sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(out);
  sige_k_embedding_args a = {.table = sige_dev_param(be, table), .pos = sige_dev_param(be, pos),
                             .out = out->data, .c = (int32_t)table->shape[1], .tokens = tokens};
  if (!a.table || (pos && !a.pos)) return; /* latched */
  const sige_dev_arg part = {ids, (size_t)n * tokens * sizeof(int32_t)};
  const void *dev[1];
  if (!sige_dev_args(be, &part, 1, dev)) return;
  a.ids = dev[0];
  sige_dev_launch(be, SIGE_K_EMBEDDING, &a, out->numel);
}

gboolean sige_dev_token_attention(sige_ctx *ctx, const sige_tensor *q, const sige_tensor *k,
                                  const sige_tensor *v, int n, int heads, gboolean causal,
                                  sige_tensor *out, GError **error) {
  sige_dev_backend *be = sige_dev_of(q);
  if (!sige_dev_on(be, k, "token_attention") || !sige_dev_on(be, v, "token_attention") ||
      !sige_dev_on(be, out, "token_attention"))
    return sige_dev_check(be, error);
  const int width = (int)q->shape[1], d = width / heads;
  const int tq = (int)(q->shape[0] / n), tk = (int)(k->shape[0] / n);
  const size_t fit = SCORES_LIMIT / (size_t)tk;
  const int tile = fit == 0 ? 1 : (fit < (size_t)tq ? (int)fit : tq);
  float *s = sige_dev_scratch(be, 2, (size_t)tile * tk * sizeof(float));
  if (!s) return sige_dev_check(be, error);
  const float scale = (float)(1.0 / sqrt((double)d));
  gboolean ok = TRUE;
  for (int b = 0; b < n && ok; b++)
    for (int h = 0; h < heads && ok; h++) {
      const float *qb = q->data + (size_t)b * tq * width + (size_t)h * d;
      const float *kb = k->data + (size_t)b * tk * width + (size_t)h * d;
      const float *vb = v->data + (size_t)b * tk * width + (size_t)h * d;
      float *ob = out->data + (size_t)b * tq * width + (size_t)h * d;
      for (int i0 = 0; i0 < tq && ok; i0 += tile) {
        const int rows = tq - i0 < tile ? tq - i0 : tile;
        const sige_k_causal_args m = {s, tk, i0};
        ok = sige_dev_gemm_rm(be, 0, 1, rows, tk, d, scale, qb + (size_t)i0 * width, width, kb,
                              width, 0.0f, s, tk) &&
             (!causal || sige_dev_launch(be, SIGE_K_CAUSAL_MASK, &m, (size_t)rows * tk)) &&
             be->prims->softmax_rows(be, s, rows, tk) &&
             sige_dev_gemm_rm(be, 0, 0, rows, d, tk, 1.0f, s, tk, vb, width, 0.0f,
                              ob + (size_t)i0 * width, width);
      }
    }
  if (!sige_dev_check(be, error)) return FALSE;
  sige_ctx_add_macs(ctx, (uint64_t)n * heads * 2 * (uint64_t)tq * (uint64_t)tk * (uint64_t)d);
  return TRUE;
}

void sige_dev_geglu(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "geglu")) return;
  const sige_k_geglu_args a = {.x = x->data, .out = out->data, .c = (int32_t)out->shape[1]};
  sige_dev_launch(be, SIGE_K_GEGLU, &a, out->numel);
}

void sige_dev_transpose(sige_ctx *ctx, const sige_tensor *x, int64_t rows, int64_t cols,
                        sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "transpose")) return;
  const sige_k_transpose_args a = {.x = x->data, .out = out->data, .rows = (uint32_t)rows,
                                   .cols = (uint32_t)cols};
  sige_dev_launch(be, SIGE_K_TRANSPOSE, &a, (size_t)rows * (size_t)cols);
}
