#include "sige/session.h"

#include <string.h>

#include "models/model_internal.h"
#include "sige/error.h"
#include "sparse/sparse_internal.h"

struct sige_session {
  const sige_model *model;
  sige_session_options opts;
  sige_ctx *ctx;
  int n_steps;         /* model passes per call: 1, or the sampler's steps */
  sige_cache *caches;  /* one cache set per step */
  sige_tensor *input;  /* current input (snapshot or last edit) */
  sige_tensor *input_dev; /* a copy of it on the device (device sessions without a sampler) */
  sige_tensor *output; /* current output */
  sige_session_stats stats;
  GArray *layer_stats; /* of sige_layer_stats, the last pass */
  /* SDEdit */
  sige_sampler *sampler;
  sige_tensor *noise;
  sige_tensor **traj; /* n_steps + 1: x at each step of the current state */
};

void sige_session_options_init(sige_session_options *o) {
  memset(o, 0, sizeof *o);
  o->timestep = 0.0f;
  o->full_pass_above = 0.6;
  sige_sampler_config_init(&o->sampler, SIGE_SAMPLER_DPM_SOLVER_PP);
}

static void traj_free(sige_tensor **traj, int n) {
  for (int i = 0; traj && i <= n; i++) sige_tensor_free(traj[i]);
  g_free(traj);
}

static void caches_free(sige_cache *c, int n) {
  for (int i = 0; c && i < n; i++) sige_cache_free_contents(&c[i]);
  g_free(c);
}

static sige_cache *caches_new(int n) {
  sige_cache *c = g_new0(sige_cache, n);
  for (int i = 0; i < n; i++) sige_cache_init(&c[i]);
  return c;
}

sige_session *sige_session_new(const sige_model *model, const sige_session_options *options,
                               GError **error) {
  if (!model) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "sige_session_new: no model");
    return NULL;
  }
  sige_session_options o;
  if (options)
    o = *options;
  else
    sige_session_options_init(&o);
  sige_ctx *ctx = sige_ctx_new_device(o.n_threads, o.device, error);
  if (!ctx) return NULL;
  if (o.conv_policy != SIGE_CONV_POLICY_AUTO) sige_ctx_set_conv_policy(ctx, o.conv_policy);
  sige_sampler *sampler = NULL;
  if (o.sdedit) {
    const sige_model_kind kind = sige_model_get_kind(model);
    if (kind != SIGE_MODEL_DDPM_UNET && kind != SIGE_MODEL_PD_UNET) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                  "SDEdit needs a diffusion model; this one is a %s",
                  sige_model_kind_name(sige_model_get_kind(model)));
      sige_ctx_free(ctx);
      return NULL;
    }
    if (!(sampler = sige_sampler_new(&o.sampler, error))) {
      sige_ctx_free(ctx);
      return NULL;
    }
  }
  sige_session *s = g_new0(sige_session, 1);
  s->model = model;
  s->opts = o;
  s->sampler = sampler;
  s->n_steps = sampler ? sige_sampler_steps(sampler) : 1;
  s->ctx = ctx;
  s->layer_stats = g_array_new(FALSE, TRUE, sizeof(sige_layer_stats));
  s->caches = caches_new(s->n_steps);
  return s;
}

void sige_session_free(sige_session *s) {
  if (!s) return;
  caches_free(s->caches, s->n_steps);
  traj_free(s->traj, s->n_steps);
  sige_tensor_free(s->input_dev);
  sige_tensor_free(s->input);
  sige_tensor_free(s->output);
  sige_tensor_free(s->noise);
  sige_sampler_free(s->sampler);
  sige_ctx_free(s->ctx);
  if (s->layer_stats) g_array_free(s->layer_stats, TRUE);
  g_free(s);
}

static gboolean check_input(const sige_session *s, const sige_tensor *input, GError **error) {
  int64_t want[4];
  sige_model_input_shape(s->model, want);
  if (input->ndim == 4 && input->shape[0] == want[0] && input->shape[1] == want[1] &&
      input->shape[2] == want[2] && input->shape[3] == want[3] &&
      input->storage == SIGE_STORAGE_F32)
    return TRUE;
  char buf[64];
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
              "%s input is %s; expected [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
              ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] float32",
              sige_model_kind_name(sige_model_get_kind(s->model)),
              sige_tensor_shape_str(input, buf, sizeof buf), want[0], want[1], want[2], want[3]);
  return FALSE;
}

