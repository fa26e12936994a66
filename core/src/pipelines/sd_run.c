/* The SD tasks' loops: encode, DDIM or DPM-Solver++ with classifier-free
 * guidance, decode,
 * each model pass dense, recording or sparse as the run says (see
 * sige/sd_pipeline.h for the published semantics reproduced here). */
#include <math.h>

#include "sd_pipeline_internal.h"
#include "../models/model_internal.h"
#include "sige/error.h"

typedef struct {
  sd_run *r;
} pass_progress;

static void on_pass_progress(double f, void *data) {
  sd_run *r = ((pass_progress *)data)->r;
  r->progress((r->done + f) / MAX(r->total, 1), r->user_data);
}

/* One pass of model m: dense without a cache, recording into cache without
 * a pyramid, sparse against cache with one. */
static gboolean model_pass(sd_run *r, const sige_model *m, sige_cache *cache,
                           const sige_mask_pyramid *pyr, const sige_tensor *x, float t,
                           const sige_tensor *cond, sige_tensor **out, GError **error) {
  sige_sd_pipeline *p = r->p;
  sige_pass ps;
  if (!cache)
    sige_pass_init_dense(&ps, p->ctx);
  else if (pyr)
    sige_pass_init_sparse(&ps, p->ctx, cache, pyr, r->undo);
  else
    sige_pass_init_full(&ps, p->ctx, cache);
  ps.fp16 = cache && p->prm.fp16_caches;
  ps.cond = cond;
  ps.cancel = r->cancel;
  pass_progress pp = {r};
  if (r->progress) {
    ps.progress = on_pass_progress;
    ps.progress_data = &pp;
  }
  const gboolean ok = sige_model_pass(m, &ps, x, t, out, error);
  sige_pass_clear(&ps);
  r->done++;
  return ok;
}

static gboolean guided(const sige_sd_pipeline *p) { return p->prm.guidance != 1.0; }

int sd_run_pass_count(const sige_sd_pipeline *p) {
  return 2 + p->n_steps * (guided(p) ? 2 : 1);
}

void sige_sd_latent_from_moments(const sige_tensor *moments, const sige_tensor *enc_noise,
                                 double scale_factor, sige_tensor *z) {
  const size_t n = z->numel; /* the mean's elements; the log-variance follows */
  const float sf = (float)scale_factor;
  for (size_t i = 0; i < n; i++) {
    const float lv = CLAMP(moments->data[n + i], -30.0f, 20.0f);
    const float sample = moments->data[i] + expf(0.5f * lv) * enc_noise->data[i];
    z->data[i] = sf * sample;
  }
}

static sige_tensor *new_latent(const sige_sd_pipeline *p, GError **error) {
  return sige_tensor_new(4, p->latent_shape, error);
}

/* The encoder (dense, recording or sparse), then the scaled posterior sample. */
static gboolean encode(sd_run *r, const sige_tensor *image, sige_tensor **moments,
                       sige_tensor **latent, GError **error) {
  sige_sd_pipeline *p = r->p;
  if (!model_pass(r, p->m.encoder, r->enc_cache, r->enc_pyr, image, 0, NULL, moments, error))
    return FALSE;
  if (SIGE_C(*moments) != 2 * p->latent_shape[1] || SIGE_H(*moments) != p->latent_shape[2] ||
      SIGE_W(*moments) != p->latent_shape[3]) {
    char buf[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "SD pipeline: the VAE encoder gave moments %s for the UNet's latent of %d x %d x "
                "%d (the picture must be 8 times the latent's size)",
                sige_tensor_shape_str(*moments, buf, sizeof buf), (int)p->latent_shape[1],
                (int)p->latent_shape[2], (int)p->latent_shape[3]);
    return FALSE;
  }
  if (!(*latent = new_latent(p, error))) return FALSE;
  sige_sd_latent_from_moments(*moments, p->enc_noise, p->prm.scale_factor, *latent);
  return TRUE;
}

static gboolean decode(sd_run *r, const sige_tensor *latent, sige_tensor **out, GError **error) {
  sige_sd_pipeline *p = r->p;
  g_autoptr(sige_tensor) z = sige_tensor_dup(latent, error);
  if (!z) return FALSE;
  const float inv = (float)(1.0 / p->prm.scale_factor);
  for (size_t i = 0; i < z->numel; i++) z->data[i] *= inv;
  return model_pass(r, p->m.decoder, r->dec_cache, r->dec_pyr, z, 0, NULL, out, error);
}

/* Both guidance branches at step i (uncond only when guided) and their
 * combination e_u + guidance (e_c - e_u) into *eps. */
static gboolean unet_eps(sd_run *r, int i, const sige_tensor *x, sige_tensor *e[2],
                         sige_tensor **eps, GError **error) {
  sige_sd_pipeline *p = r->p;
  const float t = sige_sampler_model_t(p->sampler, i);
  for (int b = guided(p) ? 0 : 1; b < 2; b++) {
    sige_cache *cache = r->unet_caches ? &r->unet_caches[2 * i + b] : NULL;
    if (!model_pass(r, p->m.unet, cache, r->unet_pyr, x, t, b ? p->cond : p->uncond, &e[b],
                    error))
      return FALSE;
  }
  if (!(*eps = sige_tensor_dup(e[1], error))) return FALSE;
  if (!e[0]) return TRUE;
  const float g = (float)p->prm.guidance;
  for (size_t k = 0; k < (*eps)->numel; k++)
    (*eps)->data[k] = e[0]->data[k] + g * (e[1]->data[k] - e[0]->data[k]);
  return TRUE;
}

