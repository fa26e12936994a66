/* Diffusion samplers for SDEdit-style editing: DDIM (eta 0), the multistep
 * DPM-Solver++ of the published interactive demo, and the Progressive-
 * Distillation sampler of the published PD models (SIGE_SAMPLER_PD, below).  Pure numerics: the caller
 * runs the model, the sampler turns its noise prediction into the next x.
 *
 * Timesteps.  As in the published runner, the integer timesteps are
 *   seq = range(0, noise_level, noise_level / sample_steps)   (integer division)
 * walked from the largest down: (200, 4) gives 150, 100, 50, 0 and (300, 5)
 * gives 240, 180, 120, 60, 0.  When noise_level is not a multiple of
 * sample_steps seq is longer than sample_steps ((1000, 3) gives 999, 666,
 * 333, 0).  Step i (0-based, in running order) feeds the UNet
 * t_i = sige_sampler_timestep(i) and moves x from t_i to t_{i+1}:
 *   DDIM: one step per timestep, steps = len(seq), t_steps = -1 (clean);
 *   DPM-Solver++: steps = len(seq) - 1 and t_steps = 0.  The demo's solver
 *     updates between consecutive timesteps and returns the x at the smallest
 *     one; it evaluates the model there too but never uses the result, so
 *     that evaluation is not a step here.  (300 in 5: four model
 *     evaluations, at 240, 180, 120, 60; the result is the x at timestep 0.)
 *
 * Schedule.  betas = linspace(beta_start, beta_end, total_steps) rounded to
 * float32 (the published code stores them so), a[t] = prod_{s<=t} (1 -
 * betas[s]) accumulated in double, and a[-1] = 1.
 *
 * alpha_bar(i) = a[t_i] for both samplers, i in 0..steps: the level the
 * published code noises the clean images at (the SDEdit start and the
 * original trajectory used by the reset), and the one it divides by to turn
 * the model's noise into a data prediction.  So alpha_bar(steps) is 1 for
 * DDIM (the last reset pastes x0_orig itself) and a[0] = 1 - beta_start for
 * DPM-Solver++ (its result keeps a 1e-2 trace of the noise, as the demo's).
 *
 * DPM-Solver++ internally places the x of step i at the continuous time
 * tc_i = (t_i + 1) / total_steps + 1 / N on the discrete VP schedule (N the
 * schedule length after the published log-SNR clip at -5.1; N = total_steps
 * for the linear schedule), log alpha interpolated piecewise-linearly between
 * the points (k / N, 0.5 log a[k-1]).  With N = total_steps that is a[t_i + 1],
 * one discrete step later than alpha_bar(i): the published sampler does
 * exactly this and the reference vectors carry it, so it is kept.
 * sige_sampler_solver_alpha_bar() returns that internal level.
 *
 * The loop (SDEdit with the mask reset) is
 *   x = noisy(0, x0_edit, noise)
 *   for i in 0 .. steps-1:
 *     eps = model(x, model_t(i)); step(i, x, eps)
 *     noisy(i + 1, x0_orig, noise) -> x_orig_next; sige_sdedit_reset(x, x_orig_next, mask)
 * and leaves the edited image in x.  Without the reset it reproduces the
 * reference `sdedit_dense` of both reference cases. */
/* PD (diffusion/samplers/pd_sampler.py).  For the PD UNet, whose output has
 * twice the image's channels: an x prediction, then an eps prediction.
 * Timesteps as DDIM (seq = range(0, noise_level, skip), steps = len(seq),
 * t_steps = -1), over a schedule of total_steps (8 for the church model).
 * Timestep t sits at log-SNR
 *   l(t) = -2 log tan(a u + b),  u = (t + 1) / total_steps,
 *   b = atan(exp(-logsnr_max / 2)), a = atan(exp(-logsnr_min / 2)) - b,
 * so l(-1) = logsnr_max (the last reset pastes x0_orig with a trace of noise,
 * as the published code does).  alpha_bar(i) = sigmoid(l(t_i)), and the model
 * is given t = l(t_i) (sige_sampler_model_t).  An update mixes the model's two
 * predictions (sige_pd_update) and steps to l(t_{i+1}); out of timestep 0 it
 * returns the clipped x prediction itself. */
