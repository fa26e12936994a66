/* DDIM (eta 0) and multistep DPM-Solver++ for SDEdit; see sige/sampler.h for
 * the conventions, which follow the published PyTorch samplers so that the
 * reference trajectories are reproduced. */
#include "sige/sampler.h"

#include <math.h>
#include <string.h>

#include "sige/error.h"
#include "sige/rng.h"

#define SIGE_SAMPLER_MAX_ORDER 3
/* The published schedule drops the tail whose half log-SNR is below this. */
#define SIGE_DPM_CLIPPED_LAMBDA (-5.1)

struct sige_sampler {
  sige_sampler_config cfg;
  int steps;
  int n_seq;      /* len(seq) of the published runner */
  int *timesteps; /* steps + 1 entries, descending */
  double *alphas_cumprod; /* a[t] for t = 0 .. total_steps-1 */
  /* DPM-Solver++: the discrete VP schedule in continuous time */
  double *log_alpha; /* 0.5 log a[k], k < schedule_n */
  int schedule_n;
  /* per step i in 0..steps: the solver's log alpha, sigma and half log-SNR */
  double *solver_log_alpha, *solver_sigma, *solver_lambda;
  /* data predictions of the last `order` steps, newest last */
  sige_tensor *history[SIGE_SAMPLER_MAX_ORDER];
  int n_history;
  int next_step; /* the step the history is ready for */
  int start_timestep; /* the SDEdit start's noise level */
  double *pd_logsnr; /* PD: log-SNR of each step's timestep, steps + 1 */
};

void sige_sampler_config_init(sige_sampler_config *c, sige_sampler_kind kind) {
  memset(c, 0, sizeof *c);
  c->kind = kind;
  c->total_steps = 1000;
  c->beta_start = 1e-4;
  c->beta_end = 0.02;
  c->noise_level = 750;
  c->sample_steps = 10;
  c->order = 2;
  c->lower_order_final = TRUE;
  if (kind == SIGE_SAMPLER_PD) {
    c->total_steps = 8;
    c->noise_level = 5;
    c->sample_steps = 5;
    c->logsnr_min = -20.0;
    c->logsnr_max = 20.0;
  }
}

static gboolean validate(const sige_sampler_config *c, GError **error) {
  const char *why = NULL;
  if (c->kind != SIGE_SAMPLER_DDIM && c->kind != SIGE_SAMPLER_DPM_SOLVER_PP &&
      c->kind != SIGE_SAMPLER_PD)
    why = "kind is not DDIM, DPM-Solver++ or PD";
  else if (c->kind == SIGE_SAMPLER_PD && !(c->logsnr_min < c->logsnr_max))
    why = "PD needs logsnr_min < logsnr_max";
  else if (c->total_steps < 1)
    why = "total_steps must be >= 1";
  else if (!(c->beta_start > 0.0) || !(c->beta_end < 1.0) || !(c->beta_start <= c->beta_end))
    why = "betas must satisfy 0 < beta_start <= beta_end < 1";
  else if (c->sample_steps < 1)
    why = "sample_steps must be >= 1";
  else if (c->noise_level < c->sample_steps)
    why = "noise_level must be >= sample_steps (the timestep stride would be 0)";
  else if (c->noise_level > c->total_steps)
    why = "noise_level must be <= total_steps";
  else if (c->kind == SIGE_SAMPLER_DPM_SOLVER_PP && (c->order < 1 || c->order > SIGE_SAMPLER_MAX_ORDER))
    why = "DPM-Solver++ order must be 1, 2 or 3";
  else if (c->kind == SIGE_SAMPLER_DPM_SOLVER_PP && !c->dpm_ddim_grid && c->sample_steps < 2)
    why = "DPM-Solver++ needs sample_steps >= 2 (it updates between timesteps)";
  else if (c->dpm_ddim_grid && c->kind != SIGE_SAMPLER_DPM_SOLVER_PP)
    why = "dpm_ddim_grid is a DPM-Solver++ setting";
  else if (c->beta_schedule != SIGE_BETA_LINEAR && c->beta_schedule != SIGE_BETA_SCALED_LINEAR)
    why = "beta_schedule is not linear or scaled_linear";
  else if ((c->timestep_offset != 0 || c->start_one_stride_early) && c->kind != SIGE_SAMPLER_DDIM &&
           !(c->kind == SIGE_SAMPLER_DPM_SOLVER_PP && c->dpm_ddim_grid))
    why = "timestep_offset and start_one_stride_early are settings of DDIM and of DPM-Solver++ on "
          "DDIM's grid (Stable Diffusion's)";
  else if (c->timestep_offset < 0 || c->timestep_offset > 1)
    why = "timestep_offset must be 0 or 1";
  if (why) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "sampler config: %s (total_steps %d, betas %g..%g, noise_level %d, sample_steps %d, order %d)",
                why, c->total_steps, c->beta_start, c->beta_end, c->noise_level, c->sample_steps,
                c->order);
    return FALSE;
  }
  return TRUE;
}

