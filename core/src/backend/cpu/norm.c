/* Normalisation statistics on the CPU. */
#include <math.h>

#include "../group_affine.h"
#include "cpu_internal.h"

void sige_cpu_group_norm_affine(sige_ctx *ctx, const sige_tensor *x, int groups, float eps,
                                const sige_tensor *gamma, const sige_tensor *beta, float *scale,
                                float *shift) {
  const int n_img = SIGE_N(x), c_all = SIGE_C(x);
  const int cg = c_all / groups;
  const size_t hw = (size_t)SIGE_H(x) * (size_t)SIGE_W(x);
  const int jobs = n_img * groups;
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(dynamic, 1)
  for (int jb = 0; jb < jobs; jb++) {
    const int n = jb / groups, g = jb % groups;
    /* Accumulating x - pivot rather than x keeps the one-pass variance formula
     * free of cancellation when the mean is large relative to the spread. */
    const double pivot = hw ? sige_cpu_plane(x, n, g * cg)[0] : 0.0;
    double s = 0.0, ss = 0.0;
    for (int c = g * cg; c < (g + 1) * cg; c++) {
      const float *p = sige_cpu_plane(x, n, c);
#pragma omp simd reduction(+ : s, ss)
      for (size_t i = 0; i < hw; i++) {
        const double d = (double)p[i] - pivot;
        s += d;
        ss += d * d;
      }
    }
    const double cnt = (double)hw * cg;
    sige_group_affine(pivot, s, ss, cnt, eps, gamma ? gamma->data : NULL, beta ? beta->data : NULL,
                      g * cg, (g + 1) * cg, scale + (size_t)n * c_all, shift + (size_t)n * c_all);
  }
}


void sige_cpu_channel_moments(sige_ctx *ctx, const sige_tensor *x, double *sum, double *sumsq) {
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