gboolean sige_session_set_noise(sige_session *s, const sige_tensor *noise, GError **error) {
  if (!s->sampler) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "set_noise: the session is not SDEdit");
    return FALSE;
  }
  if (!check_input(s, noise, error)) return FALSE;
  sige_tensor *n = sige_tensor_dup(noise, error);
  if (!n) return FALSE;
  sige_tensor_free(s->noise);
  s->noise = n;
  return TRUE;
}

/* The bounding box of pixels where a and b differ (any channel). */
static sige_rect diff_rect(const sige_tensor *a, const sige_tensor *b) {
  const int C = SIGE_C(a), H = SIGE_H(a), W = SIGE_W(a);
  int x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (int c = 0; c < C; c++)
    for (int y = 0; y < H; y++) {
      const float *pa = a->data + ((size_t)c * H + y) * W, *pb = b->data + ((size_t)c * H + y) * W;
      for (int x = 0; x < W; x++)
        if (pa[x] != pb[x]) {
          x0 = MIN(x0, x); x1 = MAX(x1, x);
          y0 = MIN(y0, y); y1 = MAX(y1, y);
        }
    }
  if (x1 < 0) return (sige_rect){0, 0, 0, 0};
  return (sige_rect){x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

/* Progress of one model pass mapped into the whole call's range. */
typedef struct {
  sige_progress_fn fn;
  void *data;
  int step, n_steps;
} step_progress;

static void on_step_progress(double f, void *data) {
  step_progress *p = data;
  p->fn((p->step + f) / p->n_steps, p->data);
}

/* Everything one call needs to run model passes. */
typedef struct {
  sige_session *s;
  sige_mode mode;
  sige_cache *caches;              /* full: fresh caches to record; sparse: the session's */
  const sige_mask_pyramid *pyr;    /* sparse */
  sige_undo_log *undo;             /* sparse */
  sige_progress_fn progress;
  void *user_data;
  const gint *cancel;
  uint64_t macs;
  GArray *profile; /* of sige_layer_stats, summed over steps */
} pass_plan;

/* One model pass at step i. */
static gboolean model_pass(pass_plan *pl, int i, const sige_tensor *x, float t, sige_tensor **out,
                           GError **error) {
  sige_session *s = pl->s;
  sige_pass pass;
  if (s->opts.follow_free_cpus) sige_ctx_fit_threads(s->ctx);
  if (pl->mode == SIGE_MODE_FULL)
    sige_pass_init_full(&pass, s->ctx, &pl->caches[i]);
  else
    sige_pass_init_sparse(&pass, s->ctx, &pl->caches[i], pl->pyr, pl->undo);
  pass.fp16 = s->opts.fp16_caches;
  pass.cancel = pl->cancel;
  step_progress sp = {pl->progress, pl->user_data, i, s->n_steps};
  if (pl->progress) {
    pass.progress = on_step_progress;
    pass.progress_data = &sp;
  }
  g_autoptr(GArray) groups = g_array_new(FALSE, TRUE, sizeof(sige_layer_stats));
  pass.profile = groups;
  sige_ctx_reset_macs(s->ctx);
  gboolean ok = sige_model_pass(s->model, &pass, x, t, out, error);
  pl->macs += sige_ctx_macs(s->ctx);
  sige_pass_clear(&pass);
  if (ok && pl->profile) { /* the same groups at every step: sum them */
    if (pl->profile->len < groups->len) g_array_set_size(pl->profile, groups->len);
    for (guint g = 0; g < groups->len; g++) {
      const sige_layer_stats *a = &g_array_index(groups, sige_layer_stats, g);
      sige_layer_stats *sum = &g_array_index(pl->profile, sige_layer_stats, g);
      sum->group = a->group;
      sum->sparse = a->sparse;
      sum->macs += a->macs;
      sum->mults += a->mults;
      sum->algos |= a->algos;
      sum->seconds += a->seconds;
    }
  }
  return ok;
}

/* The memory budget, checked after the first step's caches exist. */
static gboolean check_budget(const sige_session *s, const sige_cache *first, GError **error) {
  if (!s->opts.memory_budget) return TRUE;
  const size_t per_step = sige_cache_bytes(first);
  const size_t need = per_step * (size_t)s->n_steps;
  if (need <= s->opts.memory_budget) return TRUE;
  const size_t fits = per_step ? s->opts.memory_budget / per_step : 0;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_OVER_BUDGET,
              "the caches need %zu MiB (%d step%s x %zu MiB) but the memory budget is %zu MiB; "
              "it fits %zu step%s%s, or raise the budget",
              need >> 20, s->n_steps, s->n_steps == 1 ? "" : "s", per_step >> 20,
              s->opts.memory_budget >> 20, fits, fits == 1 ? "" : "s",
              s->opts.fp16_caches ? "" : " (about twice as many with fp16 caches)");
  return FALSE;
}

/* SDEdit from x0: x = noisy(x0) at the first step, then per step: a model
 * pass, the sampler update, and the reset to `ref` (the current trajectory)
 * outside the mask (NULL mask: no reset, the snapshot's own trajectory).
 * new_traj receives x at every step.  Snapshot mode (analytic = TRUE) runs
 * the passes on the analytic trajectory of x0 instead of denoising. */
static gboolean sdedit_passes(pass_plan *pl, const sige_tensor *x0, gboolean analytic,
                              const sige_mask *mask, sige_tensor **new_traj, GError **error) {
  sige_session *s = pl->s;
  const int n = s->n_steps;
  sige_tensor *x = sige_tensor_new4_uninit(1, SIGE_C(x0), SIGE_H(x0), SIGE_W(x0), error);
  if (!x) return FALSE;
  sige_sampler_noisy(s->sampler, 0, x0, s->noise, x);
  sige_sampler_reset(s->sampler);
  gboolean ok = TRUE;
  for (int i = 0; i < n && ok; i++) {
    if (!(new_traj[i] = sige_tensor_dup(x, error))) {
      ok = FALSE;
      break;
    }
    sige_tensor *eps = NULL;
    ok = model_pass(pl, i, x, sige_sampler_model_t(s->sampler, i), &eps, error);
    if (ok && i == 0 && pl->mode == SIGE_MODE_FULL) ok = check_budget(s, &pl->caches[0], error);
    if (ok && analytic) {
      sige_sampler_noisy(s->sampler, i + 1, x0, s->noise, x);
    } else if (ok) {
      ok = sige_sampler_step(s->sampler, i, x, eps, error);
      if (ok && mask) sige_sdedit_reset(x, s->traj[i + 1], mask->data);
    }
    sige_tensor_free(eps);
  }
  if (ok) new_traj[n] = x;
  else sige_tensor_free(x);
  return ok;
}

static void count_stats(sige_session *s, const pass_plan *pl, gint64 t0, gboolean sparse) {
  g_array_set_size(s->layer_stats, 0);
  if (pl->profile) g_array_append_vals(s->layer_stats, pl->profile->data, pl->profile->len);
  s->stats.macs = pl->macs;
  if (!sparse) s->stats.dense_macs = pl->macs;
  s->stats.seconds = (g_get_monotonic_time() - t0) / 1e6;
  s->stats.was_sparse = sparse;
}

/* Makes input the current input and result (taken) the current output;
 * *output (optional) receives a copy.  Only rows [r0, r1) of input differ
 * from the current one (r0 < 0: any may): a large input (GauGAN's label
 * channels) is not copied whole for every edit. */
static gboolean commit(sige_session *s, const sige_tensor *input, int r0, int r1,
                       sige_tensor *result, sige_tensor **output, GError **error) {
  sige_tensor *out_copy = output ? sige_tensor_dup(result, error) : NULL;
  sige_tensor *in_copy = s->input || (output && !out_copy) ? NULL : sige_tensor_dup(input, error);
  if ((output && !out_copy) || (!s->input && !in_copy)) {
    sige_tensor_free(out_copy);
    sige_tensor_free(result);
    return FALSE;
  }
  if (in_copy)
    s->input = in_copy;
  else /* the inputs' shape is the model's: copying into the old one cannot fail */
    sige_tensor_copy_rows(s->input, input, r0 < 0 ? 0 : r0, r0 < 0 ? SIGE_H(input) : r1, NULL);
  sige_tensor_free(s->output);
  s->output = result;
  if (output) *output = out_copy;
  return TRUE;
}

/* A full (recording) pass over every step into fresh caches, which replace
 * the session's only on success.  SDEdit: analytic (snapshot) or denoising
 * from `input` with the reset against `mask`. */
static gboolean full_passes(sige_session *s, const sige_tensor *input, gboolean analytic,
                            const sige_mask *mask, sige_progress_fn progress, void *user_data,
                            const gint *cancel, sige_tensor **result, GError **error) {
  g_autoptr(GArray) profile = g_array_new(FALSE, TRUE, sizeof(sige_layer_stats));
  pass_plan pl = {s, SIGE_MODE_FULL, caches_new(s->n_steps), NULL, NULL, progress, user_data,
                  cancel, 0, profile};
  gint64 t0 = g_get_monotonic_time();
  gboolean ok;
  sige_tensor **traj = NULL;
  if (s->sampler) {
    traj = g_new0(sige_tensor *, s->n_steps + 1);
    ok = sdedit_passes(&pl, input, analytic, mask, traj, error);
    if (ok) *result = analytic ? sige_tensor_dup(input, error) : sige_tensor_dup(traj[s->n_steps], error);
    ok = ok && *result;
  } else {
    /* on a device the pass reads its own copy of the input, kept for the
     * sparse passes that follow */
    sige_backend *be = sige_ctx_backend(s->ctx);
    sige_tensor *x = be ? sige_tensor_to_backend(be, input, error) : NULL;
    ok = (!be || x) && model_pass(&pl, 0, x ? x : input, s->opts.timestep, result, error) &&
         check_budget(s, &pl.caches[0], error);
    if (!ok) g_clear_pointer(result, sige_tensor_free);
    if (ok && x) {
      sige_tensor_free(s->input_dev);
      s->input_dev = x;
    } else {
      sige_tensor_free(x);
    }
  }
  if (!ok) {
    caches_free(pl.caches, s->n_steps);
    traj_free(traj, s->n_steps);
    return FALSE;
  }
  caches_free(s->caches, s->n_steps);
  s->caches = pl.caches;
  if (traj) {
    traj_free(s->traj, s->n_steps);
    s->traj = traj;
  }
  count_stats(s, &pl, t0, FALSE);
  return TRUE;
}

gboolean sige_session_snapshot(sige_session *s, const sige_tensor *input, sige_tensor **output,
                               GError **error) {
  return sige_session_snapshot_full(s, input, NULL, NULL, NULL, output, error);
}

gboolean sige_session_snapshot_full(sige_session *s, const sige_tensor *input,
                                    sige_progress_fn progress, void *user_data,
                                    const gint *cancel, sige_tensor **output, GError **error) {
  if (!check_input(s, input, error)) return FALSE;
  if (s->sampler && !s->noise) {
    s->noise = sige_tensor_new4_uninit(1, SIGE_C(input), SIGE_H(input), SIGE_W(input), error);
    if (!s->noise) return FALSE;
    sige_normal_noise(s->opts.seed, s->noise);
  }
  sige_tensor *result = NULL;
  if (!full_passes(s, input, TRUE, NULL, progress, user_data, cancel, &result, error))
    return FALSE;
  s->stats.edit_ratio = 1.0;
  if (progress) progress(1.0, user_data);
  return commit(s, input, -1, 0, result, output, error);
}

gboolean sige_session_has_snapshot(const sige_session *s) { return s->output != NULL; }

/* The dilated difference mask, and the rows [*r0, *r1) where the inputs
 * differ at all. */
static sige_mask *edit_mask(const sige_session *s, const sige_tensor *edited,
                            const sige_sparse_params *p, int *r0, int *r1) {
  g_autoptr(sige_mask) diff = sige_mask_from_diff_rows(s->input, edited, p->diff_eps,
                                                       sige_ctx_threads(s->ctx), r0, r1);
  int mh, mw;
  sige_model_mask_shape(s->model, &mh, &mw);
  if (mh != diff->h || mw != diff->w) {
    /* a mask at a finer resolution than the input (the VAE decoder's
     * latent): each input pixel covers its block of mask pixels */
    sige_mask *up = sige_mask_new(mh, mw);
    for (int y = 0; y < mh; y++)
      for (int x = 0; x < mw; x++)
        up->data[(size_t)y * mw + x] =
            diff->data[(size_t)(y * diff->h / mh) * diff->w + x * diff->w / mw];
    g_autoptr(sige_mask) d = sige_mask_cross_dilate(up, p->dilate_radius);
    sige_mask_free(up);
    return g_steal_pointer(&d);
  }
  return sige_mask_cross_dilate(diff, p->dilate_radius);
}

gboolean sige_session_edit_ratio(const sige_session *s, const sige_tensor *edited,
                                 double *ratio, GError **error) {
  if (!s->input) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "no snapshot yet");
    return FALSE;
  }
  if (!check_input(s, edited, error)) return FALSE;
  sige_sparse_params p;
  sige_model_sparse_params(s->model, &p);
  int r0, r1;
  g_autoptr(sige_mask) m = edit_mask(s, edited, &p, &r0, &r1);
  *ratio = (double)sige_mask_count(m) / ((double)m->h * m->w);
  return TRUE;
}

