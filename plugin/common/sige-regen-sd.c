/* Sparse Regenerate with a Stable Diffusion 1.x checkpoint: the run
 * without GIMP for both front-ends, beside the sessions of sige-regen.c.
 *
 * img2img: the first run on a layer snapshots (the SD img2img of the layer
 * with full passes, every step and guidance branch recorded); later runs
 * regenerate only what the edit since the last run reaches.  Inpainting
 * (the request carries the image's selection as a mask): the snapshot
 * records the picture's own passes, each run inpaints the selection
 * sparsely; the output is the layer itself wherever the sparse passes did
 * not reach, the model's picture inside. */
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "sige-app/sd_app.h"
#include "sige-i18n.h"
#include "sige-plugin-files.h"
#include "sige-regen-private.h"
#include "sige/error.h"
#include "sige/sd_checkpoint.h"
#include "sige/sd_pipeline.h"

#define SD_VOCAB "bpe_simple_vocab_16e6.txt.gz"

/* ---- the models, shared by the sessions of one checkpoint and size ------ */

typedef struct {
  int refs;
  gchar *path;
  int width, height;
  sige_sd_app_models m;
} SdModels;

static GPtrArray *loaded_models; /* SdModels, each alive while a state holds it */

static void sd_models_unref(SdModels *sm) {
  if (!sm || --sm->refs > 0) return;
  g_ptr_array_remove(loaded_models, sm);
  sige_sd_app_models_clear(&sm->m);
  g_free(sm->path);
  g_free(sm);
}

/* The weights the parts hold (the text encoder's too): what the session
 * budget counts once for all the sessions of these models. */
static size_t sd_models_bytes(const SdModels *sm) {
  const sige_model *parts[] = {sm->m.unet, sm->m.encoder, sm->m.decoder, sm->m.text};
  size_t n = 0;
  for (guint i = 0; i < G_N_ELEMENTS(parts); i++)
    if (parts[i]) n += sige_model_weight_bytes(parts[i]);
  return n;
}

static SdModels *sd_models_get(const char *path, int width, int height, GError **error) {
  if (!loaded_models) loaded_models = g_ptr_array_new();
  for (guint i = 0; i < loaded_models->len; i++) {
    SdModels *sm = loaded_models->pdata[i];
    if (sm->width == width && sm->height == height && strcmp(sm->path, path) == 0) {
      sm->refs++;
      return sm;
    }
  }
  /* single files have no tokenizer of their own: openai's vocabulary, which
   * the plug-in ships beside its binary (data/clip in a build tree) */
  g_autofree gchar *vocab = sige_find_data_file(SD_VOCAB);
  SdModels *sm = g_new0(SdModels, 1);
  if (!sige_sd_app_load(path, width, height, vocab ? vocab : SD_VOCAB, &sm->m, error)) {
    g_free(sm);
    return NULL;
  }
  sm->refs = 1;
  sm->path = g_strdup(path);
  sm->width = width;
  sm->height = height;
  g_ptr_array_add(loaded_models, sm);
  return sm;
}

/* ---- a layer's SD session ----------------------------------------------- */

struct sige_regen_sd_state {
  SdModels *models;
  sige_sd_pipeline *pipe;
  sige_sd_params prm;
  gchar *prompt, *negative;
  int width, height;
  guint8 *src;      /* RGB the caches hold: img2img the last picture, inpainting the snapshot's */
  guint8 *last_out; /* the output last given */
  /* the last run, for the stderr line */
  const char *pass_kind;
  double engine_ms, edit_ratio;
  guint64 macs;
};

void sige_regen_sd_state_free(sige_regen_sd_state *st) {
  if (!st) return;
  sige_sd_pipeline_free(st->pipe);
  sd_models_unref(st->models);
  g_free(st->prompt);
  g_free(st->negative);
  g_free(st->src);
  g_free(st->last_out);
  g_free(st);
}

/* ---- recognising a checkpoint ------------------------------------------- */

