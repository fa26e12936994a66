/* Stable Diffusion 1.x pipelines with the published SIGE semantics
 * (stable-diffusion/runners/sdedit_runner.py and inpainting_runner.py of
 * lmxyy/sige, on the ldm DDIM sampler): img2img (SDEdit) and inpainting,
 * classifier-free guidance, strength, steps, seed.
 *
 *   p = sige_sd_pipeline_new(&models, &params, &error);
 *   sige_sd_pipeline_set_contexts(p, cond, uncond, &error);   the prompts' contexts
 *   dense:  sige_sd_pipeline_run_dense(p, image, mask, ..., &out, &error);
 *   sparse: sige_sd_pipeline_snapshot(p, original, ..., &error);
 *           sige_sd_pipeline_regenerate(p, edited | NULL, mask | NULL, ..., &out, &error);
 *
 * Numerics (scale_factor 0.18215, the ldm schedule: betas =
 * linspace(sqrt(0.00085), sqrt(0.012), 1000)^2, alphas_cumprod in float32;
 * DDIM eta 0 over range(0, 1000, 1000 / steps) + 1):
 *   encode(x)  = scale_factor (mean + exp(0.5 clamp(logvar, -30, 20)) enc_noise)
 *   decode(z)  = decoder(post_quant_conv(z / scale_factor))
 *   eps(x, t)  = e_u + guidance (e_c - e_u), e_u / e_c the UNet with the
 *                negative-prompt / prompt context
 *   img2img:   t_enc = int(strength * steps) DDIM steps from
 *              x = sqrt(a) encode(image) + sqrt(1 - a) noise, a the level one
 *              DDIM stride above the first step (the published off-by-one);
 *   DPM-Solver++ (sampler SIGE_SAMPLER_DPM_SOLVER_PP): the multistep
 *              DPM-Solver++(2M) (data prediction, the "dpmsolver" second-
 *              order form, first order for the first step and, under 10
 *              steps, the last) on the same timesteps, levels and start as
 *              DDIM (sige_sampler_config.dpm_ddim_grid): the same number of
 *              guided UNet evaluations, the last update to a[0] as DDIM's.
 *              It is fed the guided eps.  Its history (the previous step's
 *              data prediction) is rebuilt by every run, which starts at
 *              step 0, from that run's own eps: a snapshot records the
 *              original's trajectory, a sparse run's history follows its
 *              own (equal to the snapshot's outside the edit's reach, the
 *              update being elementwise), and a failed or cancelled run
 *              leaves nothing behind that the next one reads.
 *   inpaint:   every DDIM step from x = noise (x_T); before each step
 *              x = q_sample(encode(image), t, q_noise_k) (1 - m) + x m with
 *              m the mask at the latent's size (1 = regenerate); no blend
 *              after the last step.
 * Sparse (SIGE): snapshot runs full passes that record caches (the encoder
 * on the original; img2img: the UNet on the original's own DDIM trajectory,
 * both guidance branches, one cache set per step and branch; inpainting:
 * the UNet on q_sample(init latent, t) per step; the decoder on the
 * original's final latent, or the init latent for inpainting).
 * regenerate runs the sparse passes against them: img2img with the image
 * difference mask (eps diff_eps, dilated by the UNet's mask_dilate_radius,
 * the decoder's again by its decoder_extra_dilate), inpainting with the
 * mask given (no dilation).  The SD UNet must support recording and sparse
 * passes for this; while it does not, snapshot fails with
 * SIGE_ERROR_UNSUPPORTED naming it. */
#pragma once
#include <glib.h>
#include "sige/device.h"
#include "sige/model.h"
#include "sige/sampler.h"
#include "sige/session.h"
#include "sige/sparse.h"
#include "sige/tensor.h"

G_BEGIN_DECLS

typedef enum { SIGE_SD_IMG2IMG, SIGE_SD_INPAINT } sige_sd_task;

typedef struct {
  sige_sd_task task;
  double guidance;       /* classifier-free guidance scale (7.5); 1: the prompt branch only */
  int steps;             /* steps of the whole schedule (50) */
  double strength;       /* img2img: the fraction of steps run, (0, 1] (0.75) */
  /* SIGE_SAMPLER_DDIM or SIGE_SAMPLER_DPM_SOLVER_PP (names and parsing:
   * sige_sampler_kind_name / _parse of sige-app/names.h) */
  sige_sampler_kind sampler;
  guint64 seed;          /* of the encoder, start and q_sample noises */
  double scale_factor;   /* 0.18215 */
  int n_threads;         /* <= 0: SIGE_NUM_THREADS or all cores */
  sige_device device;
  gboolean fp16_caches;  /* as sige_session_options.fp16_caches */
  size_t memory_budget;  /* bytes of caches a snapshot may hold; 0: no limit */
  /* inpainting: the mask pyramid's stop size (8, as the published runner);
   * img2img uses the models' sparse settings */
  int inpaint_min_res;
} sige_sd_params;
void sige_sd_params_init(sige_sd_params *p);
/* The sampler configuration the pipeline runs for p (its schedule, grid
 * and start level; not validated: sige_sampler_new does that). */