/* log alpha at continuous time tc: piecewise-linear through (k/N, log_alpha[k-1]),
 * k = 1..N, extended linearly beyond the ends as the published interpolation is. */
static double interp_log_alpha(const sige_sampler *s, double tc) {
  const int n = s->schedule_n;
  if (n == 1)
    return s->log_alpha[0];
  double u = tc * n - 1.0; /* fractional index into log_alpha */
  int j = (int)floor(u);
  if (j < 0)
    j = 0;
  if (j > n - 2)
    j = n - 2;
  return s->log_alpha[j] + (u - j) * (s->log_alpha[j + 1] - s->log_alpha[j]);
}

static void build_dpm_schedule(sige_sampler *s) {
  const int total = s->cfg.total_steps;
  s->log_alpha = g_new(double, total);
  int n = total;
  for (int k = 0; k < total; k++) {
    s->log_alpha[k] = 0.5 * log(s->alphas_cumprod[k]);
    double lambda = s->log_alpha[k] - 0.5 * log1p(-s->alphas_cumprod[k]);
    if (lambda < SIGE_DPM_CLIPPED_LAMBDA && n == total)
      n = k; /* lambda decreases, so everything from here on is clipped */
  }
  s->schedule_n = n > 0 ? n : 1;

  s->solver_log_alpha = g_new(double, s->steps + 1);
  s->solver_sigma = g_new(double, s->steps + 1);
  s->solver_lambda = g_new(double, s->steps + 1);
  for (int i = 0; i <= s->steps; i++) {
    double la;
    if (s->cfg.dpm_ddim_grid) {
      const int t = s->timesteps[i];
      la = t < 0 ? 0.0 : 0.5 * log(s->alphas_cumprod[t]);
    } else {
      /* the published conversion of an integer t */
      double tc = (double)(s->timesteps[i] + 1) / total + 1.0 / s->schedule_n;
      la = interp_log_alpha(s, tc);
    }
    /* a clean level (la = 0) gives sigma 0 and lambda +inf: see dpm_step_order */
    double log_sigma = 0.5 * log(-expm1(2.0 * la));
    s->solver_log_alpha[i] = la;
    s->solver_sigma[i] = exp(log_sigma);
    s->solver_lambda[i] = la - log_sigma;
  }
}

