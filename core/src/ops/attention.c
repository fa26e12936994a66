/* The self-attention blocks: DDPM's AttnBlock (one sample at a time) and the
 * PD UNet's multi-head attention.  Argument checks and the norm statistics;
 * the backends compute the attention. */
#include "ops_internal.h"

static gboolean check_vec(const sige_tensor *t, int c) { return !t || (int64_t)t->numel == c; }

static gboolean check_mat(const sige_tensor *t, int c) {
  return t && (int64_t)t->numel == (int64_t)c * c && t->shape[0] == c;
}

static gboolean check_attention(const sige_tensor *x, const sige_attention_params *p,
                                const sige_tensor *out, gboolean need_norm, GError **error) {
  if (!sige_ops_is4(x) || !sige_ops_is4(out) || !sige_tensor_same_shape(x, out) ||
      x->layout != out->layout) {
    sige_ops_shape_error(error, "attention", "x and out must be 4-D of the same shape and layout",
                         x, "x", out, "out", NULL, NULL);
    return FALSE;
  }
  const int c = SIGE_C(x);
  if (!check_mat(p->q_w, c) || !check_mat(p->k_w, c) || !check_mat(p->v_w, c) ||
      !check_mat(p->proj_w, c)) {
    sige_ops_shape_error(error, "attention", "q/k/v/proj weights must be [C, C, 1, 1]", x, "x",
                         p->q_w, "q_w", p->proj_w, "proj_w");
    return FALSE;
  }
  if (!check_vec(p->q_b, c) || !check_vec(p->k_b, c) || !check_vec(p->v_b, c) ||
      !check_vec(p->proj_b, c) ||
      (need_norm && (!check_vec(p->norm_gamma, c) || !check_vec(p->norm_beta, c)))) {
    sige_ops_shape_error(error, "attention", "biases and norm parameters must hold C floats", x,
                         "x", NULL, NULL, NULL, NULL);
    return FALSE;
  }
  if (need_norm && (p->groups < 1 || c % p->groups != 0)) {
    char why[64];
    g_snprintf(why, sizeof why, "C is not a multiple of groups=%d", p->groups);
    sige_ops_shape_error(error, "attention", why, x, "x", NULL, NULL, NULL, NULL);
    return FALSE;
  }
  return TRUE;
}

gboolean sige_attention(sige_ctx *ctx, const sige_tensor *x, const sige_attention_params *p,
                        sige_tensor *out, GError **error) {
  g_return_val_if_fail(ctx && x && p && out, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  if (!sige_ops_check_f32(error, "attention", x, out, NULL, NULL)) return FALSE;
  if (!check_attention(x, p, out, TRUE, error)) return FALSE;
  if (out->data == x->data) {
    sige_ops_shape_error(error, "attention", "out must not alias x", x, "x", NULL, NULL, NULL,
                         NULL);
    return FALSE;
  }
  const size_t nc = (size_t)SIGE_N(x) * SIGE_C(x);
  float *ss = sige_ctx_scratch(ctx, 3, 2 * nc + 1, error);
  if (!ss) return FALSE;
  sige_group_norm_affine(ctx, x, p->groups, p->eps, p->norm_gamma, p->norm_beta, ss, ss + nc);
  return sige_tensor_iface(x)->attention(ctx, x, p, ss, ss + nc, TRUE, out, error);
}

gboolean sige_attention_frozen(sige_ctx *ctx, const sige_tensor *x,
                               const sige_attention_params *p, const float *scale,
                               const float *shift, sige_tensor *out, GError **error) {
  g_return_val_if_fail(ctx && x && p && scale && shift && out, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  if (!sige_ops_check_f32(error, "attention_frozen", x, out, NULL, NULL)) return FALSE;
  if (!check_attention(x, p, out, FALSE, error)) return FALSE;
  if (out->data == x->data) {
    sige_ops_shape_error(error, "attention_frozen", "out must not alias x", x, "x", NULL, NULL,
                         NULL, NULL);
    return FALSE;
  }
  return sige_tensor_iface(x)->attention(ctx, x, p, scale, shift, FALSE, out, error);
}

gboolean sige_multihead_attention(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *qkv_w,
                                  const sige_tensor *qkv_b, const sige_tensor *proj_w,
                                  const sige_tensor *proj_b, int heads, int head_dim,
                                  const float *scale, const float *shift, sige_tensor *out,
                                  GError **error) {
  g_return_val_if_fail(ctx && x && qkv_w && proj_w && scale && shift && out, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  /* qkv_w and proj_w may be kept half: backends widen them */
  if (!sige_ops_check_f32(error, "multihead_attention", x, out, qkv_b, proj_b)) return FALSE;
  const int C = SIGE_C(x), d = head_dim;
  if (!sige_ops_is4(x) || SIGE_N(x) != 1 || x->layout != SIGE_LAYOUT_NCHW ||
      !sige_tensor_same_shape(x, out) || out->layout != SIGE_LAYOUT_NCHW || heads < 1 ||
      (int64_t)heads * d != C || qkv_w->shape[0] != 3 * (int64_t)C ||
      (int64_t)qkv_w->numel != 3 * (int64_t)C * C || (int64_t)proj_w->numel != (int64_t)C * C ||
      !check_vec(qkv_b, 3 * C) || !check_vec(proj_b, C)) {
    sige_ops_shape_error(error, "multihead_attention",
                         "expected x and out [1, C, H, W], C = heads * head_dim, qkv weights "
                         "[3C, C], proj [C, C]",
                         x, "x", qkv_w, "qkv_w", proj_w, "proj_w");
    return FALSE;
  }
  return sige_tensor_iface(x)->multihead_attention(ctx, x, qkv_w, qkv_b, proj_w, proj_b, heads,
                                                  head_dim, scale, shift, out, error);
}