/* Sparse passes over every step, in place in the session's caches; on
 * failure the undo log puts every step's caches back. */
static gboolean sparse_passes(sige_session *s, const sige_tensor *edited, const sige_mask *mask,
                              int r0, int r1, sige_progress_fn progress, void *user_data,
                              const gint *cancel, sige_tensor **result, GError **error) {
  sige_sparse_params p;
  sige_model_sparse_params(s->model, &p);
  g_autoptr(sige_mask_pyramid) pyr =
      sige_mask_pyramid_new(mask, p.min_h, p.min_w, p.pyramid_dilation, p.pyramid_threshold);
  g_autoptr(sige_undo_log) undo = sige_undo_log_new();
  g_autoptr(GArray) profile = g_array_new(FALSE, TRUE, sizeof(sige_layer_stats));
  pass_plan pl = {s, SIGE_MODE_SPARSE, s->caches, pyr, undo, progress, user_data, cancel, 0,
                  profile};
  gint64 t0 = g_get_monotonic_time();
  gboolean ok;
  sige_tensor **traj = NULL;
  if (s->sampler) {
    traj = g_new0(sige_tensor *, s->n_steps + 1);
    ok = sdedit_passes(&pl, edited, FALSE, mask, traj, error) &&
         (*result = sige_tensor_dup(traj[s->n_steps], error)) != NULL;
  } else if (s->input_dev) {
    /* the device's copy of the input becomes the edit where it differs, and
     * goes back with the caches if the pass fails */
    ok = sige_tensor_copy_rows(s->input_dev, edited, r0, r1, error) &&
         model_pass(&pl, 0, s->input_dev, s->opts.timestep, result, error);
    if (!ok) sige_tensor_copy_rows(s->input_dev, s->input, r0, r1, NULL);
  } else {
    ok = model_pass(&pl, 0, edited, s->opts.timestep, result, error);
  }
  if (!ok) {
    sige_undo_log_rollback(undo);
    traj_free(traj, s->n_steps);
    return FALSE;
  }
  if (traj) {
    traj_free(s->traj, s->n_steps);
    s->traj = traj;
  }
  count_stats(s, &pl, t0, TRUE);
  return TRUE;
}

