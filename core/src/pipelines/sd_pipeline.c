/* The SD pipeline's setup and its three calls (dense run, snapshot,
 * regenerate); the loops are in sd_run.c. */
#include <string.h>

#include "sd_pipeline_internal.h"
#include "../models/model_internal.h"
#include "sige/error.h"

void sige_sd_params_init(sige_sd_params *p) {
  memset(p, 0, sizeof *p);
  p->task = SIGE_SD_IMG2IMG;
  p->guidance = 7.5;
  p->steps = 50;
  p->strength = 0.75;
  p->sampler = SIGE_SAMPLER_DDIM;
  p->scale_factor = 0.18215;
  p->inpaint_min_res = 8;
}

static gboolean invalid(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static gboolean invalid(GError **error, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "SD pipeline: %s", msg);
  return FALSE;
}

static gboolean check_params(const sige_sd_params *p, GError **error) {
  if (p->task != SIGE_SD_IMG2IMG && p->task != SIGE_SD_INPAINT)
    return invalid(error, "task %d is not img2img or inpainting", (int)p->task);
  if (p->sampler != SIGE_SAMPLER_DDIM && p->sampler != SIGE_SAMPLER_DPM_SOLVER_PP)
    return invalid(error, "sampler %d is not DDIM or DPM-Solver++ (the PD sampler is for PD "
                   "UNets)", (int)p->sampler);
  if (!(p->guidance >= 0.0 && p->guidance <= 100.0))
    return invalid(error, "guidance %g is outside 0..100", p->guidance);
  if (p->steps < 1 || p->steps > 1000)
    return invalid(error, "steps %d is outside 1..1000", p->steps);
  if (p->task == SIGE_SD_IMG2IMG && !(p->strength > 0.0 && p->strength <= 1.0))
    return invalid(error, "strength %g is outside (0, 1]", p->strength);
  if (p->task == SIGE_SD_IMG2IMG && (int)(p->strength * p->steps) < 1)
    return invalid(error, "strength %g of %d steps runs no step (int(strength * steps) = 0)",
                   p->strength, p->steps);
  if (!(p->scale_factor > 0.0)) return invalid(error, "scale_factor must be positive");
  if (p->inpaint_min_res < 1) return invalid(error, "inpaint_min_res must be >= 1");
  return TRUE;
}

void sige_sd_sampler_config(const sige_sd_params *p, sige_sampler_config *c_out) {
  const gboolean dpm = p->sampler == SIGE_SAMPLER_DPM_SOLVER_PP;
  sige_sampler_config c;
  sige_sampler_config_init(&c, dpm ? SIGE_SAMPLER_DPM_SOLVER_PP : SIGE_SAMPLER_DDIM);
  /* DPM-Solver++ (2M, the lower-order final step of the published solver)
   * on DDIM's timesteps: the same model evaluations, caches and strength */
  c.dpm_ddim_grid = dpm;
  c.order = 2;
  c.lower_order_final = TRUE;
  c.total_steps = 1000;
  c.beta_start = 0.00085;
  c.beta_end = 0.012;
  c.beta_schedule = SIGE_BETA_SCALED_LINEAR;
  c.timestep_offset = 1;
  const int skip = c.total_steps / p->steps;
  if (p->task == SIGE_SD_IMG2IMG) {
    /* the first t_enc timesteps of range(0, 1000, skip) + 1 */
    const int t_enc = (int)(p->strength * p->steps);
    c.noise_level = t_enc * skip;
    c.sample_steps = t_enc;
    c.start_one_stride_early = TRUE;
  } else {
    c.noise_level = c.total_steps;
    c.sample_steps = p->steps;
  }
  *c_out = c;
}

static sige_sampler *make_sampler(const sige_sd_params *p, GError **error) {
  sige_sampler_config c;
  sige_sd_sampler_config(p, &c);
  return sige_sampler_new(&c, error);
}