void sige_sd_sampler_config(const sige_sd_params *p, sige_sampler_config *c);

/* The models (borrowed: they must outlive the pipeline). */
typedef struct {
  const sige_model *unet, *encoder, *decoder;
} sige_sd_models;

/* What a run produced, for callers that watch (previews, the reference
 * checks); valid during the call only.  `sparse` is FALSE for dense runs
 * and for the snapshot's full passes. */
typedef enum {
  SIGE_SD_ENCODED, /* moments, latent (scaled posterior sample), x (the start) */
  SIGE_SD_STEP,    /* step, timestep, x_in, eps, x (after the update) */
} sige_sd_event;
typedef struct {
  sige_sd_event event;
  gboolean sparse;
  const sige_tensor *moments, *latent;
  int step, n_steps, timestep;
  const sige_tensor *x_in;   /* the UNet input (inpainting: after the blend) */
  const sige_tensor *eps[2]; /* UNet outputs: [0] uncond (NULL at guidance 1), [1] cond */
  const sige_tensor *x;
} sige_sd_step_info;
typedef void (*sige_sd_step_fn)(const sige_sd_step_info *info, void *user_data);

typedef struct sige_sd_pipeline sige_sd_pipeline;

/* Checks the models (kinds, matching latent channels) and params. */
sige_sd_pipeline *sige_sd_pipeline_new(const sige_sd_models *models, const sige_sd_params *params,
                                       GError **error);
void sige_sd_pipeline_free(sige_sd_pipeline *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_sd_pipeline, sige_sd_pipeline_free)

/* The contexts of the prompt and the negative prompt ([tokens, context_dim]
 * or [1, tokens, context_dim]; copied). */
gboolean sige_sd_pipeline_set_contexts(sige_sd_pipeline *p, const sige_tensor *cond,
                                       const sige_tensor *uncond, GError **error);
/* Fixed noises instead of the seeded ones (each NULL: keep the seed's):
 * enc_noise (the posterior sample's, latent shape), noise (img2img: the
 * stochastic-encode noise; inpainting: x_T), q_noise (inpainting: one per
 * step, in step order).  Call before a run. */
gboolean sige_sd_pipeline_set_noise(sige_sd_pipeline *p, const sige_tensor *enc_noise,
                                    const sige_tensor *noise, const sige_tensor *const *q_noise,
                                    int n_q_noise, GError **error);
void sige_sd_pipeline_set_step_observer(sige_sd_pipeline *p, sige_sd_step_fn fn, void *user_data);
/* Denoising steps a run makes (img2img: t_enc; inpainting: all). */
int sige_sd_pipeline_steps(const sige_sd_pipeline *p);
/* The sampler (schedule, timesteps), owned by the pipeline. */
const sige_sampler *sige_sd_pipeline_sampler(const sige_sd_pipeline *p);
/* Multiply-accumulates the pipeline's passes executed so far (a running
 * total: callers take differences around a run). */
guint64 sige_sd_pipeline_macs(const sige_sd_pipeline *p);
/* Bytes the snapshot's caches hold (0 before a snapshot): what a front-end
 * counts against its memory budget. */
size_t sige_sd_pipeline_cache_bytes(const sige_sd_pipeline *p);

/* The whole task with dense passes (img2img: image edited from; inpainting:
 * image and the image-size mask, 1 = regenerate).  *latent (optional)
 * receives the final latent, *out the decoded picture [1, 3, H, W]. */
gboolean sige_sd_pipeline_run_dense(sige_sd_pipeline *p, const sige_tensor *image,
                                    const sige_mask *inpaint_mask, sige_progress_fn progress,
                                    void *user_data, const gint *cancel, sige_tensor **latent,
                                    sige_tensor **out, GError **error);

/* Full passes on the original (see the top); a failed or cancelled call
 * keeps the previous snapshot.  *out (optional): img2img: the original's
 * own decoded result; inpainting: the decoded init latent. */
gboolean sige_sd_pipeline_snapshot(sige_sd_pipeline *p, const sige_tensor *original,
                                   sige_progress_fn progress, void *user_data, const gint *cancel,
                                   sige_tensor **out, GError **error);
/* Sparse passes: img2img with `edited` (mask NULL: the difference against
 * the snapshot); inpainting with `inpaint_mask` (edited NULL).  A failed or
 * cancelled call leaves every cache as it was. */
gboolean sige_sd_pipeline_regenerate(sige_sd_pipeline *p, const sige_tensor *edited,
                                     const sige_mask *inpaint_mask, sige_progress_fn progress,
                                     void *user_data, const gint *cancel, sige_tensor **latent,
                                     sige_tensor **out, GError **error);

/* The latent of an image: scale_factor * posterior sample with enc_noise
 * (from moments = the encoder's output), written into z [1, C, h, w]. */
void sige_sd_latent_from_moments(const sige_tensor *moments, const sige_tensor *enc_noise,
                                 double scale_factor, sige_tensor *z);

G_END_DECLS
