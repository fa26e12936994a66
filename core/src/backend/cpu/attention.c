/* Self-attention on the CPU: DDPM's AttnBlock (one sample at a time, the
 * score matrix in row tiles) and the PD UNet's multi-head attention. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "../softmax_row.h"
#include "cpu_internal.h"
#include "sige/error.h"

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
  for (int i = 0; i < rows; i++) sige_softmax_row(s + (size_t)i * cols, cols);
}

/* scale/shift: per (sample, channel) when per_sample, else per channel. */
gboolean sige_cpu_attention(sige_ctx *ctx, const sige_tensor *x, const sige_attention_params *p_in,
                            const float *scale, const float *shift, gboolean per_sample,
                            sige_tensor *out, GError **error) {
  /* half weights widened for the call (C x C each: small next to the maps) */
  g_autoptr(sige_tensor) qw = NULL, kw = NULL, vw = NULL, pw = NULL;
  sige_attention_params pf = *p_in;
  if (!(pf.q_w = sige_cpu_param_f32(p_in->q_w, &qw, error)) ||
      !(pf.k_w = sige_cpu_param_f32(p_in->k_w, &kw, error)) ||
      !(pf.v_w = sige_cpu_param_f32(p_in->v_w, &vw, error)) ||
      !(pf.proj_w = sige_cpu_param_f32(p_in->proj_w, &pw, error)))
    return FALSE;
  const sige_attention_params *p = &pf;
  const int n_img = SIGE_N(x), c = SIGE_C(x);
  const int hw = SIGE_H(x) * SIGE_W(x);
  const size_t chw = (size_t)c * hw;
  const size_t x_cs = sige_cpu_chan_stride(x);
  /* Query rows per tile, so that the hw x hw score matrix is never built whole
   * for big feature maps. */
  size_t rows = SIGE_CPU_SCRATCH_LIMIT / (size_t)(hw ? hw : 1);
  int tile = rows == 0 ? 1 : (rows < (size_t)hw ? (int)rows : hw);
  float *buf = sige_ctx_scratch(ctx, 1, 4 * chw, error);
  if (!buf) return FALSE;
  float *scores = sige_ctx_scratch(ctx, 2, (size_t)tile * hw, error);
  if (!scores) return FALSE;
  float *h = buf, *q = buf + chw, *k = buf + 2 * chw, *v = buf + 3 * chw;
  const float inv_sqrt_c = (float)(1.0 / sqrt((double)c));

  for (int n = 0; n < n_img; n++) {
    const float *xn = x->data + (size_t)n * sige_cpu_img_stride(x);
    float *on = out->data + (size_t)n * sige_cpu_img_stride(out);
    for (int ch = 0; ch < c; ch++) {
      const size_t kidx = per_sample ? (size_t)n * c + ch : (size_t)ch;
      sige_cpu_affine_act(xn + ch * x_cs, h + (size_t)ch * hw, (size_t)hw, scale[kidx],
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
    const size_t o_cs = sige_cpu_chan_stride(out);
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

gboolean sige_cpu_multihead_attention(sige_ctx *ctx, const sige_tensor *x,
                                      const sige_tensor *qkv_w_in, const sige_tensor *qkv_b,
                                      const sige_tensor *proj_w_in, const sige_tensor *proj_b,
                                      int heads, int head_dim, const float *scale,
                                      const float *shift, sige_tensor *out, GError **error) {
  g_autoptr(sige_tensor) qkv_tmp = NULL, proj_tmp = NULL;
  const sige_tensor *qkv_w = sige_cpu_param_f32(qkv_w_in, &qkv_tmp, error);
  const sige_tensor *proj_w = qkv_w ? sige_cpu_param_f32(proj_w_in, &proj_tmp, error) : NULL;
  if (!proj_w) return FALSE;
  const int C = SIGE_C(x), hw = SIGE_H(x) * SIGE_W(x), d = head_dim;
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