#pragma once
#include <glib.h>
#include "sige/tensor.h"

G_BEGIN_DECLS

typedef enum { SIGE_SAMPLER_DDIM, SIGE_SAMPLER_DPM_SOLVER_PP, SIGE_SAMPLER_PD } sige_sampler_kind;

/* LINEAR: betas = linspace(beta_start, beta_end) rounded to float32, a[t]
 * accumulated in double (the DDPM cases).  SCALED_LINEAR: Stable
 * Diffusion's betas = linspace(sqrt(beta_start), sqrt(beta_end))^2 and
 * a[t] accumulated in double, then a[t] rounded to float32 (the ldm code
 * keeps alphas_cumprod as a float32 buffer). */
typedef enum { SIGE_BETA_LINEAR, SIGE_BETA_SCALED_LINEAR } sige_beta_schedule;

typedef struct {
  sige_sampler_kind kind;
  int total_steps;             /* length of the training schedule (1000) */
  double beta_start, beta_end; /* linear betas (1e-4 .. 0.02) */
  int noise_level;             /* SDEdit start: seq = range(0, noise_level, skip) */
  int sample_steps;            /* requested steps; skip = noise_level / sample_steps */
  int order;                   /* DPM-Solver++ multistep order, 1..3 (2) */
  /* DPM-Solver++: lower the order of the last updates when seq is shorter
   * than 10 (the published rule: order min(order, len(seq) - i) at step i). */
  gboolean lower_order_final;
  double logsnr_min, logsnr_max; /* PD: the cosine log-SNR schedule's range (-20, 20) */
  sige_beta_schedule beta_schedule; /* LINEAR */
  /* Added to every timestep, the final one included (DDIM only).  The ldm
   * DDIM sampler of Stable Diffusion uses range(0, T, skip) + 1, so its
   * timesteps are 1, 1 + skip, ... and its last update goes to a[0] (its
   * alphas_prev[0] = alphas_cumprod[0]), not to a clean a = 1: offset 1
   * gives exactly that (timestep -1 + 1 = 0).  Default 0. */
  int timestep_offset;
  /* The ldm img2img off-by-one (DDIM only): stochastic_encode noises the
   * start latent at the timestep one stride above the first denoising step
   * (index t_enc of the DDIM arrays, whose step t_enc - 1 is the first one
   * decoded); sige_sampler_start_alpha_bar then returns a[t_0 + skip]
   * (clamped to the schedule's last timestep, where the published code
   * would index past its arrays at strength 1).  Default FALSE: the start
   * level is alpha_bar(0). */
  gboolean start_one_stride_early;
  /* DPM-Solver++ on DDIM's grid (Stable Diffusion): one update out of every
   * timestep as DDIM makes (steps = len(seq), the last one to timestep
   * -1 + timestep_offset), with x of step i at alpha_bar(i) = a[t_i]
   * itself, the level the model is told and the SDEdit start and the
   * inpainting blend are computed at; timestep_offset and
   * start_one_stride_early then apply as for DDIM, and sample_steps may be
   * 1 (a first-order step).  An update into a clean level (a = 1) is first
   * order: it returns the data prediction.  Default FALSE: the demo's
   * continuous-time placement above. */
  gboolean dpm_ddim_grid;
} sige_sampler_config;

/* The interactive demo's settings: linear 1e-4..0.02 over 1000, 10 steps
 * from noise level 750, order 2, lower_order_final on.  PD: the church-128
 * settings, 5 steps from noise level 5 of 8, log-SNR -20..20. */
void sige_sampler_config_init(sige_sampler_config *c, sige_sampler_kind kind);

typedef struct sige_sampler sige_sampler;

