/* The Progressive-Distillation sampler of the published SIGE code
 * (diffusion/samplers/pd_sampler.py): a cosine log-SNR schedule and the
 * update from the PD UNet's x and eps predictions.  sampler.c calls these for
 * SIGE_SAMPLER_PD; see sige/sampler.h for the conventions. */
#include <math.h>

#include "sige/sampler.h"

double sige_pd_logsnr(int t, int total_steps, double logsnr_min, double logsnr_max) {
  /* logsnr(u) = -2 log tan(a u + b), u = (t + 1) / total_steps, with
   * b = atan(exp(-logsnr_max / 2)) and a = atan(exp(-logsnr_min / 2)) - b.
   * The published code evaluates it on float32 tensors (a and b Python
   * doubles, rounded to float32 when they meet the tensor): the same here. */
  const double b = atan(exp(-0.5 * logsnr_max));
  const double a = atan(exp(-0.5 * logsnr_min)) - b;
  const float u = (float)(t + 1) / (float)total_steps;
  const float v = (float)a * u + (float)b;
  return (double)(-2.0f * logf(tanf(v)));
}

/* sigmoid in double, stable for either sign */
static double sigmoid(double v) {
  return v >= 0 ? 1.0 / (1.0 + exp(-v)) : exp(v) / (1.0 + exp(v));
}

void sige_pd_update(float *x, const float *pred_x, const float *pred_eps, size_t n,
                    double logsnr_t, double logsnr_s, gboolean last) {
  /* x from eps: sqrt(1 + e^-l) (z - eps / sqrt(1 + e^l)); the two predictions
   * mixed with weight wx = sigmoid(-l) on the direct x; clipped to [-1, 1];
   * eps recomputed from the clipped x: sqrt(1 + e^l) (z - x / sqrt(1 + e^-l));
   * then DDIM to s: alpha_s x + sigma_s eps (the last step returns x). */
  const double cxe = sqrt(1.0 + exp(-logsnr_t)), ce = 1.0 / sqrt(1.0 + exp(logsnr_t));
  const double cex = sqrt(1.0 + exp(logsnr_t)), cx = 1.0 / cxe;
  const double wx = sigmoid(-logsnr_t);
  const double alpha_s = sqrt(sigmoid(logsnr_s)), sigma_s = sqrt(sigmoid(-logsnr_s));
  for (size_t k = 0; k < n; k++) {
    const double z = x[k];
    const double x_eps = cxe * (z - pred_eps[k] * ce);
    double mx = wx * pred_x[k] + (1.0 - wx) * x_eps;
    mx = mx < -1.0 ? -1.0 : (mx > 1.0 ? 1.0 : mx);
    if (last) {
      x[k] = (float)mx;
      continue;
    }
    const double me = cex * (z - mx * cx);
    x[k] = (float)(alpha_s * mx + sigma_s * me);
  }
}
