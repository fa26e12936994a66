/* Self-attention on a device, step for step as ops/attention.c: the norm as
 * a per-channel affine, q / k / v as SGEMMs, the score matrix in row tiles
 * with a row softmax, the attended values, and the projection accumulated
 * onto x + bias.  The multi-head variant (PD UNet) runs all heads in one
 * strided-batched SGEMM per product. */
#include <math.h>

#include "device_impl.h"
#include "sige/error.h"

/* Score matrices beyond this many floats are computed in row tiles. */
#define SCORES_LIMIT ((size_t)64 << 20)

/* dst = act-free affine of x's image planes [C][hw] (contiguous). */
static gboolean affine_planes(sige_dev_backend *be, const float *x, float *dst, int c, int hw,
                              const float *scale, const float *shift) {
  sige_k_affine_args a = {.x = x, .y = dst, .pl = {1, c, (uint32_t)hw, 0}, .act = SIGE_K_ACT_NONE};
  const sige_dev_arg parts[] = {{scale, (size_t)c * sizeof(float)},
                                {shift, (size_t)c * sizeof(float)}};
  const void *dev[2];
  if (!sige_dev_args(be, parts, 2, dev)) return FALSE;
  a.scale = dev[0];
  a.shift = dev[1];
  return sige_dev_launch(be, SIGE_K_AFFINE, &a, (size_t)c * hw);
}

/* dst[rows][hw] = w[rows][cin] src[cin][hw] + b (device pointers). */
static gboolean pointwise(sige_dev_backend *be, const float *w, const float *b, const float *src,
                          int cin, float *dst, int rows, int hw) {
  if (b) {
    const sige_k_fill_args f = {dst, {1, rows, (uint32_t)hw, 0}, b};
    if (!sige_dev_launch(be, SIGE_K_CHANNEL_FILL, &f, (size_t)rows * hw)) return FALSE;
  }
  return sige_dev_gemm_rm(be, 0, 0, rows, hw, cin, 1.0f, w, cin, src, hw, b ? 1.0f : 0.0f, dst,
                          hw);
}

/* out = x + proj_w h + proj_b for one image. */
static gboolean project(sige_dev_backend *be, const float *x, const float *pw, const float *pb,
                        const float *h, float *out, int c, int hw) {
  const sige_k_affine_args a = {.x = x, .y = out, .pl = {1, c, (uint32_t)hw, 0}, .shift = pb,
                                .act = SIGE_K_ACT_NONE};
  return sige_dev_launch(be, SIGE_K_AFFINE, &a, (size_t)c * hw) &&
         sige_dev_gemm_rm(be, 0, 0, c, hw, c, 1.0f, pw, c, h, hw, 1.0f, out, hw);
}

static gboolean nchw_ok(sige_dev_backend *be, const sige_tensor *x, const char *op) {
  if (x->layout == SIGE_LAYOUT_NCHW || SIGE_N(x) == 1) return TRUE;
  return sige_dev_fail(be, "%s on the device takes NCHW tensors", op);
}