gboolean sige_regen_sd_wanted(const char *model_path) {
  if (g_str_has_prefix(model_path, "sd:")) return TRUE;
  GStatBuf sb;
  if (g_stat(model_path, &sb) != 0) return FALSE;
  /* Opening indexes the file (no tensor is read); the answer is kept per
   * file version, as a run asks once per run. */
  static GHashTable *known;
  if (!known) known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_autofree gchar *key = g_strdup_printf("%s\n%" G_GINT64_FORMAT "\n%" G_GINT64_FORMAT,
                                          model_path, (gint64)sb.st_mtime, (gint64)sb.st_size);
  gpointer v = NULL;
  if (g_hash_table_lookup_extended(known, key, NULL, &v)) return GPOINTER_TO_INT(v);
  sige_sd_checkpoint *ck = sige_sd_checkpoint_open(model_path, NULL);
  const gboolean sd = ck && sige_sd_checkpoint_has_part(ck, SIGE_SD_PART_UNET);
  if (ck) sige_sd_checkpoint_free(ck);
  g_hash_table_insert(known, g_steal_pointer(&key), GINT_TO_POINTER(sd));
  return sd;
}

static const char *checkpoint_path(const char *model_path) {
  return g_str_has_prefix(model_path, "sd:") ? model_path + 3 : model_path;
}

/* ---- the pass ------------------------------------------------------------ */

typedef struct {
  sige_regen_sd_state *st;
  gboolean snapshot;      /* full passes first */
  const sige_tensor *picture;
  const sige_mask *mask;  /* inpainting */
  sige_tensor *snap_out, *out;
  /* the host's progress, scaled over the two parts of a run */
  sige_progress_fn progress;
  void *progress_data;
  double from, span;
} SdJob;

static void job_progress(double f, void *data) {
  SdJob *j = data;
  if (j->progress) j->progress(j->from + j->span * f, j->progress_data);
}

static gboolean sd_job(gpointer data, sige_progress_fn progress, void *progress_data,
                       const gint *cancel, GError **error) {
  SdJob *j = data;
  sige_sd_pipeline *p = j->st->pipe;
  const gboolean inpaint = j->st->prm.task == SIGE_SD_INPAINT;
  j->progress = progress;
  j->progress_data = progress_data;
  j->from = 0;
  /* an inpainting snapshot records every step, its inpainting is sparse */
  j->span = j->snapshot && inpaint ? 0.8 : 1.0;
  if (j->snapshot &&
      !sige_sd_pipeline_snapshot(p, j->picture, job_progress, j, cancel, &j->snap_out, error))
    return FALSE;
  if (j->snapshot && !inpaint) return TRUE;
  j->from = j->snapshot ? 0.8 : 0.0;
  j->span = 1.0 - j->from;
  return sige_sd_pipeline_regenerate(p, inpaint ? NULL : j->picture, inpaint ? j->mask : NULL,
                                     job_progress, j, cancel, NULL, &j->out, error);
}

/* ---- the run ------------------------------------------------------------- */

static void say(const sige_regen_host *host, const char *text) {
  if (host->message) host->message(text, host->data);
}

static guint8 *to_rgb8(const sige_tensor *t, GError **error) {
  const int w = SIGE_W(t), h = SIGE_H(t);
  guint8 *px = g_malloc((size_t)w * h * 3);
  if (!sige_pixels_from_output(t, (sige_rect){0, 0, w, h}, 3, px, error)) {
    g_free(px);
    return NULL;
  }
  return px;
}

/* The settings the caches depend on, as the pipeline takes them. */
static gboolean wanted_params(const SigeSettings *s, sige_sd_task task, guint64 seed,
                              sige_sd_params *prm, GError **error) {
  sige_sd_params_init(prm);
  prm->task = task;
  prm->guidance = s->guidance;
  if (s->steps > 0) prm->steps = s->steps;
  if (s->strength > 0) prm->strength = s->strength;
  prm->seed = seed;
  prm->sampler = s->sd_sampler == SIGE_SAMPLER_CHOICE_DDIM ? SIGE_SAMPLER_DDIM
                                                            : SIGE_SAMPLER_DPM_SOLVER_PP;
  prm->n_threads = s->threads;
  prm->device = (sige_device)s->device;
  prm->fp16_caches = s->precision == SIGE_PRECISION_F16;
  prm->memory_budget = (size_t)MAX(s->budget_mib, 1) << 20;
  if (task == SIGE_SD_IMG2IMG && (int)(prm->strength * prm->steps) < 1) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("Strength %.2f of %d steps runs no denoising step; raise Strength or Steps "
                  "(Strength x Steps must be at least 1)."),
                prm->strength, prm->steps);
    return FALSE;
  }
  return TRUE;
}

