/* Normalisation statistics on a device: per-plane sums there, combined per
 * group on the host in double (the per-channel scale / shift the models
 * keep are host arrays, and a full pass records them).  This is the one
 * place a dense pass waits for the device, once per norm. */
#include <math.h>
#include <string.h>

#include "../group_affine.h"
#include "device_impl.h"

/* Pivot, sum(x - pivot), sum((x - pivot)^2) of every plane of x, on the
 * host; NULL after a latched failure. */
static double *plane_sums(sige_dev_backend *be, const sige_tensor *x) {
  const size_t planes = (size_t)SIGE_N(x) * SIGE_C(x), bytes = 3 * planes * sizeof(double);
  double *dev = sige_dev_scratch(be, 3, bytes);
  if (!dev || !be->prims->plane_sums(be, x->data, sige_dev_planes(x), dev)) return NULL;
  double *host = g_new(double, 3 * planes);
  if (!be->prims->download(be, host, dev, bytes)) g_clear_pointer(&host, g_free);
  return host;
}

/* A parameter vector's values on the host (it may live on the device). */
static float *host_vector(sige_dev_backend *be, const sige_tensor *t) {
  if (!t) return NULL;
  if (!t->backend) return g_memdup2(t->data, t->numel * sizeof(float));
  float *v = g_new(float, t->numel);
  be->prims->download(be, v, t->data, t->numel * sizeof(float));
  return v;
}

void sige_dev_group_norm_affine(sige_ctx *ctx, const sige_tensor *x, int groups, float eps,
                                const sige_tensor *gamma, const sige_tensor *beta, float *scale,
                                float *shift) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(x);
  const int n_img = SIGE_N(x), c_all = SIGE_C(x), cg = c_all / groups;
  const double hw = (double)SIGE_H(x) * SIGE_W(x);
  for (int i = 0; i < n_img * c_all; i++) { /* what a failed device leaves */
    scale[i] = 1.0f;
    shift[i] = 0.0f;
  }
  g_autofree double *s = plane_sums(be, x);
  g_autofree float *gm_v = host_vector(be, gamma), *bt_v = host_vector(be, beta);
  if (!s) return;
  for (int n = 0; n < n_img; n++)
    for (int g = 0; g < groups; g++) {
      /* each plane's sums are around its own first element; move them to
       * the group's first plane's, as the CPU accumulates */
      const double *first = s + 3 * ((size_t)n * c_all + (size_t)g * cg);
      const double pivot = first[0];
      double s1 = 0.0, s2 = 0.0;
      for (int c = g * cg; c < (g + 1) * cg; c++) {
        const double *p = s + 3 * ((size_t)n * c_all + c);
        const double d = p[0] - pivot;
        s1 += p[1] + hw * d;
        s2 += p[2] + 2.0 * d * p[1] + hw * d * d;
      }
      const double cnt = hw * cg;
      sige_group_affine(pivot, s1, s2, cnt, eps, gm_v, bt_v, g * cg, (g + 1) * cg,
                        scale + (size_t)n * c_all, shift + (size_t)n * c_all);
    }
}

void sige_dev_channel_moments(sige_ctx *ctx, const sige_tensor *x, double *sum, double *sumsq) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(x);
  const int c_all = SIGE_C(x);
  const double hw = (double)SIGE_H(x) * SIGE_W(x);
  memset(sum, 0, sizeof(double) * c_all);
  memset(sumsq, 0, sizeof(double) * c_all);
  g_autofree double *s = plane_sums(be, x);
  if (!s) return;
  for (int c = 0; c < c_all; c++) {
    const double p = s[3 * c], s1 = s[3 * c + 1], s2 = s[3 * c + 2];
    sum[c] = s1 + hw * p;
    sumsq[c] = s2 + 2.0 * p * s1 + hw * p * p;
  }
}
