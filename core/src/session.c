#include "sige/session.h"

#include <string.h>

#include "models/model_internal.h"
#include "sige/error.h"

struct sige_session {
  const sige_model *model;
  sige_session_options opts;
  sige_ctx *ctx;
  sige_cache cache;
  sige_tensor *input;  /* current input (snapshot or last edit) */
  sige_tensor *output; /* current output */
  sige_session_stats stats;
};

void sige_session_options_init(sige_session_options *o) {
  memset(o, 0, sizeof *o);
  o->timestep = 0.0f;
  o->full_pass_above = 0.6;
}

sige_session *sige_session_new(const sige_model *model, const sige_session_options *options,
                               GError **error) {
  if (!model) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "sige_session_new: no model");
    return NULL;
  }
  sige_session *s = g_new0(sige_session, 1);
  s->model = model;
  if (options)
    s->opts = *options;
  else
    sige_session_options_init(&s->opts);
  s->ctx = sige_ctx_new(s->opts.n_threads);
  sige_cache_init(&s->cache);
  return s;
}

void sige_session_free(sige_session *s) {
  if (!s) return;
  sige_cache_free_contents(&s->cache);
  sige_tensor_free(s->input);
  sige_tensor_free(s->output);
  sige_ctx_free(s->ctx);
  g_free(s);
}

static gboolean check_input(const sige_session *s, const sige_tensor *input, GError **error) {
  int64_t want[4];
  sige_model_input_shape(s->model, want);
  if (input->ndim == 4 && input->shape[0] == want[0] && input->shape[1] == want[1] &&
      input->shape[2] == want[2] && input->shape[3] == want[3])
    return TRUE;
  char buf[64];
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
              "%s input is %s; expected [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
              ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
              sige_model_kind_name(sige_model_get_kind(s->model)),
              sige_tensor_shape_str(input, buf, sizeof buf), want[0], want[1], want[2], want[3]);
  return FALSE;
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

static gboolean full_pass(sige_session *s, const sige_tensor *input, sige_progress_fn progress,
                          void *user_data, const gint *cancel, sige_tensor **result,
                          GError **error) {
  sige_run run;
  sige_cache fresh;
  sige_cache_init(&fresh);
  sige_run_init_full(&run, s->ctx, &fresh);
  run.cancel = cancel;
  run.progress = progress;
  run.progress_data = user_data;
  run.fp16 = s->opts.fp16_caches;
  sige_ctx_reset_macs(s->ctx);
  gint64 t0 = g_get_monotonic_time();
  gboolean ok = sige_model_run(s->model, &run, input, s->opts.timestep, result, error);
  sige_run_clear(&run);
  if (!ok) {
    sige_cache_free_contents(&fresh);
    return FALSE;
  }
  /* commit only on success, so that a failed pass keeps the old caches */
  sige_cache_free_contents(&s->cache);
  s->cache = fresh;
  s->stats.macs = s->stats.dense_macs = sige_ctx_macs(s->ctx);
  s->stats.seconds = (g_get_monotonic_time() - t0) / 1e6;
  s->stats.was_sparse = FALSE;
  return TRUE;
}

static gboolean commit(sige_session *s, const sige_tensor *input, sige_tensor *result,
                       sige_tensor **output, GError **error) {
  sige_tensor *in_copy = sige_tensor_dup(input, error);
  sige_tensor *out_copy = output ? sige_tensor_dup(result, error) : NULL;
  if (!in_copy || (output && !out_copy)) {
    sige_tensor_free(in_copy);
    sige_tensor_free(out_copy);
    sige_tensor_free(result);
    return FALSE;
  }
  sige_tensor_free(s->input);
  sige_tensor_free(s->output);
  s->input = in_copy;
  s->output = result;
  if (output) *output = out_copy;
  return TRUE;
}

gboolean sige_session_snapshot(sige_session *s, const sige_tensor *input, sige_tensor **output,
                               GError **error) {
  if (!check_input(s, input, error)) return FALSE;
  sige_tensor *result = NULL;
  if (!full_pass(s, input, NULL, NULL, NULL, &result, error)) return FALSE;
  s->stats.edit_ratio = 1.0;
  return commit(s, input, result, output, error);
}

gboolean sige_session_has_snapshot(const sige_session *s) { return s->output != NULL; }

