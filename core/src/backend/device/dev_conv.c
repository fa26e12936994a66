/* Convolution and linear layers on a device: im2col + one SGEMM per group
 * over every image (or every active block) at once, a direct kernel for
 * depthwise convs, and 1x1 convs as a plain SGEMM on the input planes. */
#include "../im2col_tiling.h"
#include "device_impl.h"
#include "sige/error.h"

/* The im2col buffer is tiled by output rows beyond this many floats (512
 * MiB): large enough that every sparse pass and most dense layers take one
 * GEMM per group. */
#define IM2COL_LIMIT ((size_t)128 << 20)

typedef struct {
  sige_dev_backend *be;
  const float *x, *w;
  float *out;
  int n, cin, h, wd, cout, kh, kw, ho, wo, groups;
  const sige_conv2d_params *p;
  size_t x_cs, x_is, o_cs, o_is;
} conv_job;

static size_t chan_stride(const sige_tensor *t) {
  const size_t hw = (size_t)t->shape[2] * (size_t)t->shape[3];
  return t->layout == SIGE_LAYOUT_CNHW ? hw * (size_t)t->shape[0] : hw;
}

static size_t img_stride(const sige_tensor *t) {
  const size_t hw = (size_t)t->shape[2] * (size_t)t->shape[3];
  return t->layout == SIGE_LAYOUT_CNHW ? hw : hw * (size_t)t->shape[1];
}

/* C block = W_g * B_g for every group: B has cin * kh * kw rows of ncols
 * (stride ldb), C rows of stride ldc; beta 1 accumulates onto a bias. */
static gboolean grouped_gemm(const conv_job *j, const float *b, size_t ldb, float *c, size_t ldc,
                             size_t ncols, float beta) {
  const int cg = j->cin / j->groups, og = j->cout / j->groups, k = cg * j->kh * j->kw;
  for (int g = 0; g < j->groups; g++)
    if (!sige_dev_gemm_rm(j->be, 0, 0, og, (int)ncols, k, 1.0f, j->w + (size_t)g * og * k, k,
                          b + (size_t)g * k * ldb, (int)ldb, beta, c + (size_t)g * og * ldc,
                          (int)ldc))
      return FALSE;
  return TRUE;
}

static gboolean conv_1x1(const conv_job *j, gboolean cnhw, float beta) {
  const size_t hw = (size_t)j->h * (size_t)j->wd;
  if (cnhw) return grouped_gemm(j, j->x, j->x_cs, j->out, j->o_cs, hw * (size_t)j->n, beta);
  for (int n = 0; n < j->n; n++)
    if (!grouped_gemm(j, j->x + (size_t)n * j->x_is, j->x_cs, j->out + (size_t)n * j->o_is,
                      j->o_cs, hw, beta))
      return FALSE;
  return TRUE;
}

static gboolean conv_depthwise(const conv_job *j, const float *bias) {
  const sige_k_depthwise_args a = {
      .x = j->x, .w = j->w, .bias = bias, .out = j->out,
      .x_cs = (uint32_t)j->x_cs, .x_is = (uint32_t)j->x_is,
      .o_cs = (uint32_t)j->o_cs, .o_is = (uint32_t)j->o_is,
      .c = j->cin, .h = j->h, .wd = j->wd, .kh = j->kh, .kw = j->kw,
      .sh = j->p->stride_h, .sw = j->p->stride_w, .pt = j->p->pad_top, .pl = j->p->pad_left,
      .ho = j->ho, .wo = j->wo};
  return sige_dev_launch(j->be, SIGE_K_DEPTHWISE, &a, (size_t)j->n * j->cin * j->ho * j->wo);
}

