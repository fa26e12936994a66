/* The token-sequence ops of transformers (LayerNorm, token embedding,
 * attention over tokens): argument checks; the backends compute them. */
#include "ops_internal.h"

static gboolean is_rows(const sige_tensor *t, int64_t rows, int64_t cols) {
  return t && t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols &&
         t->layout == SIGE_LAYOUT_NCHW;
}

void sige_layer_norm(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *gamma,
                     const sige_tensor *beta, float eps, sige_tensor *out) {
  g_return_if_fail(ctx && x && out && x->ndim == 2);
  g_return_if_fail(sige_ops_f32(x) && sige_ops_f32(out) && sige_ops_f32(gamma) &&
                   sige_ops_f32(beta));
  const int64_t c = x->shape[1];
  g_return_if_fail(is_rows(out, x->shape[0], c) && x->layout == SIGE_LAYOUT_NCHW);
  g_return_if_fail((!gamma || (int64_t)gamma->numel == c) && (!beta || (int64_t)beta->numel == c));
  g_return_if_fail(c > 0 && eps >= 0.0f);
  sige_tensor_iface(x)->layer_norm(ctx, x, gamma, beta, eps, out);
}

gboolean sige_token_embedding(sige_ctx *ctx, const sige_tensor *table, const int32_t *ids, int n,
                              int tokens, const sige_tensor *pos, sige_tensor *out,
                              GError **error) {
  g_return_val_if_fail(ctx && table && ids && out, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  /* table and pos may be kept half: backends widen the rows they read */
  if (!sige_ops_check_f32(error, "token_embedding", out, NULL, NULL, NULL)) return FALSE;
  if (n < 1 || tokens < 1 || table->ndim != 2 || !is_rows(out, (int64_t)n * tokens, table->shape[1]) ||
      (pos && (pos->ndim != 2 || pos->shape[0] < tokens || pos->shape[1] != table->shape[1]))) {
    sige_ops_shape_error(error, "token_embedding",
                         "expected table [V, C], pos [>= tokens, C], out [n * tokens, C]", table,
                         "table", pos, "pos", out, "out");
    return FALSE;
  }
  const int64_t vocab = table->shape[0];
  for (int64_t r = 0; r < (int64_t)n * tokens; r++)
    if (ids[r] < 0 || ids[r] >= vocab) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  "token_embedding: token %d of sample %d is id %d, outside the vocabulary of "
                  "%" G_GINT64_FORMAT,
                  (int)(r % tokens), (int)(r / tokens), ids[r], vocab);
      return FALSE;
    }
  sige_tensor_iface(out)->token_embedding(ctx, table, ids, n, tokens, pos, out);
  return TRUE;
}

gboolean sige_token_attention(sige_ctx *ctx, const sige_tensor *q, const sige_tensor *k,
                              const sige_tensor *v, int n, int heads, gboolean causal,
                              sige_tensor *out, GError **error) {
  g_return_val_if_fail(ctx && q && k && v && out, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  if (!sige_ops_check_f32(error, "token_attention", q, k, v, out)) return FALSE;
  const int64_t width = q->ndim == 2 ? q->shape[1] : -1;
  if (n < 1 || heads < 1 || q->ndim != 2 || width % heads || q->shape[0] % n ||
      k->ndim != 2 || k->shape[0] % n || !is_rows(v, k->shape[0], width) ||
      !is_rows(k, k->shape[0], width) || !is_rows(out, q->shape[0], width) ||
      q->layout != SIGE_LAYOUT_NCHW) {
    sige_ops_shape_error(error, "token_attention",
                         "expected q [n * tq, heads * d], k and v [n * tk, heads * d], out like q",
                         q, "q", k, "k", out, "out");
    return FALSE;
  }
  if (causal && q->shape[0] != k->shape[0]) {
    sige_ops_shape_error(error, "token_attention", "a causal mask needs as many keys as queries",
                         q, "q", k, "k", NULL, NULL);
    return FALSE;
  }
  return sige_tensor_iface(q)->token_attention(ctx, q, k, v, n, heads, causal, out, error);
}

void sige_geglu(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  g_return_if_fail(ctx && x && out && x->ndim == 2 && x->shape[1] % 2 == 0);
  g_return_if_fail(sige_ops_f32(x) && sige_ops_f32(out) && x->layout == SIGE_LAYOUT_NCHW);
  g_return_if_fail(is_rows(out, x->shape[0], x->shape[1] / 2) && out->data != x->data);
  sige_tensor_iface(x)->geglu(ctx, x, out);
}

static gboolean is_map(const sige_tensor *t) {
  return t && t->ndim == 4 && t->shape[0] == 1 && t->layout == SIGE_LAYOUT_NCHW;
}

void sige_map_to_tokens(sige_ctx *ctx, const sige_tensor *map, sige_tensor *tokens) {
  g_return_if_fail(ctx && is_map(map) && sige_ops_f32(map) && sige_ops_f32(tokens));
  const int64_t c = SIGE_C(map), hw = (int64_t)SIGE_H(map) * SIGE_W(map);
  g_return_if_fail(is_rows(tokens, hw, c) && tokens->data != map->data);
  sige_tensor_iface(map)->transpose(ctx, map, c, hw, tokens);
}

void sige_tokens_to_map(sige_ctx *ctx, const sige_tensor *tokens, sige_tensor *map) {
  g_return_if_fail(ctx && is_map(map) && sige_ops_f32(map) && sige_ops_f32(tokens));
  const int64_t c = SIGE_C(map), hw = (int64_t)SIGE_H(map) * SIGE_W(map);
  g_return_if_fail(is_rows(tokens, hw, c) && tokens->data != map->data);
  sige_tensor_iface(tokens)->transpose(ctx, tokens, hw, c, map);
}