static sige_mask *edit_mask(const sige_session *s, const sige_tensor *edited,
                            const sige_sparse_params *p) {
  g_autoptr(sige_mask) diff = sige_mask_from_diff(s->input, edited, p->diff_eps);
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
  g_autoptr(sige_mask) m = edit_mask(s, edited, &p);
  *ratio = (double)sige_mask_count(m) / ((double)m->h * m->w);
  return TRUE;
}

static gboolean regenerate(sige_session *s, const sige_tensor *edited, const sige_mask *mask,
                           sige_progress_fn progress, void *user_data, const gint *cancel,
                           sige_tensor **output, sige_rect *changed, GError **error) {
  sige_sparse_params p;
  sige_model_sparse_params(s->model, &p);
  const int64_t count = sige_mask_count(mask);
  const double ratio = (double)count / ((double)mask->h * mask->w);
  if (count == 0) {
    s->stats.edit_ratio = 0;
    /* nothing changed: the published pyramid would turn this into a full
     * mask; we answer from the cache */
    s->stats.macs = 0;
    s->stats.seconds = 0;
    s->stats.was_sparse = FALSE;
    if (changed) *changed = (sige_rect){0, 0, 0, 0};
    if (output && !(*output = sige_tensor_dup(s->output, error))) return FALSE;
    if (progress) progress(1.0, user_data);
    return TRUE;
  }
  sige_tensor *result = NULL;
  if (ratio > s->opts.full_pass_above) {
    /* cancellable too: the old caches stay until the new pass succeeds */
    if (!full_pass(s, edited, progress, user_data, cancel, &result, error)) return FALSE;
  } else {
    g_autoptr(sige_mask_pyramid) pyr = sige_mask_pyramid_new(
        mask, p.min_h, p.min_w, p.pyramid_dilation, p.pyramid_threshold);
    g_autoptr(sige_undo_log) undo = sige_undo_log_new();
    sige_run run;
    sige_run_init_sparse(&run, s->ctx, &s->cache, pyr, undo);
    run.fp16 = s->opts.fp16_caches;
    run.cancel = cancel;
    run.progress = progress;
    run.progress_data = user_data;
    sige_ctx_reset_macs(s->ctx);
    gint64 t0 = g_get_monotonic_time();
    gboolean ok = sige_model_run(s->model, &run, edited, s->opts.timestep, &result, error);
    sige_run_clear(&run);
    if (!ok) {
      sige_undo_log_rollback(undo);
      return FALSE;
    }
    s->stats.macs = sige_ctx_macs(s->ctx);
    s->stats.seconds = (g_get_monotonic_time() - t0) / 1e6;
    s->stats.was_sparse = TRUE;
  }
  s->stats.edit_ratio = ratio;
  if (changed) *changed = diff_rect(s->output, result);
  if (progress) progress(1.0, user_data);
  return commit(s, edited, result, output, error);
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
  g_autoptr(sige_mask) mask = edit_mask(s, edited, &p);
  return regenerate(s, edited, mask, progress, user_data, cancel, output, changed, error);
}

gboolean sige_session_regenerate_masked(sige_session *s, const sige_tensor *edited,
                                        const void *mask, sige_progress_fn progress,
                                        void *user_data, const gint *cancel,
                                        sige_tensor **output, sige_rect *changed,
                                        GError **error) {
  if (!check_ready(s, edited, error)) return FALSE;
  const sige_mask *m = mask;
  if (!m || m->h != SIGE_H(edited) || m->w != SIGE_W(edited)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "difference mask is %dx%d; expected the input's %dx%d", m ? m->h : 0,
                m ? m->w : 0, SIGE_H(edited), SIGE_W(edited));
    return FALSE;
  }
  return regenerate(s, edited, m, progress, user_data, cancel, output, changed, error);
}

size_t sige_session_cache_bytes(const sige_session *s) {
  size_t n = sige_cache_bytes(&s->cache);
  if (s->input) n += sige_tensor_bytes(s->input);
  if (s->output) n += sige_tensor_bytes(s->output);
  return n;
}

const sige_session_stats *sige_session_last_stats(const sige_session *s) { return &s->stats; }
const sige_tensor *sige_session_output(const sige_session *s) { return s->output; }