static gboolean regenerate(sige_session *s, const sige_tensor *edited, const sige_mask *mask,
                           int r0, int r1, sige_progress_fn progress, void *user_data,
                           const gint *cancel, sige_tensor **output, sige_rect *changed,
                           GError **error) {
  const int64_t count = sige_mask_count(mask);
  const double ratio = (double)count / ((double)mask->h * mask->w);
  if (count == 0) {
    /* nothing changed: the published pyramid would turn this into a full
     * mask; we answer from the cache */
    s->stats.edit_ratio = 0;
    s->stats.macs = 0;
    s->stats.seconds = 0;
    s->stats.was_sparse = FALSE;
    g_array_set_size(s->layer_stats, 0);
    if (changed) *changed = (sige_rect){0, 0, 0, 0};
    if (output && !(*output = sige_tensor_dup(s->output, error))) return FALSE;
    if (progress) progress(1.0, user_data);
    return TRUE;
  }
  sige_tensor *result = NULL;
  /* a full pass is cancellable too: the old caches stay until it succeeds */
  const gboolean ok =
      ratio > s->opts.full_pass_above
          ? full_passes(s, edited, FALSE, mask, progress, user_data, cancel, &result, error)
          : sparse_passes(s, edited, mask, r0, r1, progress, user_data, cancel, &result, error);
  if (!ok) return FALSE;
  s->stats.edit_ratio = ratio;
  if (changed) *changed = diff_rect(s->output, result);
  if (progress) progress(1.0, user_data);
  return commit(s, edited, r0, r1, result, output, error);
}

