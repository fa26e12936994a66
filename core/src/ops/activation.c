/* Point-wise activations with torch's definitions: the scalar and the
 * contiguous-array forms (which the CPU backend's loops use), and the op. */
#include <math.h>

#include "fast_exp.h"
#include "ops_internal.h"

float sige_act_apply(sige_act act, float v) {
  switch (act) {
    case SIGE_ACT_NONE: return v;
    case SIGE_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case SIGE_ACT_LEAKY_RELU: return v > 0.0f ? v : v * SIGE_LEAKY_SLOPE;
    case SIGE_ACT_SWISH: return v / (1.0f + sige_fast_expf(-v));
    case SIGE_ACT_TANH: return tanhf(v);
    case SIGE_ACT_SIGMOID: return 1.0f / (1.0f + sige_fast_expf(-v));
    case SIGE_ACT_QUICK_GELU: return v / (1.0f + sige_fast_expf(-1.702f * v));
  }
  return v;
}

/* One loop per activation so that the compiler can vectorise each of them;
 * dispatching per element would keep the switch inside the hot loop. */
void sige_act_inplace(float *v, size_t n, sige_act act) {
  switch (act) {
    case SIGE_ACT_NONE: break;
    case SIGE_ACT_RELU:
      for (size_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
      break;
    case SIGE_ACT_LEAKY_RELU:
      for (size_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : v[i] * SIGE_LEAKY_SLOPE;
      break;
    case SIGE_ACT_SWISH:
      for (size_t i = 0; i < n; i++) v[i] = v[i] / (1.0f + sige_fast_expf(-v[i]));
      break;
    case SIGE_ACT_TANH:
      for (size_t i = 0; i < n; i++) v[i] = tanhf(v[i]);
      break;
    case SIGE_ACT_SIGMOID:
      for (size_t i = 0; i < n; i++) v[i] = 1.0f / (1.0f + sige_fast_expf(-v[i]));
      break;
    case SIGE_ACT_QUICK_GELU:
      for (size_t i = 0; i < n; i++) v[i] = v[i] / (1.0f + sige_fast_expf(-1.702f * v[i]));
      break;
  }
}

void sige_activation(sige_ctx *ctx, const sige_tensor *x, sige_act act, sige_tensor *out) {
  g_return_if_fail(ctx && x && out && sige_ops_f32(x) && sige_ops_f32(out));
  g_return_if_fail(sige_tensor_same_shape(x, out) && x->layout == out->layout);
  sige_tensor_iface(x)->activation(ctx, x, act, out);
}