sige_sampler *sige_sampler_new(const sige_sampler_config *c, GError **error) {
  if (!validate(c, error))
    return NULL;
  sige_sampler *s = g_new0(sige_sampler, 1);
  s->cfg = *c;

  const int skip = c->noise_level / c->sample_steps;
  s->n_seq = (c->noise_level + skip - 1) / skip;
  /* DDIM updates out of every timestep, the last one to -1 (clean).  The
   * demo's DPM-Solver++ updates between consecutive timesteps only and stops
   * at the smallest: its model evaluation there is never used, so it is not
   * a step here. */
  s->steps = c->kind == SIGE_SAMPLER_DPM_SOLVER_PP && !c->dpm_ddim_grid ? s->n_seq - 1 : s->n_seq;
  s->timesteps = g_new(int, s->n_seq + 1);
  for (int i = 0; i < s->n_seq; i++)
    s->timesteps[i] = (s->n_seq - 1 - i) * skip + c->timestep_offset;
  s->timesteps[s->n_seq] = -1 + c->timestep_offset;
  s->start_timestep = c->start_one_stride_early ? MIN(s->timesteps[0] + skip, c->total_steps - 1)
                                                : s->timesteps[0];

  const int total = c->total_steps;
  s->alphas_cumprod = g_new(double, total);
  double a = 1.0;
  const gboolean scaled = c->beta_schedule == SIGE_BETA_SCALED_LINEAR;
  const double b0 = scaled ? sqrt(c->beta_start) : c->beta_start;
  const double b1 = scaled ? sqrt(c->beta_end) : c->beta_end;
  for (int k = 0; k < total; k++) {
    double beta = total > 1 ? b0 + (b1 - b0) * k / (total - 1) : b0;
    a *= 1.0 - (scaled ? beta * beta : (double)(float)beta);
    s->alphas_cumprod[k] = scaled ? (double)(float)a : a;
  }
  if (c->kind == SIGE_SAMPLER_DPM_SOLVER_PP)
    build_dpm_schedule(s);
  if (c->kind == SIGE_SAMPLER_PD) {
    s->pd_logsnr = g_new(double, s->steps + 1);
    for (int i = 0; i <= s->steps; i++)
      s->pd_logsnr[i] = sige_pd_logsnr(s->timesteps[i], total, c->logsnr_min, c->logsnr_max);
  }
  return s;
}

void sige_sampler_reset(sige_sampler *s) {
  for (int k = 0; k < SIGE_SAMPLER_MAX_ORDER; k++) {
    sige_tensor_free(s->history[k]);
    s->history[k] = NULL;
  }
  s->n_history = 0;
  s->next_step = 0;
}

void sige_sampler_free(sige_sampler *s) {
  if (!s)
    return;
  sige_sampler_reset(s);
  g_free(s->timesteps);
  g_free(s->alphas_cumprod);
  g_free(s->log_alpha);
  g_free(s->solver_log_alpha);
  g_free(s->solver_sigma);
  g_free(s->solver_lambda);
  g_free(s->pd_logsnr);
  g_free(s);
}

sige_sampler_kind sige_sampler_get_kind(const sige_sampler *s) { return s->cfg.kind; }
int sige_sampler_steps(const sige_sampler *s) { return s->steps; }

int sige_sampler_timestep(const sige_sampler *s, int i) {
  g_return_val_if_fail(i >= 0 && i <= s->steps, -1);
  return s->timesteps[i];
}

float sige_sampler_model_t(const sige_sampler *s, int i) {
  if (s->cfg.kind == SIGE_SAMPLER_PD && i >= 0 && i <= s->steps)
    return (float)s->pd_logsnr[i];
  return (float)sige_sampler_timestep(s, i);
}

static double alpha_of(const sige_sampler *s, int t) {
  return t < 0 ? 1.0 : s->alphas_cumprod[t];
}

double sige_sampler_alpha_bar(const sige_sampler *s, int i) {
  g_return_val_if_fail(i >= 0 && i <= s->steps, 1.0);
  if (s->cfg.kind == SIGE_SAMPLER_PD)
    return 1.0 / (1.0 + exp(-s->pd_logsnr[i]));
  return alpha_of(s, s->timesteps[i]);
}

double sige_sampler_solver_alpha_bar(const sige_sampler *s, int i) {
  g_return_val_if_fail(i >= 0 && i <= s->steps, 1.0);
  if (s->cfg.kind != SIGE_SAMPLER_DPM_SOLVER_PP)
    return sige_sampler_alpha_bar(s, i);
  return exp(2.0 * s->solver_log_alpha[i]);
}

/* DDIM, eta 0: predict x0, then re-noise it to the next level with the same eps. */
static void ddim_update(const sige_sampler *s, int i, float *x, const float *eps, size_t n) {
  const double at = alpha_of(s, s->timesteps[i]);
  const double an = alpha_of(s, s->timesteps[i + 1]);
  const double inv_sqrt_at = 1.0 / sqrt(at), sqrt_1mat = sqrt(1.0 - at);
  const double sqrt_an = sqrt(an), sqrt_1man = sqrt(1.0 - an);
  for (size_t k = 0; k < n; k++) {
    double x0 = (x[k] - sqrt_1mat * eps[k]) * inv_sqrt_at;
    x[k] = (float)(sqrt_an * x0 + sqrt_1man * eps[k]);
  }
}

