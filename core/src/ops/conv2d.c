/* 2-D convolution: argument checks and the output shape; the backends
 * compute it (cpu/conv2d.c, device/dev_conv.c). */
#include "ops_internal.h"

sige_conv2d_params sige_conv2d_params_simple(int stride, int pad) {
  sige_conv2d_params p = {stride, stride, pad, pad, pad, pad, 1};
  return p;
}

static int out_extent(int in, int pad0, int pad1, int k, int stride) {
  int span = in + pad0 + pad1 - k;
  return span < 0 ? 0 : span / stride + 1;
}

void sige_conv2d_out_shape(const sige_tensor *x, const sige_tensor *weight,
                           const sige_conv2d_params *p, int64_t out_shape[4]) {
  out_shape[0] = x->shape[0];
  out_shape[1] = weight->shape[0];
  out_shape[2] = out_extent(SIGE_H(x), p->pad_top, p->pad_bottom, SIGE_H(weight), p->stride_h);
  out_shape[3] = out_extent(SIGE_W(x), p->pad_left, p->pad_right, SIGE_W(weight), p->stride_w);
}

static gboolean check_conv(const sige_tensor *x, const sige_tensor *weight,
                           const sige_tensor *bias, const sige_conv2d_params *p,
                           const sige_tensor *out, GError **error) {
  if (!sige_ops_is4(x) || !sige_ops_is4(weight) || !sige_ops_is4(out)) {
    sige_ops_shape_error(error, "conv2d", "x, weight and out must be 4-D", x, "x", weight,
                         "weight", out, "out");
    return FALSE;
  }
  if (p->groups < 1 || p->stride_h < 1 || p->stride_w < 1 || p->pad_top < 0 ||
      p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "conv2d: invalid parameters (stride %dx%d, padding %d,%d,%d,%d, groups %d)",
                p->stride_h, p->stride_w, p->pad_top, p->pad_bottom, p->pad_left, p->pad_right,
                p->groups);
    return FALSE;
  }
  if (SIGE_C(x) % p->groups != 0 || SIGE_N(weight) % p->groups != 0 ||
      SIGE_C(weight) * p->groups != SIGE_C(x) || SIGE_H(weight) < 1 || SIGE_W(weight) < 1) {
    char why[96];
    g_snprintf(why, sizeof why, "channels do not match the weight with groups=%d", p->groups);
    sige_ops_shape_error(error, "conv2d", why, x, "x", weight, "weight", NULL, NULL);
    return FALSE;
  }
  if (bias && (int64_t)bias->numel != weight->shape[0]) {
    sige_ops_shape_error(error, "conv2d", "bias must hold Cout floats", weight, "weight", bias,
                         "bias", NULL, NULL);
    return FALSE;
  }
  int64_t os[4];
  sige_conv2d_out_shape(x, weight, p, os);
  if (os[2] < 1 || os[3] < 1 || out->shape[0] != os[0] || out->shape[1] != os[1] ||
      out->shape[2] != os[2] || out->shape[3] != os[3]) {
    char why[128];
    g_snprintf(why, sizeof why,
               "out must be [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
               ", %" G_GINT64_FORMAT "]",
               os[0], os[1], os[2], os[3]);
    sige_ops_shape_error(error, "conv2d", why, x, "x", weight, "weight", out, "out");
    return FALSE;
  }
  if (out->layout != x->layout) {
    sige_ops_shape_error(error, "conv2d", "out must have the same layout as x", x, "x", out,
                         "out", NULL, NULL);
    return FALSE;
  }
  return TRUE;
}

gboolean sige_conv2d(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                     const sige_tensor *bias, const sige_conv2d_params *p, sige_tensor *out,
                     GError **error) {
  g_return_val_if_fail(ctx && x && weight && p && out, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  /* weights may be kept half (sige_weights_keep_half): backends widen them */
  if (!sige_ops_check_f32(error, "conv2d", x, bias, out, NULL)) return FALSE;
  if (!check_conv(x, weight, bias, p, out, error)) return FALSE;
  return sige_tensor_iface(x)->conv2d(ctx, x, weight, bias, p, out, error);
}