sige_sd_pipeline *sige_sd_pipeline_new(const sige_sd_models *models, const sige_sd_params *params,
                                       GError **error) {
  if (!models || !models->unet || !models->encoder || !models->decoder) {
    invalid(error, "it needs the UNet, the VAE encoder and the VAE decoder");
    return NULL;
  }
  if (sige_model_get_kind(models->unet) != SIGE_MODEL_SD_UNET ||
      sige_model_get_kind(models->encoder) != SIGE_MODEL_SD_VAE_ENCODER ||
      sige_model_get_kind(models->decoder) != SIGE_MODEL_SD_VAE_DECODER) {
    invalid(error, "the models are a %s, a %s and a %s; expected sd-unet, sd-vae-encoder, "
            "sd-vae-decoder", sige_model_kind_name(sige_model_get_kind(models->unet)),
            sige_model_kind_name(sige_model_get_kind(models->encoder)),
            sige_model_kind_name(sige_model_get_kind(models->decoder)));
    return NULL;
  }
  int64_t us[4], ds[4];
  sige_model_input_shape(models->unet, us);
  sige_model_input_shape(models->decoder, ds);
  if (memcmp(us, ds, sizeof us) != 0) {
    invalid(error, "the UNet's latent is %d x %d x %d but the VAE decoder's %d x %d x %d",
            (int)us[1], (int)us[2], (int)us[3], (int)ds[1], (int)ds[2], (int)ds[3]);
    return NULL;
  }
  if (!check_params(params, error)) return NULL;
  g_autoptr(sige_sampler) sampler = make_sampler(params, error);
  if (!sampler) return NULL;
  sige_ctx *ctx = sige_ctx_new_device(params->n_threads, params->device, error);
  if (!ctx) return NULL;
  sige_sd_pipeline *p = g_new0(sige_sd_pipeline, 1);
  p->m = *models;
  p->prm = *params;
  p->ctx = ctx;
  p->sampler = g_steal_pointer(&sampler);
  p->n_steps = sige_sampler_steps(p->sampler);
  memcpy(p->latent_shape, us, sizeof us);
  sige_cache_init(&p->enc_cache);
  sige_cache_init(&p->dec_cache);
  return p;
}

static void caches_free(sige_cache *c, int n) {
  for (int i = 0; c && i < n; i++) sige_cache_free_contents(&c[i]);
  g_free(c);
}

static void q_noise_free(sige_tensor **q, int n) {
  for (int i = 0; q && i < n; i++) sige_tensor_free(q[i]);
  g_free(q);
}

void sige_sd_pipeline_free(sige_sd_pipeline *p) {
  if (!p) return;
  sige_cache_free_contents(&p->enc_cache);
  sige_cache_free_contents(&p->dec_cache);
  caches_free(p->unet_caches, 2 * p->n_steps);
  q_noise_free(p->q_noise, p->n_steps);
  sige_tensor_free(p->cond);
  sige_tensor_free(p->uncond);
  sige_tensor_free(p->enc_noise);
  sige_tensor_free(p->noise);
  sige_tensor_free(p->current);
  sige_tensor_free(p->init_latent);
  sige_tensor_free(p->output);
  sige_sampler_free(p->sampler);
  sige_ctx_free(p->ctx);
  g_free(p);
}

gboolean sige_sd_pipeline_set_contexts(sige_sd_pipeline *p, const sige_tensor *cond,
                                       const sige_tensor *uncond, GError **error) {
  if (!cond || !uncond) return invalid(error, "set_contexts needs both contexts");
  sige_tensor *c = sige_tensor_dup(cond, error);
  sige_tensor *u = c ? sige_tensor_dup(uncond, error) : NULL;
  if (!u) {
    sige_tensor_free(c);
    return FALSE;
  }
  sige_tensor_free(p->cond);
  sige_tensor_free(p->uncond);
  p->cond = c;
  p->uncond = u;
  return TRUE;
}

static gboolean latent_like(const sige_sd_pipeline *p, const sige_tensor *t, const char *what,
                            GError **error) {
  if (t->numel == (size_t)(p->latent_shape[1] * p->latent_shape[2] * p->latent_shape[3]) &&
      t->storage == SIGE_STORAGE_F32)
    return TRUE;
  char buf[64];
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
              "SD pipeline: %s is %s; expected the latent's [1, %d, %d, %d] float32", what,
              sige_tensor_shape_str(t, buf, sizeof buf), (int)p->latent_shape[1],
              (int)p->latent_shape[2], (int)p->latent_shape[3]);
  return FALSE;
}

/* t (latent-sized) as a new [1, C, h, w] tensor. */
static sige_tensor *latent_copy(const sige_sd_pipeline *p, const sige_tensor *t, GError **error) {
  sige_tensor *c = sige_tensor_new(4, p->latent_shape, error);
  if (c) memcpy(c->data, t->data, t->numel * sizeof(float));
  return c;
}

