/* Element-wise binary ops and channel concatenation: argument checks; the
 * backends compute them. */
#include "ops_internal.h"

static gboolean same_layout3(const sige_tensor *a, const sige_tensor *b, const sige_tensor *c) {
  return sige_tensor_same_shape(a, b) && sige_tensor_same_shape(a, c) && a->layout == b->layout &&
         a->layout == c->layout && sige_ops_f32(a) && sige_ops_f32(b) && sige_ops_f32(c);
}

void sige_add(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b, sige_tensor *out) {
  g_return_if_fail(ctx && a && b && out);
  g_return_if_fail(same_layout3(a, b, out));
  sige_tensor_iface(a)->binary(ctx, FALSE, a, b, NULL, out);
}

void sige_spade_modulate(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *gamma,
                         const sige_tensor *beta, sige_tensor *out) {
  g_return_if_fail(ctx && x && gamma && beta && out && sige_ops_f32(out));
  g_return_if_fail(same_layout3(x, gamma, beta) && sige_tensor_same_shape(x, out) &&
                   x->layout == out->layout);
  sige_tensor_iface(x)->binary(ctx, TRUE, x, gamma, beta, out);
}

void sige_concat_channels(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b,
                          sige_tensor *out) {
  g_return_if_fail(ctx && sige_ops_is4(a) && sige_ops_is4(b) && sige_ops_is4(out));
  g_return_if_fail(a->shape[0] == b->shape[0] && a->shape[2] == b->shape[2] &&
                   a->shape[3] == b->shape[3] && out->shape[0] == a->shape[0] &&
                   out->shape[1] == a->shape[1] + b->shape[1] && out->shape[2] == a->shape[2] &&
                   out->shape[3] == a->shape[3]);
  g_return_if_fail(a->layout == b->layout && a->layout == out->layout);
  g_return_if_fail(sige_ops_f32(a) && sige_ops_f32(b) && sige_ops_f32(out));
  g_return_if_fail(out->data != a->data && out->data != b->data);
  sige_tensor_iface(a)->concat_channels(ctx, a, b, out);
}
