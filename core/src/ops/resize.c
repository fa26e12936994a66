/* Nearest and bilinear resizing, 2x2 average pooling (F.interpolate /
 * AvgPool2d): argument checks; the backends compute them. */
#include "ops_internal.h"

static gboolean resize_shapes_ok(const sige_tensor *x, const sige_tensor *out) {
  return sige_ops_is4(x) && sige_ops_is4(out) && x->shape[0] == out->shape[0] &&
         x->shape[1] == out->shape[1] && x->layout == out->layout && x->data != out->data &&
         sige_ops_f32(x) && sige_ops_f32(out);
}

void sige_resize_nearest(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  g_return_if_fail(ctx && resize_shapes_ok(x, out));
  const int h = SIGE_H(x), w = SIGE_W(x), ho = SIGE_H(out), wo = SIGE_W(out);
  g_return_if_fail(h >= 1 && w >= 1 && ho >= 1 && wo >= 1);
  sige_tensor_iface(x)->resize_nearest(ctx, x, out);
}

void sige_resize_bilinear(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  g_return_if_fail(ctx && resize_shapes_ok(x, out));
  const int h = SIGE_H(x), w = SIGE_W(x), ho = SIGE_H(out), wo = SIGE_W(out);
  g_return_if_fail(h >= 1 && w >= 1 && ho >= 1 && wo >= 1);
  sige_tensor_iface(x)->resize_bilinear(ctx, x, out);
}

void sige_avg_pool2x2(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  g_return_if_fail(ctx && resize_shapes_ok(x, out));
  const int h = SIGE_H(x), w = SIGE_W(x), ho = SIGE_H(out), wo = SIGE_W(out);
  g_return_if_fail(h % 2 == 0 && w % 2 == 0 && ho * 2 == h && wo * 2 == w);
  sige_tensor_iface(x)->avg_pool2x2(ctx, x, out);
}