gboolean sige_sd_pipeline_set_noise(sige_sd_pipeline *p, const sige_tensor *enc_noise,
                                    const sige_tensor *noise, const sige_tensor *const *q_noise,
                                    int n_q_noise, GError **error) {
  if (q_noise && n_q_noise != p->n_steps)
    return invalid(error, "%d q_sample noises for %d steps", n_q_noise, p->n_steps);
  if ((enc_noise && !latent_like(p, enc_noise, "enc_noise", error)) ||
      (noise && !latent_like(p, noise, "noise", error)))
    return FALSE;
  for (int i = 0; q_noise && i < n_q_noise; i++)
    if (!latent_like(p, q_noise[i], "a q_sample noise", error)) return FALSE;
  if (enc_noise) {
    sige_tensor_free(p->enc_noise);
    if (!(p->enc_noise = latent_copy(p, enc_noise, error))) return FALSE;
  }
  if (noise) {
    sige_tensor_free(p->noise);
    if (!(p->noise = latent_copy(p, noise, error))) return FALSE;
  }
  if (q_noise) {
    q_noise_free(p->q_noise, p->n_steps);
    p->q_noise = g_new0(sige_tensor *, p->n_steps);
    for (int i = 0; i < p->n_steps; i++)
      if (!(p->q_noise[i] = latent_copy(p, q_noise[i], error))) return FALSE;
  }
  return TRUE;
}

void sige_sd_pipeline_set_step_observer(sige_sd_pipeline *p, sige_sd_step_fn fn,
                                        void *user_data) {
  p->observer = fn;
  p->observer_data = user_data;
}

int sige_sd_pipeline_steps(const sige_sd_pipeline *p) { return p->n_steps; }
const sige_sampler *sige_sd_pipeline_sampler(const sige_sd_pipeline *p) { return p->sampler; }

guint64 sige_sd_pipeline_macs(const sige_sd_pipeline *p) { return sige_ctx_macs(p->ctx); }

size_t sige_sd_pipeline_cache_bytes(const sige_sd_pipeline *p) {
  if (!p->has_snapshot) return 0;
  size_t n = sige_cache_bytes(&p->enc_cache) + sige_cache_bytes(&p->dec_cache);
  for (int i = 0; i < 2 * p->n_steps; i++) n += sige_cache_bytes(&p->unet_caches[i]);
  return n;
}

/* The seeded noises the caller did not set, and the contexts' presence:
 * enc_noise from seed, the start noise from seed + 1, step i's q_sample
 * noise from seed + 2 + i. */
static gboolean ready(sige_sd_pipeline *p, GError **error) {
  if (!p->cond || !p->uncond)
    return invalid(error, "no contexts: call sige_sd_pipeline_set_contexts first");
  sige_tensor **slots[2] = {&p->enc_noise, &p->noise};
  for (int k = 0; k < 2; k++)
    if (!*slots[k]) {
      if (!(*slots[k] = sige_tensor_new(4, p->latent_shape, error))) return FALSE;
      sige_normal_noise(p->prm.seed + (guint64)k, *slots[k]);
    }
  if (p->prm.task == SIGE_SD_INPAINT && !p->q_noise) {
    p->q_noise = g_new0(sige_tensor *, p->n_steps);
    for (int i = 0; i < p->n_steps; i++) {
      if (!(p->q_noise[i] = sige_tensor_new(4, p->latent_shape, error))) return FALSE;
      sige_normal_noise(p->prm.seed + 2 + (guint64)i, p->q_noise[i]);
    }
  }
  return TRUE;
}

static gboolean check_image(const sige_sd_pipeline *p, const sige_tensor *image, GError **error) {
  int64_t want[4];
  sige_model_input_shape(p->m.encoder, want);
  if (image && image->ndim == 4 && image->shape[0] == 1 && image->shape[1] == want[1] &&
      image->shape[2] == want[2] && image->shape[3] == want[3] &&
      image->storage == SIGE_STORAGE_F32)
    return TRUE;
  char buf[64] = "none";
  if (image) sige_tensor_shape_str(image, buf, sizeof buf);
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
              "SD pipeline: the picture is %s; expected [1, %d, %d, %d] float32 in [-1, 1]", buf,
              (int)want[1], (int)want[2], (int)want[3]);
  return FALSE;
}