/* What differs between the session's settings and the wanted ones, in the
 * user's words ("prompt, steps"), or NULL. */
static gchar *settings_change(const sige_regen_sd_state *st, const sige_sd_params *prm,
                              const char *prompt, const char *negative) {
  GPtrArray *names = g_ptr_array_new();
  if (strcmp(st->prompt, prompt) != 0) g_ptr_array_add(names, (gpointer)_("the prompt"));
  if (strcmp(st->negative, negative) != 0)
    g_ptr_array_add(names, (gpointer)_("the negative prompt"));
  if (st->prm.guidance != prm->guidance) g_ptr_array_add(names, (gpointer)_("guidance"));
  if (st->prm.steps != prm->steps) g_ptr_array_add(names, (gpointer)_("steps"));
  if (prm->task == SIGE_SD_IMG2IMG && st->prm.strength != prm->strength)
    g_ptr_array_add(names, (gpointer)_("strength"));
  if (st->prm.seed != prm->seed) g_ptr_array_add(names, (gpointer)_("seed"));
  if (st->prm.sampler != prm->sampler) g_ptr_array_add(names, (gpointer)_("sampler"));
  if (st->prm.fp16_caches != prm->fp16_caches)
    g_ptr_array_add(names, (gpointer)_("cache precision"));
  if (st->prm.device != prm->device) g_ptr_array_add(names, (gpointer)_("device"));
  gchar *text = NULL;
  if (names->len) {
    g_ptr_array_add(names, NULL);
    text = g_strjoinv(", ", (gchar **)names->pdata);
  }
  g_ptr_array_free(names, TRUE);
  return text;
}

/* A new session: the models (shared), the prompts' contexts and the
 * pipeline.  Nothing of the layer's old session is touched. */
static sige_regen_sd_state *state_new(const char *ck, const sige_regen_request *rq,
                                      const sige_sd_params *prm, const char *prompt,
                                      const char *negative, const sige_regen_host *host,
                                      GError **error) {
  const int w = rq->source->width, h = rq->source->height;
  sige_regen_sd_state *st = g_new0(sige_regen_sd_state, 1);
  st->prm = *prm;
  st->prompt = g_strdup(prompt);
  st->negative = g_strdup(negative);
  st->width = w;
  st->height = h;
  if (host->progress_init) host->progress_init(_("Loading the model..."), host->data);
  GError *err = NULL;
  if (!(st->models = sd_models_get(ck, w, h, &err))) {
    g_set_error(error, SIGE_ERROR, err->code,
                _("Could not use the Stable Diffusion checkpoint \"%s\" for the layer \"%s\" "
                  "(%d x %d): %s"),
                ck, rq->layer_name ? rq->layer_name : "", w, h, err->message);
    g_error_free(err);
    sige_regen_sd_state_free(st);
    return NULL;
  }
  const sige_sd_app_models *m = &st->models->m;
  /* The published runner stops the inpainting mask pyramid at 8, SD 1.x's
   * smallest UNet level at 512 x 512; a smaller picture has a smaller last
   * level, which the pyramid must reach (as sige inpaint). */
  const sige_sd_unet_config *uc = sige_model_sd_unet_config(m->unet);
  const int last_h = uc->latent_h >> (uc->n_channel_mult - 1);
  const int last_w = uc->latent_w >> (uc->n_channel_mult - 1);
  st->prm.inpaint_min_res = MAX(1, MIN(st->prm.inpaint_min_res, MIN(last_h, last_w)));
  const sige_sd_models models = {m->unet, m->encoder, m->decoder};
  g_autoptr(sige_tensor) cond = NULL, uncond = NULL;
  if (!(st->pipe = sige_sd_pipeline_new(&models, &st->prm, error))) {
    sige_regen_sd_state_free(st);
    return NULL;
  }
  if (!(cond = sige_sd_app_context(m, prompt, prm->n_threads, error)) ||
      !(uncond = sige_sd_app_context(m, negative, prm->n_threads, error)) ||
      !sige_sd_pipeline_set_contexts(st->pipe, cond, uncond, error)) {
    sige_regen_sd_state_free(st);
    return NULL;
  }
  return st;
}