gboolean sige_dev_attention(sige_ctx *ctx, const sige_tensor *x, const sige_attention_params *p,
                            const float *scale, const float *shift, gboolean per_sample,
                            sige_tensor *out, GError **error) {
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "attention") || !nchw_ok(be, x, "attention"))
    return sige_dev_check(be, error);
  const int n_img = SIGE_N(x), c = SIGE_C(x), hw = SIGE_H(x) * SIGE_W(x);
  const size_t chw = (size_t)c * hw;
  const float *qw = sige_dev_param(be, p->q_w), *qb = sige_dev_param(be, p->q_b);
  const float *kw = sige_dev_param(be, p->k_w), *kb = sige_dev_param(be, p->k_b);
  const float *vw = sige_dev_param(be, p->v_w), *vb = sige_dev_param(be, p->v_b);
  const float *pw = sige_dev_param(be, p->proj_w), *pb = sige_dev_param(be, p->proj_b);
  if (!qw || !kw || !vw || !pw) return sige_dev_check(be, error);
  const size_t rows = SCORES_LIMIT / (size_t)(hw ? hw : 1);
  const int tile = rows == 0 ? 1 : (rows < (size_t)hw ? (int)rows : hw);
  float *buf = sige_dev_scratch(be, 1, 4 * chw * sizeof(float));
  float *scores = sige_dev_scratch(be, 2, (size_t)tile * hw * sizeof(float));
  if (!buf || !scores) return sige_dev_check(be, error);
  float *h = buf, *q = buf + chw, *k = buf + 2 * chw, *v = buf + 3 * chw;
  const float inv_sqrt_c = (float)(1.0 / sqrt((double)c));
  for (int n = 0; n < n_img; n++) {
    const float *xn = x->data + (size_t)n * chw;
    float *on = out->data + (size_t)n * chw;
    const size_t at = per_sample ? (size_t)n * c : 0;
    if (!affine_planes(be, xn, h, c, hw, scale + at, shift + at) ||
        !pointwise(be, qw, qb, h, c, q, c, hw) || !pointwise(be, kw, kb, h, c, k, c, hw) ||
        !pointwise(be, vw, vb, h, c, v, c, hw))
      break;
    /* h is free now and receives the attended values */
    gboolean ok = TRUE;
    for (int i0 = 0; i0 < hw && ok; i0 += tile) {
      const int ti = hw - i0 < tile ? hw - i0 : tile;
      ok = sige_dev_gemm_rm(be, 1, 0, ti, hw, c, inv_sqrt_c, q + i0, hw, k, hw, 0.0f, scores,
                            hw) &&
           be->prims->softmax_rows(be, scores, ti, hw) &&
           sige_dev_gemm_rm(be, 0, 1, c, ti, hw, 1.0f, v, hw, scores, hw, 0.0f, h + i0, hw);
    }
    if (!ok || !project(be, xn, pw, pb, h, on, c, hw)) break;
  }
  if (!sige_dev_check(be, error)) return FALSE;
  sige_ctx_add_macs(ctx, (uint64_t)n_img * (4 * (uint64_t)c * c * (uint64_t)hw +
                                            2 * (uint64_t)c * (uint64_t)hw * (uint64_t)hw));
  return TRUE;
}

gboolean sige_dev_multihead_attention(sige_ctx *ctx, const sige_tensor *x,
                                      const sige_tensor *qkv_w, const sige_tensor *qkv_b,
                                      const sige_tensor *proj_w, const sige_tensor *proj_b,
                                      int heads, int head_dim, const float *scale,
                                      const float *shift, sige_tensor *out, GError **error) {
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "multihead_attention")) return sige_dev_check(be, error);
  const int c = SIGE_C(x), hw = SIGE_H(x) * SIGE_W(x), d = head_dim;
  const size_t chw = (size_t)c * hw, hw2 = (size_t)hw * hw;
  const float *wq = sige_dev_param(be, qkv_w), *bq = sige_dev_param(be, qkv_b);
  const float *pw = sige_dev_param(be, proj_w), *pb = sige_dev_param(be, proj_b);
  if (!wq || !pw) return sige_dev_check(be, error);
  /* all heads' scores at once when they fit, else one head at a time */
  const int batch = (size_t)heads * hw2 <= SCORES_LIMIT ? heads : 1;
  float *buf = sige_dev_scratch(be, 1, 4 * chw * sizeof(float));
  float *scores = sige_dev_scratch(be, 2, (size_t)batch * hw2 * sizeof(float));
  if (!buf || !scores) return sige_dev_check(be, error);
  float *h = buf, *qkv = buf + chw;
  const float alpha = (float)(1.0 / sqrt((double)d));
  const long long sd = (long long)d * hw;
  if (affine_planes(be, x->data, h, c, hw, scale, shift) &&
      pointwise(be, wq, bq, h, c, qkv, 3 * c, hw)) {
    gboolean ok = TRUE;
    for (int h0 = 0; h0 < heads && ok; h0 += batch) {
      const float *q = qkv + (size_t)h0 * sd, *k = qkv + chw + (size_t)h0 * sd,
                  *v = qkv + 2 * chw + (size_t)h0 * sd;
      /* scores[i][j] = sum_c q[c][i] k[c][j] / sqrt(d); o[c][i] = sum_j v[c][j] scores[i][j] */
      ok = sige_dev_gemm_rm_batched(be, 1, 0, hw, hw, d, alpha, q, hw, sd, k, hw, sd, 0.0f,
                                    scores, hw, (long long)hw2, batch) &&
           be->prims->softmax_rows(be, scores, batch * hw, hw) &&
           sige_dev_gemm_rm_batched(be, 0, 1, d, hw, hw, 1.0f, v, hw, sd, scores, hw,
                                    (long long)hw2, 0.0f, h + (size_t)h0 * sd, hw, sd, batch);
    }
    if (ok) project(be, x->data, pw, pb, h, out->data, c, hw);
  }
  if (!sige_dev_check(be, error)) return FALSE;
  sige_ctx_add_macs(ctx, 4 * (uint64_t)c * c * (uint64_t)hw + 2 * (uint64_t)c * hw2);
  return TRUE;
}
