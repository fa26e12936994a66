/* Normalisations, all expressed as a per-(sample, channel) affine map:
 * argument checks and the compositions; the backends compute the
 * statistics and the affine maps. */
#include <math.h>

#include "ops_internal.h"

void sige_group_norm_affine(sige_ctx *ctx, const sige_tensor *x, int groups, float eps,
                            const sige_tensor *gamma, const sige_tensor *beta, float *scale,
                            float *shift) {
  g_return_if_fail(ctx && sige_ops_is4(x) && scale && shift);
  g_return_if_fail(sige_ops_f32(x) && sige_ops_f32(gamma) && sige_ops_f32(beta));
  const int c_all = SIGE_C(x);
  g_return_if_fail(groups >= 1 && c_all % groups == 0);
  g_return_if_fail(!gamma || (int64_t)gamma->numel == c_all);
  g_return_if_fail(!beta || (int64_t)beta->numel == c_all);
  sige_tensor_iface(x)->group_norm_affine(ctx, x, groups, eps, gamma, beta, scale, shift);
}

void sige_channel_affine(sige_ctx *ctx, const sige_tensor *x, const float *scale,
                         const float *shift, gboolean per_sample, sige_act act,
                         sige_tensor *out) {
  g_return_if_fail(ctx && sige_ops_is4(x) && sige_ops_is4(out) && scale && shift);
  g_return_if_fail(sige_ops_f32(x) && sige_ops_f32(out));
  g_return_if_fail(sige_tensor_same_shape(x, out) && x->layout == out->layout);
  sige_tensor_iface(x)->channel_affine(ctx, x, scale, shift, per_sample, act, out);
}

void sige_channel_moments(sige_ctx *ctx, const sige_tensor *x, double *sum, double *sumsq) {
  g_return_if_fail(ctx && sige_ops_is4(x) && sige_ops_f32(x) && sum && sumsq);
  g_return_if_fail(SIGE_N(x) == 1 && x->layout == SIGE_LAYOUT_NCHW);
  sige_tensor_iface(x)->channel_moments(ctx, x, sum, sumsq);
}

void sige_group_norm(sige_ctx *ctx, const sige_tensor *x, int groups, float eps,
                     const sige_tensor *gamma, const sige_tensor *beta, sige_tensor *out) {
  g_return_if_fail(ctx && sige_ops_is4(x) && sige_ops_is4(out));
  g_return_if_fail(sige_ops_f32(x) && sige_ops_f32(out));
  g_return_if_fail(sige_tensor_same_shape(x, out) && x->layout == out->layout);
  g_return_if_fail(groups >= 1 && SIGE_C(x) % groups == 0);
  const size_t nc = (size_t)SIGE_N(x) * (size_t)SIGE_C(x);
  /* N*C floats: small enough that an aborting allocation is acceptable here. */
  float *scale = g_new(float, 2 * nc + 1);
  float *shift = scale + nc;
  sige_group_norm_affine(ctx, x, groups, eps, gamma, beta, scale, shift);
  sige_channel_affine(ctx, x, scale, shift, TRUE, SIGE_ACT_NONE, out);
  g_free(scale);
}

void sige_instance_norm(sige_ctx *ctx, const sige_tensor *x, float eps, sige_tensor *out) {
  g_return_if_fail(sige_ops_is4(x) && SIGE_C(x) >= 1);
  sige_group_norm(ctx, x, SIGE_C(x), eps, NULL, NULL, out);
}

void sige_batch_norm(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *running_mean,
                     const sige_tensor *running_var, const sige_tensor *gamma,
                     const sige_tensor *beta, float eps, sige_tensor *out) {
  g_return_if_fail(ctx && sige_ops_is4(x) && sige_ops_is4(out) && running_mean && running_var);
  g_return_if_fail(sige_ops_f32(x) && sige_ops_f32(out));
  g_return_if_fail(sige_tensor_same_shape(x, out) && x->layout == out->layout);
  const int c_all = SIGE_C(x);
  g_return_if_fail((int64_t)running_mean->numel == c_all &&
                   (int64_t)running_var->numel == c_all);
  g_return_if_fail(!gamma || (int64_t)gamma->numel == c_all);
  g_return_if_fail(!beta || (int64_t)beta->numel == c_all);
  float *scale = g_new(float, 2 * (size_t)c_all + 1);
  float *shift = scale + c_all;
  for (int c = 0; c < c_all; c++) {
    const double rstd = 1.0 / sqrt((double)running_var->data[c] + (double)eps);
    const double gm = gamma ? gamma->data[c] : 1.0;
    const double bt = beta ? beta->data[c] : 0.0;
    scale[c] = (float)(gm * rstd);
    shift[c] = (float)(bt - (double)running_mean->data[c] * gm * rstd);
  }
  sige_channel_affine(ctx, x, scale, shift, FALSE, SIGE_ACT_NONE, out);
  g_free(scale);
}