sige_regen_result *sige_regen_sd_process(const sige_regen_request *rq,
                                         const sige_regen_host *host, const char *model_path,
                                         GError **error) {
  const gint64 t_start = g_get_monotonic_time();
  const SigeSettings *s = rq->settings;
  const sige_pixels *src = rq->source;
  const char *name = rq->layer_name ? rq->layer_name : "";
  const int w = src->width, h = src->height;
  if (src->bpp != 3 || src->bits == 16) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("Stable Diffusion regenerates an RGB picture; the layer \"%s\" is not one "
                  "(grayscale or indexed). Convert the image with Image > Mode > RGB and run it "
                  "again."),
                name);
    return NULL;
  }
  if (w % 8 || h % 8 || w < 8 || h < 8) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                _("The layer \"%s\" is %d x %d pixels; Stable Diffusion needs both sides "
                  "multiples of 8 (for example %d x %d). Resize or crop the layer and run it "
                  "again."),
                name, w, h, MAX(8, w / 8 * 8), MAX(8, h / 8 * 8));
    return NULL;
  }
  const char *ck = checkpoint_path(model_path);
  if (!*ck) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("The model \"%s\" names no Stable Diffusion checkpoint: write sd: followed by "
                  "the file or the diffusers folder."),
                model_path);
    return NULL;
  }
  /* the selection, at the layer's size: any pixel selected means inpainting */
  g_autoptr(sige_mask) mask = NULL;
  if (rq->mask) {
    if (rq->mask->width != w || rq->mask->height != h || rq->mask->bpp != 1) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                  "selection mask %d x %d (%d bytes per pixel); expected the layer's %d x %d, 1",
                  rq->mask->width, rq->mask->height, rq->mask->bpp, w, h);
      return NULL;
    }
    mask = sige_mask_new(h, w);
    for (size_t i = 0; i < (size_t)w * h; i++) mask->data[i] = rq->mask->data[i] > 127;
    if (sige_mask_count(mask) == 0) g_clear_pointer(&mask, sige_mask_free);
  }
  const sige_sd_task task = mask ? SIGE_SD_INPAINT : SIGE_SD_IMG2IMG;
  const char *prompt = s->prompt, *negative = s->negative_prompt;

  sige_session_table *t = sige_regen_sessions();
  sige_session_table_set_budget(t, (size_t)MAX(s->budget_mib, 1) << 20);
  sige_session_entry *e = sige_regen_find_session(t, rq);
  if (e && (e->width != w || e->height != h || e->bpp != src->bpp)) {
    say(host, _("Sparse Regenerate: the layer's size or type changed since the snapshot; "
                "taking a new snapshot (full pass)."));
    sige_session_table_remove(t, e->id);
    e = NULL;
  }
  sige_regen_payload *old_pl = e ? e->payload : NULL;
  /* Seed -1 keeps the session's, also across a new snapshot of the layer. */
  guint64 seed = 0;
  if (s->seed >= 0)
    seed = (guint64)s->seed;
  else if (old_pl)
    seed = old_pl->sd ? old_pl->sd->prm.seed : old_pl->opts.seed;
  sige_sd_params prm;
  if (!wanted_params(s, task, seed, &prm, error)) return NULL;

  sige_regen_sd_state *old =
      old_pl && old_pl->sd && strcmp(old_pl->model_path, model_path) == 0 ? old_pl->sd : NULL;
  gboolean reuse = old != NULL;
  if (old) {
    g_autofree gchar *changed = settings_change(old, &prm, prompt, negative);
    if (old->prm.task != task) {
      say(host, task == SIGE_SD_INPAINT
                    ? _("Sparse Regenerate: the image has a selection, so the selection is "
                        "inpainted; taking an inpainting snapshot (full passes).")
                    : _("Sparse Regenerate: no selection, so the whole picture is redrawn "
                        "(img2img); taking a new snapshot (full passes)."));
      reuse = FALSE;
    } else if (changed) {
      g_autofree gchar *msg = g_strdup_printf(
          _("Sparse Regenerate: %s changed since the snapshot, and the snapshot's caches depend "
            "on them; taking a new snapshot (full pass)."),
          changed);
      say(host, msg);
      reuse = FALSE;
    } else if (task == SIGE_SD_INPAINT && memcmp(old->src, src->data, (size_t)w * h * 3) != 0) {
      /* each inpainting is one of the snapshot's picture */
      say(host, _("Sparse Regenerate: the picture changed since the inpainting snapshot; "
                  "taking a new snapshot (full passes)."));
      reuse = FALSE;
    }
  }

  g_autoptr(sige_tensor) picture = sige_image_from_pixels(src, error);
  if (!picture) return NULL;
  sige_regen_sd_state *st = reuse ? old : NULL;
  if (!st && !(st = state_new(ck, rq, &prm, prompt, negative, host, error))) return NULL;
  const gboolean full = !reuse;

  SdJob job = {.st = st, .snapshot = full, .picture = picture, .mask = mask};
  const size_t size = (size_t)w * h * 3;
  gboolean nothing = !full && task == SIGE_SD_IMG2IMG && memcmp(st->src, src->data, size) == 0;
  const gint64 t_engine = g_get_monotonic_time();
  const guint64 macs0 = sige_sd_pipeline_macs(st->pipe);
  if (!nothing) {
    const gchar *what = full ? _("Sparse Regenerate: Stable Diffusion snapshot, full passes at "
                                 "every denoising step...")
                             : _("Sparse Regenerate: Stable Diffusion, sparse denoising...");
    GError *err = NULL;
    if (!sige_regen_run_job(host, what, full, sige_device_name(prm.device), sd_job, &job, &err)) {
      /* the pipeline keeps its caches on a failed or cancelled run; a new
       * session that failed goes, the layer's old one stays */
      if (full) sige_regen_sd_state_free(st);
      sige_tensor_free(job.snap_out);
      sige_tensor_free(job.out);
      g_propagate_error(error, err);
      return NULL;
    }
  }
  g_autoptr(sige_tensor) snap_out = job.snap_out, out = job.out;

  sige_regen_result *r = g_new0(sige_regen_result, 1);
  r->full = full;
  r->model_path = g_strdup(model_path);
  r->width = w;
  r->height = h;
  r->bpp = 3;
  r->t_start = t_start;
  r->mode = SIGE_INPUT_IMAGE;
  r->sd = TRUE;
  GError *err = NULL;
  g_autofree guint8 *snap8 = snap_out ? to_rgb8(snap_out, &err) : NULL;
  g_autofree guint8 *out8 = out ? to_rgb8(out, &err) : NULL;
  if (err) {
    if (full) sige_regen_sd_state_free(st);
    g_propagate_error(error, err);
    sige_regen_result_free(r);
    return NULL;
  }
  if (nothing) {
    r->pixels = g_memdup2(st->last_out, size);
  } else if (task == SIGE_SD_IMG2IMG) {
    if (full)
      r->pixels = g_steal_pointer(&snap8);
    else
      r->pixels = g_steal_pointer(&out8);
  } else {
    /* Inpainting: the model's picture through the selection, the layer
     * elsewhere, as the selection's value (a feathered selection blends).
     * The decoder's picture differs from the layer everywhere (the VAE's
     * round trip; the inpainting's last step is not blended), and an
     * artist expects what is not selected to stay as it is. */
    r->pixels = g_steal_pointer(&out8);
    for (size_t i = 0; i < (size_t)w * h; i++) {
      const int a = rq->mask->data[i];
      for (int c = 0; c < 3; c++) {
        guint8 *d = r->pixels + 3 * i + c;
        *d = (guint8)((a * *d + (255 - a) * src->data[3 * i + c] + 127) / 255);
      }
    }
  }
  if (!full && !nothing && task == SIGE_SD_IMG2IMG) {
    /* Beyond the edit's reach the sparse passes give the snapshot's values
     * again up to float rounding, which flips the 8-bit rounding of a few
     * pixels by one level (measured: 0.5 % of the values far from a
     * stroke).  Keeping the last output where a pixel moved by at most one
     * level leaves what the edit does not reach untouched, and the written
     * rectangle (the undo step) as small as the edit. */
    for (size_t i = 0; i < (size_t)w * h; i++) {
      guint8 *d = r->pixels + 3 * i;
      const guint8 *o = st->last_out + 3 * i;
      if (abs(d[0] - o[0]) <= 1 && abs(d[1] - o[1]) <= 1 && abs(d[2] - o[2]) <= 1)
        memcpy(d, o, 3);
    }
  }
  /* the part of the picture the run regenerates from */
  if (task == SIGE_SD_INPAINT) {
    st->edit_ratio = (double)sige_mask_count(mask) / ((double)w * h);
  } else if (full) {
    st->edit_ratio = 1.0;
  } else {
    gint64 n = 0;
    for (size_t i = 0; i < (size_t)w * h; i++) n += memcmp(src->data + 3 * i, st->src + 3 * i, 3) != 0;
    st->edit_ratio = (double)n / ((double)w * h);
  }
  /* the session's new state, once nothing can fail any more */
  if (full || task == SIGE_SD_IMG2IMG) {
    g_free(st->src);
    st->src = g_memdup2(src->data, size);
  }
  if (full) {
    r->changed = (sige_rect){0, 0, w, h};
  } else {
    const sige_pixels before = {st->last_out, w, h, 3, 8};
    const sige_pixels now = {r->pixels, w, h, 3, 8};
    r->changed = sige_pixels_diff_rect(&before, &now);
  }
  g_free(st->last_out);
  st->last_out = g_memdup2(r->pixels, size);
  st->engine_ms = (g_get_monotonic_time() - t_engine) / 1000.0;
  st->macs = sige_sd_pipeline_macs(st->pipe) - macs0;
  st->pass_kind = full ? "full" : nothing ? "none" : "sparse";
  if (full) {
    sige_regen_payload *pl = g_new0(sige_regen_payload, 1);
    pl->model_path = g_strdup(model_path);
    pl->opts.seed = prm.seed;
    pl->sd = st;
    /* replaces the layer's old session (and frees it) */
    e = sige_session_table_insert(t, rq->image_id, rq->layer_id, w, h, src->bpp, pl, 0,
                                  sige_regen_payload_free);
  }
  r->entry = e;
  return r;
}

