#include "sige-regen.h"
#include "sige-regen-private.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sige-i18n.h"
#include "sige-model-cache.h"
#include "sige/error.h"
#include "sige/sd_checkpoint.h"

typedef sige_regen_payload Payload;

void sige_regen_payload_free(gpointer p) {
  Payload *pl = p;
  g_free(pl->base_src);
  g_free(pl->base_out);
  g_free(pl->last_out);
  if (pl->session) sige_session_free(pl->session);
  if (pl->model) sige_model_ref_unref(pl->model);
  if (pl->sd) sige_regen_sd_state_free(pl->sd);
  g_free(pl->model_path);
  g_free(pl);
}

static sige_session_table *sessions;

sige_session_table *sige_regen_sessions(void) {
  if (!sessions) sessions = sige_session_table_new((size_t)4096 << 20);
  return sessions;
}

sige_session *sige_regen_entry_session(const sige_session_entry *e) {
  return ((const Payload *)e->payload)->session;
}

gboolean sige_regen_reset(int image_id, int layer_id) {
  if (!sessions) return FALSE;
  sige_session_entry *e = sige_session_table_find(sessions, image_id, layer_id);
  if (!e) return FALSE;
  sige_session_table_remove(sessions, e->id);
  return TRUE;
}

gchar *sige_regen_tag_format(const sige_session_entry *e) {
  return g_strdup_printf("%u %d %d %d", e->id, e->width, e->height, e->bpp);
}

guint32 sige_regen_tag_parse(const char *text, gsize len) {
  g_autofree gchar *s = g_strndup(text, len);
  guint id = 0;
  return sscanf(s, "%u", &id) == 1 ? id : 0;
}

gchar *sige_regen_output_name(const char *model_path) {
  g_autofree gchar *base = g_path_get_basename(model_path);
  gchar *dot = strrchr(base, '.');
  if (dot && dot != base) *dot = '\0';
  return g_strdup_printf(_("Sparse Regenerate (%s)"), base);
}

guint8 *sige_pixels_crop(const guint8 *full, int width, int bpp, sige_rect r) {
  guint8 *out = g_malloc((size_t)r.width * r.height * bpp);
  for (int y = 0; y < r.height; y++)
    memcpy(out + (size_t)y * r.width * bpp, full + ((size_t)(r.y + y) * width + r.x) * bpp,
           (size_t)r.width * bpp);
  return out;
}

/* ---- the pass on a worker thread ---------------------------------------- */

struct sige_pass {
  sige_session *session;
  const sige_tensor *input;
  gboolean full;
  sige_tensor *output;
  sige_rect changed;
  GError *error;
  gboolean ok;
  gint cancel;
  gint done;
  gint permille;
  const char *device_info;
  /* instead of the session's pass (sige_regen_run_job) */
  sige_regen_job_fn job;
  gpointer job_data;
};

gboolean sige_pass_done(const sige_pass *p) { return g_atomic_int_get(&p->done); }
double sige_pass_fraction(const sige_pass *p) { return g_atomic_int_get(&p->permille) / 1000.0; }
gboolean sige_pass_is_full(const sige_pass *p) { return p->full; }
void sige_pass_cancel(sige_pass *p) { g_atomic_int_set(&p->cancel, 1); }
const char *sige_pass_device_info(const sige_pass *p) { return p->device_info; }

static void pass_progress(double fraction, void *data) {
  g_atomic_int_set(&((sige_pass *)data)->permille, (gint)(fraction * 1000));
}

static gpointer pass_thread(gpointer data) {
  sige_pass *p = data;
  if (p->job) {
    p->ok = p->job(p->job_data, pass_progress, p, &p->cancel, &p->error);
  } else if (p->full) {
    p->ok = sige_session_snapshot_full(p->session, p->input, pass_progress, p, &p->cancel,
                                       &p->output, &p->error);
    if (p->ok) p->changed = (sige_rect){0, 0, SIGE_W(p->output), SIGE_H(p->output)};
  } else {
    p->ok = sige_session_regenerate(p->session, p->input, pass_progress, p, &p->cancel,
                                    &p->output, &p->changed, &p->error);
  }
  g_atomic_int_set(&p->done, 1);
  return NULL;
}