/* The inpainting mask pyramid: the image-size mask (1 = regenerate) down
 * to inpaint_min_res with the UNet's pyramid dilation and threshold. */
static sige_mask_pyramid *inpaint_pyramid(const sige_sd_pipeline *p, const sige_mask *mask,
                                          GError **error) {
  int64_t want[4];
  sige_model_input_shape(p->m.encoder, want);
  if (!mask || mask->h != want[2] || mask->w != want[3]) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "SD inpainting: the mask is %dx%d; expected the picture's %dx%d",
                mask ? mask->h : 0, mask ? mask->w : 0, (int)want[2], (int)want[3]);
    return NULL;
  }
  sige_sparse_params sp;
  sige_model_sparse_params(p->m.unet, &sp);
  return sige_mask_pyramid_new(mask, p->prm.inpaint_min_res, p->prm.inpaint_min_res,
                               sp.pyramid_dilation, sp.pyramid_threshold);
}

gboolean sige_sd_pipeline_run_dense(sige_sd_pipeline *p, const sige_tensor *image,
                                    const sige_mask *inpaint_mask, sige_progress_fn progress,
                                    void *user_data, const gint *cancel, sige_tensor **latent,
                                    sige_tensor **out, GError **error) {
  if (!check_image(p, image, error) || !ready(p, error)) return FALSE;
  g_autoptr(sige_mask_pyramid) pyr = NULL;
  if (p->prm.task == SIGE_SD_INPAINT && !(pyr = inpaint_pyramid(p, inpaint_mask, error)))
    return FALSE;
  sd_run r = {.p = p, .progress = progress, .user_data = user_data, .cancel = cancel,
              .total = sd_run_pass_count(p)};
  const gboolean ok = sd_run_task(&r, image, pyr, latent, out, error);
  if (ok && progress) progress(1.0, user_data);
  return ok;
}

/* The memory budget over every cache a snapshot holds. */
static gboolean check_budget(const sige_sd_pipeline *p, const sd_run *r, GError **error) {
  if (!p->prm.memory_budget) return TRUE;
  size_t need = sige_cache_bytes(r->enc_cache) + sige_cache_bytes(r->dec_cache);
  for (int i = 0; i < 2 * p->n_steps; i++) need += sige_cache_bytes(&r->unet_caches[i]);
  if (need <= p->prm.memory_budget) return TRUE;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM,
              "the SD caches need %zu MiB (%d steps, both guidance branches, the VAE) but the "
              "memory budget is %zu MiB; use fewer steps%s, or raise the budget",
              need >> 20, p->n_steps, p->prm.memory_budget >> 20,
              p->prm.fp16_caches ? "" : ", fp16 caches");
  return FALSE;
}

gboolean sige_sd_pipeline_snapshot(sige_sd_pipeline *p, const sige_tensor *original,
                                   sige_progress_fn progress, void *user_data, const gint *cancel,
                                   sige_tensor **out, GError **error) {
  if (!check_image(p, original, error) || !ready(p, error)) return FALSE;
  sige_cache enc, dec;
  sige_cache_init(&enc);
  sige_cache_init(&dec);
  sige_cache *unet = g_new0(sige_cache, 2 * p->n_steps);
  for (int i = 0; i < 2 * p->n_steps; i++) sige_cache_init(&unet[i]);
  sd_run r = {.p = p, .record = TRUE, .enc_cache = &enc, .dec_cache = &dec, .unet_caches = unet,
              .progress = progress, .user_data = user_data, .cancel = cancel,
              .total = sd_run_pass_count(p)};
  g_autoptr(sige_tensor) picture = NULL, copy = NULL;
  gboolean ok = sd_run_task(&r, original, NULL, NULL, &picture, error) &&
                check_budget(p, &r, error) && (copy = sige_tensor_dup(original, error)) &&
                (!out || (*out = sige_tensor_dup(picture, error)));
  if (!ok) {
    sige_cache_free_contents(&enc);
    sige_cache_free_contents(&dec);
    caches_free(unet, 2 * p->n_steps);
    sige_tensor_free(r.init_latent);
    return FALSE;
  }
  sige_cache_free_contents(&p->enc_cache);
  sige_cache_free_contents(&p->dec_cache);
  caches_free(p->unet_caches, 2 * p->n_steps);
  p->enc_cache = enc;
  p->dec_cache = dec;
  p->unet_caches = unet;
  sige_tensor_free(p->current);
  p->current = g_steal_pointer(&copy);
  sige_tensor_free(p->output);
  p->output = g_steal_pointer(&picture);
  sige_tensor_free(p->init_latent);
  p->init_latent = r.init_latent;
  p->has_snapshot = TRUE;
  if (progress) progress(1.0, user_data);
  return TRUE;
}

