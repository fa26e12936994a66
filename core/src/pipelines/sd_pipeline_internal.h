/* The SD pipeline's state, shared by its setup (sd_pipeline.c) and its
 * runs (sd_run.c). */
#pragma once
#include "sige/sd_pipeline.h"
#include "../engine/pass.h"

struct sige_sd_pipeline {
  sige_sd_models m;
  sige_sd_params prm;
  sige_ctx *ctx;
  sige_sampler *sampler;
  int n_steps;
  int64_t latent_shape[4];
  sige_tensor *cond, *uncond;
  sige_tensor *enc_noise, *noise;
  sige_tensor **q_noise; /* n_steps, inpainting */
  sige_sd_step_fn observer;
  void *observer_data;
  /* the snapshot: caches of the encoder, the UNet per step and guidance
   * branch (2 * n_steps: [2 i] uncond, [2 i + 1] cond), the decoder */
  gboolean has_snapshot;
  sige_cache enc_cache, dec_cache;
  sige_cache *unet_caches;
  sige_tensor *current;     /* img2img: the picture the caches hold */
  sige_tensor *init_latent; /* inpainting: the snapshot's latent */
  sige_tensor *output;    /* the current decoded result */
};

/* One run's passes: mode, masks, progress and cancel. */
typedef struct {
  sige_sd_pipeline *p;
  gboolean record;        /* full passes that record into the caches */
  const sige_mask_pyramid *enc_pyr, *unet_pyr, *dec_pyr; /* sparse passes (NULL: not sparse) */
  sige_undo_log *undo;
  sige_cache *enc_cache, *dec_cache, *unet_caches; /* NULL: dense */
  sige_progress_fn progress;
  void *user_data;
  const gint *cancel;
  int done, total;        /* model passes */
  sige_tensor *init_latent; /* out: a recording inpainting run's latent (owned) */
} sd_run;

/* The task on run r (sd_run.c): dense and recording runs start from
 * `image`; a sparse inpainting run from the snapshot's init latent with the
 * blend mask of inpaint_pyr at the latent's size (dense inpainting: the
 * same).  *latent and *out (optional) receive the final latent and picture. */
gboolean sd_run_task(sd_run *r, const sige_tensor *image, const sige_mask_pyramid *inpaint_pyr,
                     sige_tensor **latent, sige_tensor **out, GError **error);
/* Model passes one run makes (for progress). */
int sd_run_pass_count(const sige_sd_pipeline *p);