static void default_wait(sige_pass *p, const char *what, gpointer data) {
  (void)what, (void)data;
  while (!sige_pass_done(p)) g_usleep(2000);
}

static gboolean run_pass(sige_pass *p, const sige_regen_host *host, const char *what) {
  GThread *t = g_thread_new("sige-pass", pass_thread, p);
  if (host->wait)
    host->wait(p, what, host->data);
  else
    default_wait(p, what, host->data);
  g_thread_join(t);
  return p->ok;
}

gboolean sige_regen_run_job(const sige_regen_host *host, const char *what, gboolean full,
                            const char *device_info, sige_regen_job_fn fn, gpointer data,
                            GError **error) {
  sige_pass pass = {.full = full, .device_info = device_info, .job = fn, .job_data = data};
  if (run_pass(&pass, host, what)) return TRUE;
  g_propagate_error(error, pass.error);
  return FALSE;
}

/* ---- the run ------------------------------------------------------------ */

static void say(const sige_regen_host *host, const char *text) {
  if (host->message) host->message(text, host->data);
}

void sige_regen_result_free(sige_regen_result *r) {
  if (!r) return;
  g_free(r->model_path);
  g_free(r->pixels);
  g_free(r);
}

static void edit_params_from_settings(const sige_model *model, const SigeSettings *s,
                                      guint64 seed, sige_edit_params *params) {
  sige_edit_params_init(params);
  params->steps = s->steps;
  params->strength = s->strength;
  params->seed = seed;
  /* the dialogs' sampler is the DDPM one; a PD UNet keeps its own */
  const sige_sampler_kind choice =
      s->sampler == SIGE_SAMPLER_CHOICE_DDIM ? SIGE_SAMPLER_DDIM : SIGE_SAMPLER_DPM_SOLVER_PP;
  if (sige_edit_sampler_fits(sige_model_get_kind(model), choice)) params->sampler = choice;
  params->fp16_caches = s->precision == SIGE_PRECISION_F16;
  params->n_threads = s->threads;
  params->full_pass_above = s->threshold;
  params->memory_budget = (size_t)MAX(s->budget_mib, 1) << 20;
  params->device = (sige_device)s->device;
}

sige_session_entry *sige_regen_find_session(sige_session_table *t, const sige_regen_request *rq) {
  sige_session_entry *e = NULL;
  if (rq->tagged_session) e = sige_session_table_lookup(t, rq->tagged_session);
  if (!e) e = sige_session_table_find(t, rq->image_id, rq->layer_id);
  if (e && (e->image_id != rq->image_id || e->layer_id != rq->layer_id)) e = NULL;
  return e;
}

/* SDEdit: after a snapshot the output shown is the picture itself, but the
 * sampler's result of an edit differs from it everywhere by the noise trace
 * (2-6 levels on the church model, DPM-Solver++), far from the stroke too.
 * An artist expects what the edit does not reach to stay as it was, so the
 * result keeps the snapshot's pixels there.  The engine's output stays the
 * published one (sige check-reference, sige edit); this is the plug-in's
 * view of it. */
static void keep_untouched(Payload *pl, sige_regen_result *r, const sige_pixels *src) {
  const size_t size = (size_t)r->width * r->height * r->bpp;
  if (r->full) {
    g_free(pl->base_src), g_free(pl->base_out), g_free(pl->last_out);
    pl->base_src = g_memdup2(src->data, size);
    pl->base_out = g_memdup2(r->pixels, size);
    pl->last_out = g_memdup2(r->pixels, size);
    return;
  }
  if (!pl->base_src) return;
  sige_pixels_keep_untouched(src, pl->base_src, pl->base_out, r->pixels,
                             sige_edit_margin(r->width, r->height));
  /* what this run changes in what the plug-in shows */
  const sige_pixels before = {pl->last_out, r->width, r->height, r->bpp, 8};
  const sige_pixels now = {r->pixels, r->width, r->height, r->bpp, 8};
  r->changed = sige_pixels_diff_rect(&before, &now);
  memcpy(pl->last_out, r->pixels, size);
}

