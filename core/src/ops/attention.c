/* The self-attention blocks: DDPM's AttnBlock (one sample at a time) and the
 * PD UNet's multi-head attention. */
#include <cblas.h>
#include <math.h>
#include <string.h>

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

/* dst[C][hw] = w[C][C] * src[C][hw] + b: a 1x1 conv of one sample. */
static void pointwise(const sige_tensor *w, const sige_tensor *b, const float *src, size_t lds,
                      float *dst, size_t ldd, int c, int hw) {
  float beta = 0.0f;
  if (b) {
    for (int i = 0; i < c; i++)
      for (int j = 0; j < hw; j++) dst[(size_t)i * ldd + j] = b->data[i];
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, hw, c, 1.0f, w->data, c, src,
              (int)lds, beta, dst, (int)ldd);
}

static void softmax_rows(sige_ctx *ctx, float *s, int rows, int cols) {
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int i = 0; i < rows; i++) {
    float *r = s + (size_t)i * cols;
    float m = r[0];
    for (int j = 1; j < cols; j++) m = r[j] > m ? r[j] : m;
    /* Sum in double: rows can be thousands of terms long. */
    double sum = 0.0;
    for (int j = 0; j < cols; j++) {
      r[j] = expf(r[j] - m);
      sum += r[j];
    }
    const float inv = (float)(1.0 / sum);
    for (int j = 0; j < cols; j++) r[j] *= inv;
  }
}

/* scale/shift: per (sample, channel) when per_sample, else per channel. */
static gboolean attention_run(sige_ctx *ctx, const sige_tensor *x, const sige_attention_params *p,
                              const float *scale, const float *shift, gboolean per_sample,
                              sige_tensor *out, GError **error) {
  const int n_img = SIGE_N(x), c = SIGE_C(x);
  const int hw = SIGE_H(x) * SIGE_W(x);
  const size_t chw = (size_t)c * hw;
  const size_t x_cs = sige_ops_chan_stride(x);
  /* Query rows per tile, so that the hw x hw score matrix is never built whole
   * for big feature maps. */
  size_t rows = SIGE_OPS_SCRATCH_LIMIT / (size_t)(hw ? hw : 1);
  int tile = rows == 0 ? 1 : (rows < (size_t)hw ? (int)rows : hw);
  float *buf = sige_ctx_scratch(ctx, 1, 4 * chw, error);
  if (!buf) return FALSE;
  float *scores = sige_ctx_scratch(ctx, 2, (size_t)tile * hw, error);
  if (!scores) return FALSE;
  float *h = buf, *q = buf + chw, *k = buf + 2 * chw, *v = buf + 3 * chw;
  const float inv_sqrt_c = (float)(1.0 / sqrt((double)c));

  for (int n = 0; n < n_img; n++) {
    const float *xn = x->data + (size_t)n * sige_ops_img_stride(x);
    float *on = out->data + (size_t)n * sige_ops_img_stride(out);
    for (int ch = 0; ch < c; ch++) {
      const size_t kidx = per_sample ? (size_t)n * c + ch : (size_t)ch;
      sige_ops_affine_act(xn + ch * x_cs, h + (size_t)ch * hw, (size_t)hw, scale[kidx],
                          shift[kidx], SIGE_ACT_NONE);
    }
    pointwise(p->q_w, p->q_b, h, hw, q, hw, c, hw);
    pointwise(p->k_w, p->k_b, h, hw, k, hw, c, hw);
    pointwise(p->v_w, p->v_b, h, hw, v, hw, c, hw);
    /* h is free now and receives the attended values. */
    for (int i0 = 0; i0 < hw; i0 += tile) {
      const int ti = hw - i0 < tile ? hw - i0 : tile;
      /* scores[i][j] = sum_c q[c][i0+i] k[c][j] / sqrt(C) */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ti, hw, c, inv_sqrt_c, q + i0, hw, k,
                  hw, 0.0f, scores, hw);
      softmax_rows(ctx, scores, ti, hw);
      /* h[c][i0+i] = sum_j v[c][j] scores[i][j] */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, ti, hw, 1.0f, v, hw, scores, hw,
                  0.0f, h + i0, hw);
    }
    /* out = x + proj(h): seed out with x (+ bias) and let sgemm accumulate. */
    const size_t o_cs = sige_ops_chan_stride(out);
    for (int ch = 0; ch < c; ch++) {
      const float b = p->proj_b ? p->proj_b->data[ch] : 0.0f;
      const float *src = xn + ch * x_cs;
      float *dst = on + ch * o_cs;
      for (int i = 0; i < hw; i++) dst[i] = src[i] + b;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, hw, c, 1.0f, p->proj_w->data, c, h,
                hw, 1.0f, on, (int)o_cs);
  }
  sige_ctx_add_macs(ctx, (uint64_t)n_img * (4 * (uint64_t)c * c * (uint64_t)hw +
                                            2 * (uint64_t)c * (uint64_t)hw * (uint64_t)hw));
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
  if (SIGE_ON_DEVICE(x)) return sige_dev_attention(ctx, x, p, ss, ss + nc, TRUE, out, error);
  return attention_run(ctx, x, p, ss, ss + nc, TRUE, out, error);
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
  if (SIGE_ON_DEVICE(x)) return sige_dev_attention(ctx, x, p, scale, shift, FALSE, out, error);
  return attention_run(ctx, x, p, scale, shift, FALSE, out, error);
}