/* The order the published multistep loop uses for the update out of step i. */
static int dpm_step_order(const sige_sampler *s, int i) {
  const int order = s->cfg.order;
  /* into a clean level h is infinite and the higher-order corrections
   * (1 / r0 = h / h_0) are not defined; the first-order update is the data
   * prediction itself */
  if (s->solver_sigma[i + 1] == 0.0)
    return 1;
  if (i + 1 < order)
    return i + 1; /* not enough history yet */
  /* the published rule, counted in its timesteps (n_seq): the update into
   * its unused last evaluation would be the one lowered most, so for order 2
   * it never fires here; order 3 still drops to 2 at the last update */
  if (s->cfg.lower_order_final && s->n_seq < 10)
    return MIN(order, s->n_seq - i);
  return order;
}

/* Multistep DPM-Solver++ ("dpmsolver" form of the second-order correction)
 * from step i to i + 1, with the data predictions in s->history (newest
 * last, the one of step i included). */
static void dpm_update(const sige_sampler *s, int i, float *x, size_t n) {
  const int order = dpm_step_order(s, i);
  const double lambda_t = s->solver_lambda[i + 1], lambda_0 = s->solver_lambda[i];
  const double h = lambda_t - lambda_0;
  const double alpha_t = exp(s->solver_log_alpha[i + 1]);
  const double ratio = s->solver_sigma[i + 1] / s->solver_sigma[i];
  const double phi_1 = expm1(-h);
  const float *m0 = s->history[s->n_history - 1]->data;

  if (order == 1 && s->solver_sigma[i + 1] == 0.0) {
    for (size_t k = 0; k < n; k++)
      x[k] = (float)(alpha_t * m0[k]);
    return;
  }
  if (order == 1) {
    for (size_t k = 0; k < n; k++)
      x[k] = (float)(ratio * x[k] - alpha_t * phi_1 * m0[k]);
    return;
  }
  const float *m1 = s->history[s->n_history - 2]->data;
  const double h_0 = lambda_0 - s->solver_lambda[i - 1];
  const double r0 = h_0 / h;
  if (order == 2) {
    const double c_d1 = 0.5 * alpha_t * phi_1 / r0;
    for (size_t k = 0; k < n; k++) {
      double d1 = (double)m0[k] - m1[k];
      x[k] = (float)(ratio * x[k] - alpha_t * phi_1 * m0[k] - c_d1 * d1);
    }
    return;
  }
  const float *m2 = s->history[s->n_history - 3]->data;
  const double h_1 = s->solver_lambda[i - 1] - s->solver_lambda[i - 2];
  const double r1 = h_1 / h;
  const double phi_2 = phi_1 / h + 1.0;
  const double phi_3 = phi_2 / h - 0.5;
  for (size_t k = 0; k < n; k++) {
    double d1_0 = ((double)m0[k] - m1[k]) / r0;
    double d1_1 = ((double)m1[k] - m2[k]) / r1;
    double d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1);
    double d2 = (d1_0 - d1_1) / (r0 + r1);
    x[k] = (float)(ratio * x[k] - alpha_t * phi_1 * m0[k] + alpha_t * phi_2 * d1 -
                   alpha_t * phi_3 * d2);
  }
}

