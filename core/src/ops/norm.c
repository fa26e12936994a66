/* Normalisations, all expressed as a per-(sample, channel) affine map. */
#include <math.h>

#include "ops_internal.h"

void sige_group_norm_affine(sige_ctx *ctx, const sige_tensor *x, int groups, float eps,
                            const sige_tensor *gamma, const sige_tensor *beta, float *scale,
                            float *shift) {
  g_return_if_fail(ctx && sige_ops_is4(x) && scale && shift);
  g_return_if_fail(sige_ops_f32(x) && sige_ops_f32(gamma) && sige_ops_f32(beta));
  const int n_img = SIGE_N(x), c_all = SIGE_C(x);
  g_return_if_fail(groups >= 1 && c_all % groups == 0);
  g_return_if_fail(!gamma || (int64_t)gamma->numel == c_all);
  g_return_if_fail(!beta || (int64_t)beta->numel == c_all);
  if (SIGE_ON_DEVICE(x)) {
    sige_dev_group_norm_affine(ctx, x, groups, eps, gamma, beta, scale, shift);
    return;
  }
  const int cg = c_all / groups;
  const size_t hw = (size_t)SIGE_H(x) * (size_t)SIGE_W(x);
  const int jobs = n_img * groups;
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(dynamic, 1)
  for (int jb = 0; jb < jobs; jb++) {
    const int n = jb / groups, g = jb % groups;
    /* Accumulating x - pivot rather than x keeps the one-pass variance formula
     * free of cancellation when the mean is large relative to the spread. */
    const double pivot = hw ? sige_ops_plane(x, n, g * cg)[0] : 0.0;
    double s = 0.0, ss = 0.0;
    for (int c = g * cg; c < (g + 1) * cg; c++) {
      const float *p = sige_ops_plane(x, n, c);
#pragma omp simd reduction(+ : s, ss)
      for (size_t i = 0; i < hw; i++) {
        const double d = (double)p[i] - pivot;
        s += d;
        ss += d * d;
      }
    }
    const double cnt = (double)hw * cg;
    const double dmean = cnt > 0 ? s / cnt : 0.0;
    double var = cnt > 0 ? ss / cnt - dmean * dmean : 0.0;
    if (var < 0.0) var = 0.0;
    const double mean = pivot + dmean;
    const double rstd = 1.0 / sqrt(var + (double)eps);
    for (int c = g * cg; c < (g + 1) * cg; c++) {
      const double gm = gamma ? gamma->data[c] : 1.0;
      const double bt = beta ? beta->data[c] : 0.0;
      scale[(size_t)n * c_all + c] = (float)(gm * rstd);
      shift[(size_t)n * c_all + c] = (float)(bt - mean * gm * rstd);
    }
  }
}

void sige_channel_affine(sige_ctx *ctx, const sige_tensor *x, const float *scale,
                         const float *shift, gboolean per_sample, sige_act act,
                         sige_tensor *out) {
  g_return_if_fail(ctx && sige_ops_is4(x) && sige_ops_is4(out) && scale && shift);
  g_return_if_fail(sige_ops_f32(x) && sige_ops_f32(out));
  g_return_if_fail(sige_tensor_same_shape(x, out) && x->layout == out->layout);
  if (SIGE_ON_DEVICE(x)) {
    sige_dev_affine(ctx, x, scale, shift, per_sample, act, out);
    return;
  }
  const int n_img = SIGE_N(x), c_all = SIGE_C(x);
  const size_t hw = (size_t)SIGE_H(x) * (size_t)SIGE_W(x);
  const int planes = n_img * c_all;
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int pc = 0; pc < planes; pc++) {
    const int n = pc / c_all, c = pc % c_all;
    const size_t k = per_sample ? (size_t)n * c_all + c : (size_t)c;
    sige_ops_affine_act(sige_ops_plane(x, n, c), sige_ops_plane(out, n, c), hw, scale[k],
                        shift[k], act);
  }
}

void sige_channel_moments(sige_ctx *ctx, const sige_tensor *x, double *sum, double *sumsq) {
  g_return_if_fail(ctx && sige_ops_is4(x) && sige_ops_f32(x) && sum && sumsq);
  g_return_if_fail(SIGE_N(x) == 1 && x->layout == SIGE_LAYOUT_NCHW);
  if (SIGE_ON_DEVICE(x)) {
    sige_dev_channel_moments(ctx, x, sum, sumsq);
    return;
  }
  const int C = SIGE_C(x);
  const size_t plane = (size_t)SIGE_H(x) * SIGE_W(x);
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int c = 0; c < C; c++) {
    const float *p = x->data + (size_t)c * plane;
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < plane; i++) {
      s1 += p[i];
      s2 += (double)p[i] * p[i];
    }
    sum[c] = s1;
    sumsq[c] = s2;
  }
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