sige_regen_result *sige_regen_process(const sige_regen_request *rq, const sige_regen_host *host,
                                  GError **error) {
  const gint64 t_start = g_get_monotonic_time();
  const SigeSettings *s = rq->settings;
  const sige_pixels *src = rq->source;
  const sige_input_kind layer_kind = sige_pixels_guess_input_kind(src);
  g_autofree gchar *model_path = sige_resolve_model(s, layer_kind);
  if (!model_path) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                _("No model chosen and the shipped default model (%s) is missing. Reinstall "
                  "the plug-in with tools/install-plugin.sh or choose a model file in the "
                  "dialog."),
                sige_default_model_name(layer_kind));
    return NULL;
  }
  if (sige_regen_sd_wanted(model_path)) return sige_regen_sd_process(rq, host, model_path, error);
  sige_session_table *t = sige_regen_sessions();
  sige_session_table_set_budget(t, (size_t)MAX(s->budget_mib, 1) << 20);

  sige_session_entry *e = sige_regen_find_session(t, rq);
  if (e && (e->width != src->width || e->height != src->height || e->bpp != src->bpp)) {
    say(host, _("Sparse Regenerate: the layer's size or type changed since the snapshot; "
                "taking a new snapshot (full pass)."));
    sige_session_table_remove(t, e->id);
    e = NULL;
  }
  /* Seed -1 keeps the session's, also across a new snapshot of the layer. */
  guint64 seed = 0;
  if (s->seed >= 0)
    seed = (guint64)s->seed;
  else if (e)
    seed = ((Payload *)e->payload)->opts.seed;
  /* Another model makes the caches useless, but they go only once the new
   * model has loaded: a bad file must not cost the user the snapshot. */
  sige_session_entry *stale = NULL;
  if (e && strcmp(((Payload *)e->payload)->model_path, model_path) != 0) {
    stale = e;
    e = NULL;
  }

  /* The model: loaded lazily, shared by sessions. */
  sige_model_ref *mref = NULL;
  if (e) {
    mref = sige_model_ref_ref(((Payload *)e->payload)->model);
  } else {
    if (host->progress_init) host->progress_init(_("Loading the model..."), host->data);
    GError *err = NULL;
    mref = sige_model_cache_get(model_path, &err);
    if (!mref) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  _("Could not load the model \"%s\": %s. Choose a GauGAN (SPADE) or DDPM (UNet) "
                    "weights file in safetensors format, or leave the model empty for the "
                    "shipped default."),
                  model_path, err->message);
      g_error_free(err);
      return NULL;
    }
    if (stale) sige_session_table_remove(t, stale->id);
  }
  const sige_model *model = sige_model_ref_model(mref);

  /* What the model kind makes of the settings (the app layer's rules). */
  const sige_input_kind mode = sige_model_input_kind(model, error);
  sige_edit_params params;
  edit_params_from_settings(model, s, seed, &params);
  sige_session_options opts;
  if (mode == SIGE_INPUT_UNSUPPORTED ||
      !sige_edit_session_options(model, &params, &opts, error)) {
    sige_model_ref_unref(mref);
    return NULL;
  }
  g_autofree char *changed =
      e ? sige_plugin_options_change(&((Payload *)e->payload)->opts, &opts) : NULL;

  sige_input_report report = {0, 0, 0};
  const sige_pixels *instance = mode == SIGE_INPUT_LABELS ? rq->instance : NULL;
  g_autoptr(sige_tensor) input = sige_model_input_from_pixels(model, src, instance, &report, error);
  if (!input) {
    sige_model_ref_unref(mref);
    return NULL;
  }
  if (report.n_nearest > 0) {
    g_autofree gchar *count = g_strdup_printf("%" G_GINT64_FORMAT, report.n_nearest);
    g_autofree gchar *msg = g_strdup_printf(
        _("Sparse Regenerate: %s pixels (%.2f %%) of the label layer are not Cityscapes "
          "colours and were mapped to the nearest class. Paint with the Cityscapes palette "
          "(Windows > Dockable Dialogs > Palettes) and antialiasing off."),
        count, 100.0 * report.n_nearest / MAX(report.n_pixels, 1));
    say(host, msg);
  }

  /* Only now: a layer the model cannot read must not cost the snapshot. */
  if (changed) {
    g_autofree gchar *msg = g_strdup_printf(
        _("Sparse Regenerate: %s changed since the snapshot, and the snapshot's caches depend "
          "on them; taking a new snapshot (full pass)."),
        changed);
    say(host, msg);
    sige_session_table_remove(t, e->id);
    e = NULL;
  }

  const gboolean full = e == NULL;
  if (full) {
    sige_session *ses = sige_session_new(model, &opts, error);
    if (!ses) {
      sige_edit_explain_nomem(error, SIGE_EDIT_PHASE_CACHES, &params, SIGE_EDIT_UI_PLUGIN);
      sige_model_ref_unref(mref);
      return NULL;
    }
    Payload *pl = g_new0(Payload, 1);
    pl->session = ses;
    pl->model = mref;
    pl->model_path = g_strdup(model_path);
    pl->opts = opts;
    e = sige_session_table_insert(t, rq->image_id, rq->layer_id, src->width, src->height,
                                  src->bpp, pl, 0, sige_regen_payload_free);
  } else {
    sige_model_ref_unref(mref);
  }
  const guint32 id = e->id;
  Payload *pl = e->payload;

  sige_pass pass = {.session = pl->session,
                   .input = input,
                   .full = full,
                   .device_info = sige_session_device_info(pl->session)};
  const gchar *what = NULL;
  if (mode == SIGE_INPUT_IMAGE)
    what = full ? _("Sparse Regenerate: snapshot, a full pass per denoising step...")
                : _("Sparse Regenerate: sparse denoising...");
  else
    what = full ? _("Sparse Regenerate: full pass (snapshot)...")
                : _("Sparse Regenerate: sparse pass...");
  /* Where it runs, in the user's words; the driver's reason for a CPU
   * fallback is the host's tooltip (sige_pass_device_info) and the log. */
  const gboolean on_gpu = g_str_has_prefix(pass.device_info, "cuda");
  g_autofree gchar *what_where = g_strdup_printf(
      "%s (%s)", what, on_gpu ? _("running on the GPU") : _("running on the CPU"));
  if (strstr(pass.device_info, "auto:"))
    g_printerr("sparse-regenerate: device: %s\n", pass.device_info);
  if (!run_pass(&pass, host, what_where)) {
    /* A failed snapshot leaves nothing worth keeping; a failed sparse pass
     * leaves the session as it was. */
    if (full) sige_session_table_remove(t, id);
    sige_edit_explain_nomem(&pass.error, full ? SIGE_EDIT_PHASE_SNAPSHOT : SIGE_EDIT_PHASE_SPARSE,
                            &params, SIGE_EDIT_UI_PLUGIN);
    g_propagate_error(error, pass.error);
    return NULL;
  }
  g_autoptr(sige_tensor) output = pass.output;

  /* The whole image in 8 bits: the front-end writes only what differs from
   * what its output layer shows now. */
  sige_regen_result *r = g_new0(sige_regen_result, 1);
  r->entry = e;
  r->full = full;
  r->model_path = g_steal_pointer(&model_path);
  r->width = SIGE_W(output);
  r->height = SIGE_H(output);
  r->bpp = src->bpp;
  r->changed = pass.changed;
  r->t_start = t_start;
  r->mode = mode;
  r->pixels = g_malloc((size_t)r->width * r->height * r->bpp);
  if (!sige_pixels_from_output(output, (sige_rect){0, 0, r->width, r->height}, r->bpp, r->pixels,
                               error)) {
    sige_session_table_remove(t, id);
    sige_regen_result_free(r);
    return NULL;
  }
  if (mode == SIGE_INPUT_IMAGE) keep_untouched(pl, r, src);
  return r;
}