static gboolean conv_im2col(const conv_job *j, gboolean cnhw, float beta) {
  const size_t rows = (size_t)j->cin * j->kh * j->kw;
  /* tiles as on the CPU */
  const sige_im2col_tiling tl = sige_im2col_tiles(IM2COL_LIMIT, rows, j->n, j->ho, j->wo, cnhw);
  float *buf = sige_dev_scratch(j->be, 0, tl.floats * sizeof(float));
  if (!buf) return FALSE;
  for (sige_im2col_tile t = sige_im2col_tile_at(&tl, 0, 0); t.nimg > 0;
       t = sige_im2col_next(&tl, t)) {
    const sige_k_im2col_args a = {
        .x = j->x, .buf = buf, .x_cs = (uint32_t)j->x_cs, .x_is = (uint32_t)j->x_is,
        .h = j->h, .w = j->wd, .kh = j->kh, .kw = j->kw,
        .sh = j->p->stride_h, .sw = j->p->stride_w, .pt = j->p->pad_top, .pl = j->p->pad_left,
        .n0 = t.n0, .nimg = t.nimg, .r0 = t.r0, .band = t.r1 - t.r0, .wo = j->wo};
    if (!sige_dev_launch(j->be, SIGE_K_IM2COL, &a, rows * t.cols) ||
        !grouped_gemm(j, buf, t.cols, j->out + (size_t)t.n0 * j->o_is + (size_t)t.r0 * j->wo,
                      j->o_cs, t.cols, beta))
      return FALSE;
  }
  return TRUE;
}

/* out[i] = vals[channel of i]: the bias the GEMMs then accumulate onto. */
static gboolean fill_channels(sige_dev_backend *be, sige_tensor *out, const float *vals) {
  const sige_k_fill_args a = {out->data, sige_dev_planes(out), vals};
  return sige_dev_launch(be, SIGE_K_CHANNEL_FILL, &a, out->numel);
}

gboolean sige_dev_conv2d(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                         const sige_tensor *bias, const sige_conv2d_params *p, sige_tensor *out,
                         GError **error) {
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "conv2d")) return sige_dev_check(be, error);
  const float *w = sige_dev_param(be, weight), *b = sige_dev_param(be, bias);
  if (!w || (bias && !b)) return sige_dev_check(be, error);
  conv_job j = {
      .be = be, .x = x->data, .w = w, .out = out->data,
      .n = SIGE_N(x), .cin = SIGE_C(x), .h = SIGE_H(x), .wd = SIGE_W(x),
      .cout = SIGE_N(weight), .kh = SIGE_H(weight), .kw = SIGE_W(weight),
      .ho = SIGE_H(out), .wo = SIGE_W(out), .groups = p->groups, .p = p,
      .x_cs = chan_stride(x), .x_is = img_stride(x),
      .o_cs = chan_stride(out), .o_is = img_stride(out),
  };
  if (j.n == 0 || j.cout == 0) return TRUE;
  const gboolean cnhw = x->layout == SIGE_LAYOUT_CNHW;
  const gboolean pointwise = j.kh == 1 && j.kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                             p->pad_top == 0 && p->pad_bottom == 0 && p->pad_left == 0 &&
                             p->pad_right == 0;
  if (!pointwise && j.groups == j.cin && j.cout == j.cin) {
    conv_depthwise(&j, b);
  } else {
    const float beta = b ? 1.0f : 0.0f;
    if (!b || fill_channels(be, out, b)) {
      if (pointwise)
        conv_1x1(&j, cnhw, beta);
      else
        conv_im2col(&j, cnhw, beta);
    }
  }
  if (!sige_dev_check(be, error)) return FALSE;
  sige_ctx_add_macs(ctx, (uint64_t)j.n * (uint64_t)j.cout * (uint64_t)(j.cin / j.groups) *
                             (uint64_t)j.kh * (uint64_t)j.kw * (uint64_t)j.ho * (uint64_t)j.wo);
  return TRUE;
}

gboolean sige_dev_linear(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                         const sige_tensor *bias, sige_tensor *out, GError **error) {
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "linear")) return sige_dev_check(be, error);
  const int n = (int)x->shape[0], in = (int)x->shape[1], nout = (int)weight->shape[0];
  const float *w = sige_dev_param(be, weight), *b = sige_dev_param(be, bias);
  if (!w || (bias && !b)) return sige_dev_check(be, error);
  if (n == 0 || nout == 0) return TRUE;
  if (b) {
    const sige_k_fill_args a = {out->data, {n, nout, 1, 0}, b};
    sige_dev_launch(be, SIGE_K_CHANNEL_FILL, &a, out->numel);
  }
  sige_dev_gemm_rm(be, 0, 1, n, nout, in, 1.0f, x->data, in, w, in, b ? 1.0f : 0.0f, out->data,
                   nout);
  if (!sige_dev_check(be, error)) return FALSE;
  sige_ctx_add_macs(ctx, (uint64_t)n * (uint64_t)in * (uint64_t)nout);
  return TRUE;
}
