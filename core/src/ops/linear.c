/* Fully connected layer: argument checks; the backends compute it. */
#include "ops_internal.h"

gboolean sige_linear(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                     const sige_tensor *bias, sige_tensor *out, GError **error) {
  g_return_val_if_fail(ctx && x && weight && out, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  /* weights may be kept half (sige_weights_keep_half): backends widen them */
  if (!sige_ops_check_f32(error, "linear", x, bias, out, NULL)) return FALSE;
  if (x->ndim != 2 || weight->ndim != 2 || out->ndim != 2) {
    sige_ops_shape_error(error, "linear", "x, weight and out must be 2-D", x, "x", weight,
                         "weight", out, "out");
    return FALSE;
  }
  const int64_t n = x->shape[0], in = x->shape[1], nout = weight->shape[0];
  if (weight->shape[1] != in || out->shape[0] != n || out->shape[1] != nout) {
    sige_ops_shape_error(error, "linear", "expected x [N, in], weight [out, in], out [N, out]",
                         x, "x", weight, "weight", out, "out");
    return FALSE;
  }
  if (bias && (int64_t)bias->numel != nout) {
    sige_ops_shape_error(error, "linear", "bias must hold `out` floats", weight, "weight", bias,
                         "bias", NULL, NULL);
    return FALSE;
  }
  return sige_tensor_iface(x)->linear(ctx, x, weight, bias, out, error);
}