void sige_regen_finish(sige_regen_result *r, sige_rect written) {
  if (r->sd) {
    sige_regen_sd_finish(r, written);
    return;
  }
  sige_session_table *t = sige_regen_sessions();
  sige_session_entry *e = r->entry;
  Payload *pl = e->payload;
  const guint32 id = e->id;
  const sige_session_stats *st = sige_session_last_stats(pl->session);
  const size_t cache = sige_session_cache_bytes(pl->session) +
                       (pl->base_src ? 3 * (size_t)r->width * r->height * r->bpp : 0);
  sige_session_table_set_bytes(t, e, cache);
  /* the model's weights count against the budget too, once for all the
   * sessions that share it */
  sige_session_table_set_shared(t, e, pl->model,
                                sige_model_weight_bytes(sige_model_ref_model(pl->model)));
  guint evicted = sige_session_table_evict(t, id);
  const double total_ms = (g_get_monotonic_time() - r->t_start) / 1000.0;
  /* One line per run on stderr: what the tests and benchmarks read. */
  g_printerr("sparse-regenerate: %s pass %.1f ms (engine %.1f ms), edit %.2f %%, changed "
             "%d,%d %dx%d, written %d,%d %dx%d, cache %.1f MiB, %u sessions%s, on %s [%s]\n",
             r->full ? "full" : st->was_sparse ? "sparse" : st->macs ? "full-fallback" : "none",
             total_ms, st->seconds * 1e3, 100.0 * st->edit_ratio, r->changed.x, r->changed.y,
             r->changed.width, r->changed.height, written.x, written.y, written.width,
             written.height, cache / 1048576.0, sige_session_table_size(t),
             evicted ? " (evicted some)" : "", sige_session_device_info(pl->session),
             r->mode == SIGE_INPUT_IMAGE ? "image" : "labels");
  sige_regen_result_free(r);
}