/* Validates c (SIGE_ERROR_INVALID naming the field): total_steps >= 1,
 * 0 < beta_start <= beta_end < 1, 1 <= sample_steps <= noise_level <=
 * total_steps; DPM-Solver++: order 1..3 and sample_steps >= 2 (1 on DDIM's grid). */
sige_sampler *sige_sampler_new(const sige_sampler_config *c, GError **error);
void sige_sampler_free(sige_sampler *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_sampler, sige_sampler_free)

sige_sampler_kind sige_sampler_get_kind(const sige_sampler *s);
/* Number of model evaluations = updates (see above: DDIM len(seq),
 * DPM-Solver++ len(seq) - 1, or len(seq) on DDIM's grid). */
int sige_sampler_steps(const sige_sampler *s);
/* Integer timestep of step i, i in 0..steps (at i = steps: -1 for DDIM,
 * 0 for DPM-Solver++). */
int sige_sampler_timestep(const sige_sampler *s, int i);
/* The t given to the UNet at step i (the integer timestep as a float). */
float sige_sampler_model_t(const sige_sampler *s, int i);
/* a[t_i] (see above), i in 0..steps; with a[-1] = 1. */
double sige_sampler_alpha_bar(const sige_sampler *s, int i);
/* The cumulative alpha the update rule assumes x at step i lives at: equal
 * to alpha_bar(i) for DDIM; DPM-Solver++'s continuous-time level (a[t_i + 1]
 * for the linear schedule). */
double sige_sampler_solver_alpha_bar(const sige_sampler *s, int i);

/* The level the SDEdit start x is noised at: alpha_bar(0), or one stride
 * earlier with start_one_stride_early (above). */
double sige_sampler_start_alpha_bar(const sige_sampler *s);
/* out = sqrt(start_alpha_bar) x0 + sqrt(1 - start_alpha_bar) noise. */
void sige_sampler_noisy_start(const sige_sampler *s, const sige_tensor *x0,
                              const sige_tensor *noise, sige_tensor *out);

/* Forgets the multistep history (a new trajectory).  step(0) does it too. */
void sige_sampler_reset(sige_sampler *s);
/* One update: x (in: at step i, out: at step i + 1) from the model's noise
 * prediction eps at step i (PD: the model's whole output, [x | eps], twice
 * x's channels).  Steps must run in order 0, 1, ..., steps-1
 * within a trajectory (DPM-Solver++ keeps the data predictions of earlier
 * steps); anything else, or eps/x of different shapes, is SIGE_ERROR_INVALID
 * / SIGE_ERROR_SHAPE and leaves x untouched. */
gboolean sige_sampler_step(sige_sampler *s, int i, sige_tensor *x, const sige_tensor *eps,
                           GError **error);

/* out = sqrt(alpha_bar(i)) x0 + sqrt(1 - alpha_bar(i)) noise, elementwise
 * (out may alias x0 or noise; all three have the same number of elements). */
void sige_sampler_noisy(const sige_sampler *s, int i, const sige_tensor *x0,
                        const sige_tensor *noise, sige_tensor *out);

/* x = x_orig_next where mask == 0, x kept where mask != 0.  mask is H x W
 * (x's last two dimensions), broadcast over batch and channels. */
void sige_sdedit_reset(sige_tensor *x, const sige_tensor *x_orig_next, const guint8 *mask);

/* The PD pieces (used by the PD kind; exposed for tests).  The log-SNR of
 * timestep t (-1 .. total_steps - 1), evaluated in float32 as the published
 * code does. */
double sige_pd_logsnr(int t, int total_steps, double logsnr_min, double logsnr_max);
/* x (z at log-SNR logsnr_t, n values) -> z at logsnr_s, or, when last, the
 * clipped x prediction; pred_x and pred_eps are the model's two outputs. */
void sige_pd_update(float *x, const float *pred_x, const float *pred_eps, size_t n,
                    double logsnr_t, double logsnr_s, gboolean last);

/* Standard-normal noise from a seed, the same on every machine: sige_rng
 * normals (sige/rng.h) filled in storage order. */
void sige_normal_noise(guint64 seed, sige_tensor *out);

G_END_DECLS