static void observe_step(sd_run *r, int i, const sige_tensor *x_in, sige_tensor *e[2],
                         const sige_tensor *x) {
  sige_sd_pipeline *p = r->p;
  if (!p->observer) return;
  sige_sd_step_info info = {.event = SIGE_SD_STEP, .sparse = r->unet_pyr != NULL, .step = i,
                            .n_steps = p->n_steps,
                            .timestep = sige_sampler_timestep(p->sampler, i), .x_in = x_in,
                            .eps = {e[0], e[1]}, .x = x};
  p->observer(&info, p->observer_data);
}

/* The sampler (DDIM or DPM-Solver++) from x (in place): per step the guided
 * eps and the update (DPM-Solver++'s history restarts at step 0); for
 * inpainting (m != NULL) x is first blended with q_sample(init, t) outside
 * m.  A recording inpainting run records on q_sample(init, t) itself and
 * leaves x alone. */
static gboolean denoise(sd_run *r, sige_tensor *x, const sige_tensor *init, gboolean inpaint,
                        const sige_mask *m, GError **error) {
  sige_sd_pipeline *p = r->p;
  const gboolean record_inpaint = inpaint && r->record;
  gboolean ok = TRUE;
  for (int i = 0; i < p->n_steps && ok; i++) {
    sige_tensor *e[2] = {NULL, NULL};
    g_autoptr(sige_tensor) eps = NULL, x_orig_t = NULL, x_in = NULL;
    if (inpaint) {
      ok = (x_orig_t = new_latent(p, error)) != NULL;
      if (ok) {
        sige_sampler_noisy(p->sampler, i, init, p->q_noise[i], x_orig_t);
        if (!record_inpaint) sige_sdedit_reset(x, x_orig_t, m->data);
      }
    }
    const sige_tensor *in = record_inpaint ? x_orig_t : x;
    if (ok && p->observer) ok = (x_in = sige_tensor_dup(in, error)) != NULL;
    ok = ok && unet_eps(r, i, in, e, &eps, error);
    if (ok && !record_inpaint) ok = sige_sampler_step(p->sampler, i, x, eps, error);
    if (ok) observe_step(r, i, x_in, e, record_inpaint ? x_orig_t : x);
    sige_tensor_free(e[0]);
    sige_tensor_free(e[1]);
  }
  return ok;
}

static void observe_encoded(sd_run *r, const sige_tensor *moments, const sige_tensor *latent,
                            const sige_tensor *x) {
  sige_sd_pipeline *p = r->p;
  if (!p->observer) return;
  sige_sd_step_info info = {.event = SIGE_SD_ENCODED, .sparse = r->enc_pyr != NULL,
                            .moments = moments, .latent = latent, .n_steps = p->n_steps, .x = x};
  p->observer(&info, p->observer_data);
}

gboolean sd_run_task(sd_run *r, const sige_tensor *image, const sige_mask_pyramid *inpaint_pyr,
                     sige_tensor **latent, sige_tensor **out, GError **error) {
  sige_sd_pipeline *p = r->p;
  const gboolean inpaint = p->prm.task == SIGE_SD_INPAINT;
  const gboolean sparse = r->unet_pyr != NULL;
  g_autoptr(sige_tensor) moments = NULL, init = NULL, x = NULL, picture = NULL;
  const sige_mask *m = NULL;
  if (inpaint && !r->record) {
    m = sige_mask_pyramid_get(inpaint_pyr, (int)p->latent_shape[2], (int)p->latent_shape[3]);
    if (!m) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                  "SD inpainting: the mask pyramid has no %d x %d level (inpaint_min_res %d is "
                  "above the latent's size)",
                  (int)p->latent_shape[2], (int)p->latent_shape[3], p->prm.inpaint_min_res);
      return FALSE;
    }
  }
  /* a sparse inpainting run starts from the snapshot's latent: the
   * published runner encodes the picture once, in the full pass */
  if (inpaint && sparse) {
    if (!(init = sige_tensor_dup(p->init_latent, error))) return FALSE;
  } else if (!encode(r, image, &moments, &init, error)) {
    return FALSE;
  }
  if (!(x = new_latent(p, error))) return FALSE;
  if (inpaint)
    sige_tensor_copy_rows(x, p->noise, 0, SIGE_H(x), NULL);
  else
    sige_sampler_noisy_start(p->sampler, init, p->noise, x);
  observe_encoded(r, moments, init, x);
  if (!denoise(r, x, init, inpaint, m, error)) return FALSE;
  /* the inpainting snapshot decodes the picture's own latent */
  const sige_tensor *final = inpaint && r->record ? init : x;
  if (!decode(r, final, &picture, error)) return FALSE;
  if (inpaint && r->record) r->init_latent = g_steal_pointer(&init);
  if (latent && !(*latent = sige_tensor_dup(final, error))) return FALSE;
  if (out) *out = g_steal_pointer(&picture);
  return TRUE;
}
