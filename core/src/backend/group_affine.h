/* The last step of group normalisation, from a group's sums to the
 * per-channel scale and shift, shared by the CPU backend (cpu/norm.c) and the
 * device (device/dev_norm.c) so that both round the same way. */
#pragma once
#include <math.h>
#include <stddef.h>

/* s and ss: the sum of (x - pivot) and of its square over the group's cnt
 * values.  Writes channels [c0, c1) of scale/shift (gamma/beta may be NULL =
 * 1 / 0), folding the affine into one multiply-add per element. */
static inline void sige_group_affine(double pivot, double s, double ss, double cnt, float eps,
                                     const float *gamma, const float *beta, int c0, int c1,
                                     float *scale, float *shift) {
  const double dmean = cnt > 0 ? s / cnt : 0.0;
  double var = cnt > 0 ? ss / cnt - dmean * dmean : 0.0;
  if (var < 0.0) var = 0.0;
  const double mean = pivot + dmean;
  const double rstd = 1.0 / sqrt(var + (double)eps);
  for (int c = c0; c < c1; c++) {
    const double gm = gamma ? gamma[c] : 1.0;
    const double bt = beta ? beta[c] : 0.0;
    scale[c] = (float)(gm * rstd);
    shift[c] = (float)(bt - mean * gm * rstd);
  }
}