gboolean sige_multihead_attention(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *qkv_w,
                                  const sige_tensor *qkv_b, const sige_tensor *proj_w,
                                  const sige_tensor *proj_b, int heads, int head_dim,
                                  const float *scale, const float *shift, sige_tensor *out,
                                  GError **error) {
  g_return_val_if_fail(ctx && x && qkv_w && proj_w && scale && shift && out, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  if (!sige_ops_check_f32(error, "multihead_attention", x, out, qkv_w, proj_w)) return FALSE;
  const int C = SIGE_C(x), hw = SIGE_H(x) * SIGE_W(x), d = head_dim;
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
  if (SIGE_ON_DEVICE(x))
    return sige_dev_multihead_attention(ctx, x, qkv_w, qkv_b, proj_w, proj_b, heads, head_dim,
                                        scale, shift, out, error);
  const size_t chw = (size_t)C * hw;
  g_autofree float *h = g_try_new(float, chw);
  g_autofree float *qkv = g_try_new(float, 3 * chw);
  g_autofree float *scores = g_try_new(float, (size_t)hw * hw);
  if (!h || !qkv || !scores) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM,
                "attention at %dx%d, %d channels: out of memory", SIGE_H(x), SIGE_W(x), C);
    return FALSE;
  }
  for (int c = 0; c < C; c++) {
    const float *src = x->data + (size_t)c * hw;
    float *dst = h + (size_t)c * hw;
    for (int i = 0; i < hw; i++) dst[i] = src[i] * scale[c] + shift[c];
  }
  for (int o = 0; o < 3 * C; o++) {
    const float bv = qkv_b ? qkv_b->data[o] : 0.0f;
    float *row = qkv + (size_t)o * hw;
    for (int i = 0; i < hw; i++) row[i] = bv;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 3 * C, hw, C, 1.0f, qkv_w->data, C, h,
              hw, 1.0f, qkv, hw);
  const float alpha = (float)(1.0 / sqrt((double)d));
  for (int hd = 0; hd < heads; hd++) {
    const float *q = qkv + (size_t)hd * d * hw;
    const float *k = qkv + chw + (size_t)hd * d * hw;
    const float *v = qkv + 2 * chw + (size_t)hd * d * hw;
    /* scores[i][j] = sum_c q[c][i] k[c][j] / sqrt(d) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hw, hw, d, alpha, q, hw, k, hw, 0.0f,
                scores, hw);
    softmax_rows(ctx, scores, hw, hw);
    /* o[c][i] = sum_j v[c][j] scores[i][j] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, hw, hw, 1.0f, v, hw, scores, hw, 0.0f,
                h + (size_t)hd * d * hw, hw);
  }
  for (int c = 0; c < C; c++) {
    const float bv = proj_b ? proj_b->data[c] : 0.0f;
    const float *src = x->data + (size_t)c * hw;
    float *dst = out->data + (size_t)c * hw;
    for (int i = 0; i < hw; i++) dst[i] = src[i] + bv;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C, hw, C, 1.0f, proj_w->data, C, h, hw,
              1.0f, out->data, hw);
  sige_ctx_add_macs(ctx, 4 * (uint64_t)C * C * (uint64_t)hw + 2 * (uint64_t)C * hw * hw);
  return TRUE;
}