gboolean sige_sampler_step(sige_sampler *s, int i, sige_tensor *x, const sige_tensor *eps,
                           GError **error) {
  if (i < 0 || i >= s->steps) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "sampler step %d: out of range 0..%d", i,
                s->steps - 1);
    return FALSE;
  }
  const gboolean pd = s->cfg.kind == SIGE_SAMPLER_PD;
  if (pd ? !(x->ndim == 4 && eps->ndim == 4 && eps->shape[0] == x->shape[0] &&
             eps->shape[0] == 1 && eps->shape[1] == 2 * x->shape[1] &&
             eps->shape[2] == x->shape[2] && eps->shape[3] == x->shape[3])
         : !sige_tensor_same_shape(x, eps)) {
    char a[64], b[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                pd ? "sampler step %d: x %s and the PD model output %s ([1, 2 C, H, W]) do not match"
                   : "sampler step %d: x %s and eps %s must have one shape", i,
                sige_tensor_shape_str(x, a, sizeof a), sige_tensor_shape_str(eps, b, sizeof b));
    return FALSE;
  }
  if (i == 0)
    sige_sampler_reset(s);
  if (i != s->next_step) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "sampler step %d out of order: the trajectory is at step %d (steps run 0, 1, ...; "
                "sige_sampler_reset or step 0 starts a new one)",
                i, s->next_step);
    return FALSE;
  }
  const size_t n = x->numel;
  if (pd) {
    sige_pd_update(x->data, eps->data, eps->data + n, n, s->pd_logsnr[i], s->pd_logsnr[i + 1],
                   s->timesteps[i] == 0);
  } else if (s->cfg.kind == SIGE_SAMPLER_DDIM) {
    ddim_update(s, i, x->data, eps->data, n);
  } else {
    /* keep the data prediction at step i; the oldest one drops out once the
     * order's worth is held */
    sige_tensor *m = NULL;
    if (s->n_history == s->cfg.order) {
      m = s->history[0];
      memmove(s->history, s->history + 1, (size_t)(s->n_history - 1) * sizeof *s->history);
      s->n_history--;
      if (!sige_tensor_same_shape(m, x)) {
        sige_tensor_free(m);
        m = NULL;
      }
    }
    if (!m) {
      m = sige_tensor_new(x->ndim, x->shape, error);
      if (!m)
        return FALSE;
    }
    const double at = alpha_of(s, s->timesteps[i]);
    const double inv_sqrt_at = 1.0 / sqrt(at), sqrt_1mat = sqrt(1.0 - at);
    for (size_t k = 0; k < n; k++)
      m->data[k] = (float)((x->data[k] - sqrt_1mat * eps->data[k]) * inv_sqrt_at);
    s->history[s->n_history++] = m;
    dpm_update(s, i, x->data, n);
  }
  s->next_step = i + 1;
  return TRUE;
}

void sige_sampler_noisy(const sige_sampler *s, int i, const sige_tensor *x0,
                        const sige_tensor *noise, sige_tensor *out) {
  g_return_if_fail(x0->numel == noise->numel && x0->numel == out->numel);
  const double a = sige_sampler_alpha_bar(s, i);
  const double ca = sqrt(a), cn = sqrt(1.0 - a);
  for (size_t k = 0; k < out->numel; k++)
    out->data[k] = (float)(ca * x0->data[k] + cn * noise->data[k]);
}

double sige_sampler_start_alpha_bar(const sige_sampler *s) {
  if (s->cfg.kind == SIGE_SAMPLER_PD || s->start_timestep == s->timesteps[0])
    return sige_sampler_alpha_bar(s, 0);
  return alpha_of(s, s->start_timestep);
}

void sige_sampler_noisy_start(const sige_sampler *s, const sige_tensor *x0,
                              const sige_tensor *noise, sige_tensor *out) {
  g_return_if_fail(x0->numel == noise->numel && x0->numel == out->numel);
  const double a = sige_sampler_start_alpha_bar(s);
  const double ca = sqrt(a), cn = sqrt(1.0 - a);
  for (size_t k = 0; k < out->numel; k++)
    out->data[k] = (float)(ca * x0->data[k] + cn * noise->data[k]);
}

void sige_sdedit_reset(sige_tensor *x, const sige_tensor *x_orig_next, const guint8 *mask) {
  g_return_if_fail(x->numel == x_orig_next->numel && x->ndim >= 2);
  const size_t hw = (size_t)x->shape[x->ndim - 2] * (size_t)x->shape[x->ndim - 1];
  const size_t planes = x->numel / hw;
  for (size_t p = 0; p < planes; p++) {
    float *xp = x->data + p * hw;
    const float *op = x_orig_next->data + p * hw;
    for (size_t k = 0; k < hw; k++)
      if (!mask[k])
        xp[k] = op[k];
  }
}

void sige_normal_noise(guint64 seed, sige_tensor *out) {
  sige_rng rng;
  sige_rng_init(&rng, seed);
  for (size_t k = 0; k < out->numel; k++) out->data[k] = (float)sige_rng_normal(&rng);
}