static gboolean check_ready(sige_session *s, const sige_tensor *edited, GError **error) {
  if (!s->input) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "regenerate called before a snapshot: take a snapshot of the original first");
    return FALSE;
  }
  return check_input(s, edited, error);
}

gboolean sige_session_regenerate(sige_session *s, const sige_tensor *edited,
                                 sige_progress_fn progress, void *user_data, const gint *cancel,
                                 sige_tensor **output, sige_rect *changed, GError **error) {
  if (!check_ready(s, edited, error)) return FALSE;
  sige_sparse_params p;
  sige_model_sparse_params(s->model, &p);
  int r0, r1;
  g_autoptr(sige_mask) mask = edit_mask(s, edited, &p, &r0, &r1);
  return regenerate(s, edited, mask, r0, r1, progress, user_data, cancel, output, changed,
                    error);
}

gboolean sige_session_regenerate_masked(sige_session *s, const sige_tensor *edited,
                                        const void *mask, sige_progress_fn progress,
                                        void *user_data, const gint *cancel,
                                        sige_tensor **output, sige_rect *changed,
                                        GError **error) {
  if (!check_ready(s, edited, error)) return FALSE;
  const sige_mask *m = mask;
  int mh, mw;
  sige_model_mask_shape(s->model, &mh, &mw);
  if (!m || m->h != mh || m->w != mw) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "difference mask is %dx%d; expected the model's %dx%d", m ? m->h : 0,
                m ? m->w : 0, mh, mw);
    return FALSE;
  }
  int r0 = 0, r1 = 0;
  sige_diff_rows(s->input, edited, sige_ctx_threads(s->ctx), &r0, &r1);
  return regenerate(s, edited, m, r0, r1, progress, user_data, cancel, output, changed, error);
}

size_t sige_session_cache_bytes(const sige_session *s) {
  size_t n = 0;
  for (int i = 0; i < s->n_steps; i++) n += sige_cache_bytes(&s->caches[i]);
  for (int i = 0; s->traj && i <= s->n_steps; i++) n += sige_tensor_bytes(s->traj[i]);
  if (s->input) n += sige_tensor_bytes(s->input);
  if (s->output) n += sige_tensor_bytes(s->output);
  return n;
}

const sige_session_stats *sige_session_last_stats(const sige_session *s) { return &s->stats; }

const sige_layer_stats *sige_session_last_layer_stats(const sige_session *s, int *n) {
  g_return_val_if_fail(s && n, NULL);
  *n = (int)s->layer_stats->len;
  return (const sige_layer_stats *)(void *)s->layer_stats->data;
}

sige_device sige_session_device(const sige_session *s) { return sige_ctx_device(s->ctx); }
const char *sige_session_device_info(const sige_session *s) {
  return sige_ctx_device_info(s->ctx);
}
const sige_tensor *sige_session_output(const sige_session *s) { return s->output; }