gboolean sige_sd_pipeline_regenerate(sige_sd_pipeline *p, const sige_tensor *edited,
                                     const sige_mask *inpaint_mask, sige_progress_fn progress,
                                     void *user_data, const gint *cancel, sige_tensor **latent,
                                     sige_tensor **out, GError **error) {
  if (latent) *latent = NULL;
  if (out) *out = NULL;
  if (!p->has_snapshot)
    return invalid(error, "regenerate called before a snapshot of the original");
  const gboolean inpaint = p->prm.task == SIGE_SD_INPAINT;
  if (!inpaint && !check_image(p, edited, error)) return FALSE;
  g_autoptr(sige_mask_pyramid) enc_pyr = NULL, unet_pyr = NULL, dec_pyr = NULL;
  if (inpaint) {
    if (!(unet_pyr = inpaint_pyramid(p, inpaint_mask, error))) return FALSE;
  } else {
    /* the published sdedit runner's masks: the image difference dilated
     * (the encoder's and the UNet's pyramids), dilated again for the
     * decoder */
    sige_sparse_params ep, up, dp;
    sige_model_sparse_params(p->m.encoder, &ep);
    sige_model_sparse_params(p->m.unet, &up);
    sige_model_sparse_params(p->m.decoder, &dp);
    const sige_sd_vae_config *dc = sige_model_sd_vae_config(p->m.decoder);
    g_autoptr(sige_mask) raw = sige_mask_from_diff(p->current, edited, ep.diff_eps);
    g_autoptr(sige_mask) diff = sige_mask_cross_dilate(raw, ep.dilate_radius);
    g_autoptr(sige_mask) ddiff = sige_mask_cross_dilate(diff, dc->decoder_extra_dilate);
    if (sige_mask_count(diff) == 0) {
      /* nothing changed: the result is the current one */
      if (out && !(*out = sige_tensor_dup(p->output, error))) return FALSE;
      if (progress) progress(1.0, user_data);
      return TRUE;
    }
    enc_pyr = sige_mask_pyramid_new(diff, ep.min_h, ep.min_w, ep.pyramid_dilation,
                                    ep.pyramid_threshold);
    unet_pyr = sige_mask_pyramid_new(diff, up.min_h, up.min_w, up.pyramid_dilation,
                                     up.pyramid_threshold);
    dec_pyr = sige_mask_pyramid_new(ddiff, dp.min_h, dp.min_w, dp.pyramid_dilation,
                                    dp.pyramid_threshold);
  }
  g_autoptr(sige_undo_log) undo = sige_undo_log_new();
  sd_run r = {.p = p, .enc_pyr = enc_pyr, .unet_pyr = unet_pyr,
              .dec_pyr = inpaint ? unet_pyr : dec_pyr, .undo = undo, .enc_cache = &p->enc_cache,
              .dec_cache = &p->dec_cache, .unet_caches = p->unet_caches, .progress = progress,
              .user_data = user_data, .cancel = cancel, .total = sd_run_pass_count(p)};
  if (inpaint) r.total--; /* no encoder pass */
  g_autoptr(sige_tensor) picture = NULL, copy = NULL;
  gboolean ok = sd_run_task(&r, edited, unet_pyr, latent, &picture, error) &&
                (inpaint || (copy = sige_tensor_dup(edited, error))) &&
                (!out || (*out = sige_tensor_dup(picture, error)));
  /* inpainting always runs against the snapshot's own caches (each mask is
   * an inpainting of the original), so its writes go back too */
  if (!ok || inpaint) sige_undo_log_rollback(undo);
  if (!ok) {
    if (latent) g_clear_pointer(latent, sige_tensor_free);
    return FALSE;
  }
  if (!inpaint) {
    sige_tensor_free(p->current);
    p->current = g_steal_pointer(&copy);
    sige_tensor_free(p->output);
    p->output = g_steal_pointer(&picture);
  }
  if (progress) progress(1.0, user_data);
  return TRUE;
}