gboolean sige_regen_model_is_sd(const char *resolved) {
  return resolved && sige_regen_sd_wanted(resolved);
}

gboolean sige_regen_describe_model(const char *resolved, gchar **text, sige_input_kind *mode) {
  if (!resolved) {
    *text = g_strdup(_("No model chosen (the default model is missing)"));
    return FALSE;
  }
  if (sige_regen_sd_wanted(resolved)) {
    /* the parts are sized to the layer when a run loads them */
    const char *path = g_str_has_prefix(resolved, "sd:") ? resolved + 3 : resolved;
    GError *err = NULL;
    sige_sd_checkpoint *ck = sige_sd_checkpoint_open(path, &err);
    if (!ck) {
      *text = g_strdup_printf(_("Not a model this build reads: %s"), err->message);
      g_error_free(err);
      return FALSE;
    }
    *text = g_strdup_printf(_("Stable Diffusion 1.x checkpoint (%s); the layer is a picture "
                              "with sides multiples of 8"),
                            sige_sd_checkpoint_format(ck));
    sige_sd_checkpoint_free(ck);
    *mode = SIGE_INPUT_IMAGE;
    return TRUE;
  }
  GError *err = NULL;
  sige_model_ref *r = sige_model_cache_get(resolved, &err);
  if (!r) {
    *text = g_strdup_printf(_("Not a model this build reads: %s"), err->message);
    g_error_free(err);
    return FALSE;
  }
  *mode = sige_model_input_kind(sige_model_ref_model(r), NULL);
  g_autofree gchar *desc = sige_model_describe(sige_model_ref_model(r));
  *text = g_strdup_printf(_("%s; %.1f MiB of weights"), desc, sige_model_ref_bytes(r) / 1048576.0);
  sige_model_ref_unref(r);
  return TRUE;
}

/* ---- around a run in GIMP ----------------------------------------------- */

int sige_regen_output_source_parse(const char *text, gsize len) {
  g_autofree gchar *s = g_strndup(text, len);
  gchar *end = NULL;
  const gint64 id = g_ascii_strtoll(s, &end, 10);
  if (end == s || (*end && *end != '\n') || id <= 0 || id > G_MAXINT) return 0;
  return (int)id;
}