void sige_regen_sd_finish(sige_regen_result *r, sige_rect written) {
  sige_session_table *t = sige_regen_sessions();
  sige_session_entry *e = r->entry;
  const sige_regen_sd_state *st = ((sige_regen_payload *)e->payload)->sd;
  const size_t cache = sige_sd_pipeline_cache_bytes(st->pipe) + 3 * (size_t)r->width * r->height * 3;
  sige_session_table_set_bytes(t, e, cache);
  sige_session_table_set_shared(t, e, st->models, sd_models_bytes(st->models));
  const guint evicted = sige_session_table_evict(t, e->id);
  const double total_ms = (g_get_monotonic_time() - r->t_start) / 1000.0;
  /* the line of sige_regen_finish, with the task as the mode */
  g_printerr("sparse-regenerate: %s pass %.1f ms (engine %.1f ms), edit %.2f %%, changed "
             "%d,%d %dx%d, written %d,%d %dx%d, cache %.1f MiB, %u sessions%s, %.2f GMACs, on "
             "%s [%s]\n",
             st->pass_kind, total_ms, st->engine_ms, 100.0 * st->edit_ratio, r->changed.x,
             r->changed.y, r->changed.width, r->changed.height, written.x, written.y,
             written.width, written.height, cache / 1048576.0, sige_session_table_size(t),
             evicted ? " (evicted some)" : "", st->macs / 1e9, sige_device_name(st->prm.device),
             st->prm.task == SIGE_SD_INPAINT ? "sd-inpaint" : "sd-img2img");
  sige_regen_result_free(r);
}