/* Labels are flat, saturated colours: at half opacity their boundaries stay
 * plain over the photo while the photo stays readable. */
#define LABEL_OUTPUT_OPACITY 50.0

double sige_regen_output_opacity(const sige_regen_result *r) {
  return r->mode == SIGE_INPUT_LABELS ? LABEL_OUTPUT_OPACITY : 100.0;
}

gchar *sige_regen_run_note(const sige_regen_result *r, const char *layer_name) {
  if (!r->full || r->mode != SIGE_INPUT_IMAGE) return NULL;
  if (r->sd)
    return g_strdup_printf(
        _("Sparse Regenerate: Stable Diffusion snapshot taken; the output is the picture "
          "redrawn from the prompt.\nNext: paint on the picture (the layer \"%s\") and run "
          "Sparse Regenerate again (Filters > Repeat, Ctrl+F); only what you painted and its "
          "surroundings are regenerated. With a selection, the selection is inpainted."),
        layer_name ? layer_name : "");
  /* Two lines on purpose: GIMP shows a one-line message in the status bar,
   * where the next progress text overwrites it at once. */
  return g_strdup_printf(
      _("Sparse Regenerate: snapshot taken. The output shows the picture as the model "
        "redraws it, so it looks like the input.\nNext: paint on the picture (the layer "
        "\"%s\") and run Sparse Regenerate again (Filters > Repeat, Ctrl+F); only what "
        "you painted is regenerated."),
      layer_name ? layer_name : "");
}

void sige_regen_generation_values(const char *model_path, const SigeSettings *s, int image_id,
                                  int layer_id, sige_generation_values *v) {
  /* the DDPM defaults of the app layer, for a model that is not (yet) one */
  sige_sampler_config c;
  sige_sampler_config_init(&c, s->sampler == SIGE_SAMPLER_CHOICE_DDIM ? SIGE_SAMPLER_DDIM
                                                                       : SIGE_SAMPLER_DPM_SOLVER_PP);
  v->steps = s->steps > 0 ? s->steps : c.sample_steps;
  v->strength = s->strength > 0 ? s->strength : (double)c.noise_level / c.total_steps;
  v->seed = s->seed >= 0 ? s->seed : 0;
  sige_session_entry *e =
      sessions ? sige_session_table_find(sessions, image_id, layer_id) : NULL;
  if (s->seed < 0 && e) v->seed = (int)MIN(((Payload *)e->payload)->opts.seed, G_MAXINT);

  if (model_path && sige_regen_sd_wanted(model_path)) {
    /* the SD pipeline's defaults (sige_sd_params_init) */
    v->steps = s->steps > 0 ? s->steps : 50;
    v->strength = s->strength > 0 ? s->strength : 0.75;
    if (s->seed < 0 && e) v->seed = (int)MIN(((Payload *)e->payload)->opts.seed, G_MAXINT);
    return;
  }
  sige_model_ref *ref = model_path ? sige_model_cache_get(model_path, NULL) : NULL;
  if (!ref) return;
  const sige_model *model = sige_model_ref_model(ref);
  sige_edit_params params;
  edit_params_from_settings(model, s, (guint64)v->seed, &params);
  sige_session_options o;
  if (sige_model_input_kind(model, NULL) == SIGE_INPUT_IMAGE &&
      sige_edit_session_options(model, &params, &o, NULL)) {
    v->steps = o.sampler.sample_steps;
    if (s->strength <= 0) v->strength = (double)o.sampler.noise_level / o.sampler.total_steps;
  }
  sige_model_ref_unref(ref);
}

void sige_regen_generation_store(const sige_generation_values *shown,
                                 const sige_generation_values *chosen, SigeSettings *s) {
  if (chosen->steps != shown->steps) s->steps = chosen->steps;
  /* the spin buttons show 2 decimals */
  if (fabs(chosen->strength - shown->strength) > 0.005) s->strength = chosen->strength;
  if (chosen->seed != shown->seed) s->seed = chosen->seed;
}
