/* One run of Sparse Regenerate on a layer, and the sessions behind it. */
#include <gegl.h>
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "sige-layer-io.h"
#include "sige-model-cache.h"
#include "sige-plugin.h"
#include "sige-session-table.h"
#include "sige/error.h"

/* What a table entry holds: the engine session, the model it borrows and
 * the options it was made with (to notice settings that void its caches). */
typedef struct {
  sige_session *session;
  sige_model_ref *model;
  gchar *model_path;
  sige_session_options opts;
} Payload;

static void payload_free(gpointer p) {
  Payload *pl = p;
  sige_session_free(pl->session);
  sige_model_ref_unref(pl->model);
  g_free(pl->model_path);
  g_free(pl);
}

static sige_session_table *sessions;

static sige_session_table *table(void) {
  if (!sessions) sessions = sige_session_table_new((size_t)4096 << 20);
  return sessions;
}

static gboolean image_alive(const sige_session_entry *e, gpointer data) {
  (void)data;
  return gimp_image_is_valid(e->image_id) && gimp_item_is_valid(e->layer_id);
}

void sige_sessions_prune(void) {
  if (sessions) sige_session_table_prune(sessions, image_alive, NULL);
}

/* ---- the layer parasite ------------------------------------------------- */
/* It ties a layer to its session; the size and type in it are checked so
 * that a duplicated or resized layer never reuses a session that is not its
 * own. */

static void parasite_attach(gint32 layer, const sige_session_entry *e) {
  g_autofree gchar *text = g_strdup_printf("%u %d %d %d", e->id, e->width, e->height, e->bpp);
  GimpParasite *p = gimp_parasite_new(SIGE_PARASITE, GIMP_PARASITE_UNDOABLE, strlen(text) + 1, text);
  gimp_item_attach_parasite(layer, p);
  gimp_parasite_free(p);
}

static guint32 parasite_session_id(gint32 layer) {
  GimpParasite *p = gimp_item_get_parasite(layer, SIGE_PARASITE);
  if (!p) return 0;
  g_autofree gchar *text = g_strndup(gimp_parasite_data(p), gimp_parasite_data_size(p));
  gimp_parasite_free(p);
  guint id = 0;
  return sscanf(text, "%u", &id) == 1 ? id : 0;
}

gboolean sige_run_reset(gint32 image, gint32 drawable) {
  if (!sessions) return FALSE;
  sige_session_entry *e = sige_session_table_find(sessions, image, drawable);
  if (!e) return FALSE;
  sige_session_table_remove(sessions, e->id);
  return TRUE;
}

/* ---- pixels ------------------------------------------------------------- */

static const Babl *layer_format(gint32 drawable, int *bpp) {
  if (gimp_drawable_is_gray(drawable)) {
    *bpp = 1;
    return babl_format("Y' u8");
  }
  *bpp = 3;
  return babl_format("R'G'B' u8");
}

/* The layer's pixels without alpha (labels are colours; alpha means nothing). */
static guint8 *read_layer(gint32 drawable, sige_pixels *px) {
  const Babl *fmt = layer_format(drawable, &px->bpp);
  px->width = gimp_drawable_width(drawable);
  px->height = gimp_drawable_height(drawable);
  guint8 *data = g_malloc((size_t)px->width * px->height * px->bpp);
  GeglBuffer *buf = gimp_drawable_get_buffer(drawable);
  gegl_buffer_get(buf, GEGL_RECTANGLE(0, 0, px->width, px->height), 1.0, fmt, data,
                  GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buf);
  px->data = data;
  return data;
}

/* Writes r of the output into the layer.  Through the shadow buffer, whose
 * merge is what GIMP records for undo; merge applies the shadow inside the
 * selection, so the selection is set to r for the merge and restored after
 * (all inside the caller's undo group). */
static void write_rect(gint32 image, gint32 layer, const guint8 *px, int bpp, sige_rect r,
                       gboolean undoable) {
  const Babl *fmt = bpp == 1 ? babl_format("Y' u8") : babl_format("R'G'B' u8");
  if (!undoable) {
    GeglBuffer *buf = gimp_drawable_get_buffer(layer);
    gegl_buffer_set(buf, GEGL_RECTANGLE(r.x, r.y, r.width, r.height), 0, fmt, px,
                    GEGL_AUTO_ROWSTRIDE);
    g_object_unref(buf);
    gimp_drawable_update(layer, r.x, r.y, r.width, r.height);
    return;
  }
  gint32 saved = gimp_selection_is_empty(image) ? -1 : gimp_selection_save(image);
  gint offx = 0, offy = 0;
  gimp_drawable_offsets(layer, &offx, &offy);
  gimp_context_push();
  gimp_context_set_antialias(FALSE);
  gimp_context_set_feather(FALSE);
  gimp_image_select_rectangle(image, GIMP_CHANNEL_OP_REPLACE, offx + r.x, offy + r.y, r.width,
                              r.height);
  gimp_context_pop();
  GeglBuffer *shadow = gimp_drawable_get_shadow_buffer(layer);
  gegl_buffer_set(shadow, GEGL_RECTANGLE(r.x, r.y, r.width, r.height), 0, fmt, px,
                  GEGL_AUTO_ROWSTRIDE);
  gegl_buffer_flush(shadow);
  g_object_unref(shadow);
  gimp_drawable_merge_shadow(layer, TRUE);
  gimp_drawable_update(layer, r.x, r.y, r.width, r.height);
  if (saved != -1) {
    gimp_image_select_item(image, GIMP_CHANNEL_OP_REPLACE, saved);
    gimp_image_remove_channel(image, saved);
  } else {
    gimp_selection_none(image);
  }
}

static guint8 *crop(const guint8 *full, int width, int bpp, sige_rect r) {
  guint8 *out = g_malloc((size_t)r.width * r.height * bpp);
  for (int y = 0; y < r.height; y++)
    memcpy(out + (size_t)y * r.width * bpp, full + ((size_t)(r.y + y) * width + r.x) * bpp,
           (size_t)r.width * bpp);
  return out;
}

/* ---- the engine call, off the main thread ------------------------------- */
/* The pass runs in a worker so that the main thread can keep GIMP's progress
 * moving and a Cancel button responsive; cancelling sets the session's
 * cancel flag, and a cancelled pass leaves the session as it was. */

typedef struct {
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
} Job;

static void job_progress(double fraction, void *data) {
  g_atomic_int_set(&((Job *)data)->permille, (gint)(fraction * 1000));
}

static gpointer job_thread(gpointer data) {
  Job *j = data;
  if (j->full) {
    j->ok = sige_session_snapshot_full(j->session, j->input, job_progress, j, &j->cancel,
                                       &j->output, &j->error);
    if (j->ok) {
      j->changed = (sige_rect){0, 0, SIGE_W(j->output), SIGE_H(j->output)};
    }
  } else {
    j->ok = sige_session_regenerate(j->session, j->input, job_progress, j, &j->cancel,
                                    &j->output, &j->changed, &j->error);
  }
  g_atomic_int_set(&j->done, 1);
  return NULL;
}

static void on_cancel(GtkWidget *w, gpointer data) {
  (void)w;
  g_atomic_int_set(&((Job *)data)->cancel, 1);
}

static gboolean run_job(Job *j, gboolean interactive, const gchar *what) {
  gimp_progress_init(what);
  GtkWidget *dlg = NULL;
  if (interactive) {
    /* GIMP 2.10 gives a plug-in no cancel signal of its own progress, so
     * offer a button that raises the session's cancel flag. */
    dlg = gtk_dialog_new_with_buttons(_("Sparse Regenerate"), NULL, 0, _("_Cancel"),
                                      GTK_RESPONSE_CANCEL, NULL);
    GtkWidget *label = gtk_label_new(what);
    gtk_container_set_border_width(GTK_CONTAINER(label), 12);
    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(dlg))), label, TRUE,
                       TRUE, 0);
    g_signal_connect(dlg, "response", G_CALLBACK(on_cancel), j);
    gtk_widget_show_all(dlg);
  }
  GThread *t = g_thread_new("sige-pass", job_thread, j);
  int last = -1;
  while (!g_atomic_int_get(&j->done)) {
    if (dlg)
      while (gtk_events_pending()) gtk_main_iteration();
    int pm = g_atomic_int_get(&j->permille);
    if (pm != last) {
      gimp_progress_update(pm / 1000.0);
      last = pm;
    }
    g_usleep(j->full ? 20000 : 2000);
  }
  g_thread_join(t);
  if (dlg) gtk_widget_destroy(dlg);
  gimp_progress_update(1.0);
  return j->ok;
}

/* ---- the run ------------------------------------------------------------ */

static gchar *model_label(const gchar *path) {
  g_autofree gchar *base = g_path_get_basename(path);
  gchar *dot = strrchr(base, '.');
  if (dot && dot != base) *dot = '\0';
  return g_strdup(base);
}

static gint32 new_output_layer(gint32 image, gint32 source, const gchar *model_path, int bpp) {
  g_autofree gchar *m = model_label(model_path);
  g_autofree gchar *name = g_strdup_printf(_("Sparse Regenerate (%s)"), m);
  gint32 layer = gimp_layer_new(image, name, gimp_drawable_width(source),
                                gimp_drawable_height(source),
                                bpp == 1 ? GIMP_GRAY_IMAGE : GIMP_RGB_IMAGE, 100.0,
                                GIMP_LAYER_MODE_NORMAL);
  gint offx = 0, offy = 0;
  gimp_drawable_offsets(source, &offx, &offy);
  gimp_layer_set_offsets(layer, offx, offy);
  gimp_image_insert_layer(image, layer, gimp_item_get_parent(source),
                          gimp_image_get_item_position(image, source));
  return layer;
}

static gboolean valid_output(gint32 image, gint32 layer, gint32 source) {
  return layer > 0 && gimp_item_is_valid(layer) && gimp_item_get_image(layer) == image &&
         gimp_item_is_layer(layer) && !gimp_item_is_group(layer) &&
         gimp_drawable_width(layer) == gimp_drawable_width(source) &&
         gimp_drawable_height(layer) == gimp_drawable_height(source) &&
         gimp_drawable_is_gray(layer) == gimp_drawable_is_gray(source);
}

/* The output layer made for `source` earlier (marked with a parasite), so
 * that a reset or an evicted session writes into it again rather than
 * stacking up new layers. */
static gint32 find_output_layer(gint32 image, gint32 source) {
  gint32 parent = gimp_item_get_parent(source);
  gint n = 0;
  g_autofree gint32 *layers = parent > 0 ? gimp_item_get_children(parent, &n)
                                         : gimp_image_get_layers(image, &n);
  for (gint i = 0; i < n; i++) {
    GimpParasite *p = gimp_item_get_parasite(layers[i], SIGE_OUTPUT_PARASITE);
    if (!p) continue;
    g_autofree gchar *text = g_strndup(gimp_parasite_data(p), gimp_parasite_data_size(p));
    gimp_parasite_free(p);
    if (atoi(text) == source && valid_output(image, layers[i], source)) return layers[i];
  }
  return -1;
}

gint32 sige_run_regenerate(gint32 image, gint32 drawable, const SigeSettings *s,
                           gboolean interactive, GError **error) {
  const gint64 t_start = g_get_monotonic_time();
  if (!gimp_item_is_layer(drawable) || gimp_item_is_group(drawable)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("Sparse Regenerate works on a layer; select the label layer (GauGAN) or the "
                  "image layer (DDPM) and run it again."));
    return -1;
  }
  g_autofree gchar *model_path = sige_resolve_model(s);
  if (!model_path) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                _("No model chosen and the shipped default model (gaugan-demo.safetensors) is "
                  "missing. Reinstall the plug-in with tools/install-plugin.sh or choose a "
                  "model file in the dialog."));
    return -1;
  }
  sige_session_table *t = table();
  sige_session_table_set_budget(t, (size_t)MAX(s->budget_mib, 1) << 20);

  sige_pixels src;
  g_autofree guint8 *src_data = read_layer(drawable, &src);

  /* The layer's session: by the parasite's id, checked against this layer. */
  sige_session_entry *e = NULL;
  guint32 pid = parasite_session_id(drawable);
  if (pid) e = sige_session_table_lookup(t, pid);
  if (!e) e = sige_session_table_find(t, image, drawable);
  if (e && (e->image_id != image || e->layer_id != drawable)) e = NULL;
  if (e && (e->width != src.width || e->height != src.height || e->bpp != src.bpp)) {
    gimp_message(_("Sparse Regenerate: the layer's size or type changed since the snapshot; "
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
    gimp_progress_init(_("Loading the model..."));
    GError *err = NULL;
    mref = sige_model_cache_get(model_path, &err);
    if (!mref) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  _("Could not load the model \"%s\": %s. Choose a GauGAN (SPADE) or DDPM (UNet) "
                    "weights file in safetensors format, or leave the model empty for the "
                    "shipped default."),
                  model_path, err->message);
      g_error_free(err);
      return -1;
    }
    if (stale) sige_session_table_remove(t, stale->id);
  }
  const sige_model *model = sige_model_ref_model(mref);

  /* What the model kind makes of the settings (sige-layer-io.c decides). */
  const sige_plugin_mode mode = sige_plugin_mode_for(model, error);
  const sige_plugin_params params = {
      .steps = s->steps,
      .strength = s->strength,
      .seed = seed,
      .sampler = s->sampler == SIGE_SAMPLER_CHOICE_DDIM ? SIGE_SAMPLER_DDIM
                                                        : SIGE_SAMPLER_DPM_SOLVER_PP,
      .fp16_caches = s->precision == SIGE_PRECISION_F16,
      .n_threads = s->threads,
      .full_pass_above = s->threshold,
      .memory_budget = (size_t)MAX(s->budget_mib, 1) << 20,
      .device = (sige_device)s->device,
  };
  sige_session_options opts;
  if (mode == SIGE_PLUGIN_MODE_UNSUPPORTED ||
      !sige_plugin_session_options(model, &params, &opts, error)) {
    sige_model_ref_unref(mref);
    return -1;
  }
  g_autofree char *changed =
      e ? sige_plugin_options_change(&((Payload *)e->payload)->opts, &opts) : NULL;

  sige_input_report report = {0, 0};
  sige_pixels inst, *instp = NULL;
  g_autofree guint8 *inst_data = NULL;
  if (mode == SIGE_PLUGIN_MODE_LABELS && s->instance_layer > 0 &&
      gimp_item_is_valid(s->instance_layer) &&
      gimp_item_get_image(s->instance_layer) == image) {
    inst_data = read_layer(s->instance_layer, &inst);
    instp = &inst;
  }
  g_autoptr(sige_tensor) input = sige_model_input_from_pixels(model, &src, instp, &report, error);
  if (!input) {
    sige_model_ref_unref(mref);
    return -1;
  }
  if (report.n_nearest > 0) {
    g_autofree gchar *count = g_strdup_printf("%" G_GINT64_FORMAT, report.n_nearest);
    g_autofree gchar *msg = g_strdup_printf(
        _("Sparse Regenerate: %s pixels (%.2f %%) of the label layer are not Cityscapes "
          "colours and were mapped to the nearest class. Paint with the Cityscapes palette "
          "(Windows > Dockable Dialogs > Palettes) and antialiasing off."),
        count, 100.0 * report.n_nearest / MAX(report.n_pixels, 1));
    gimp_message(msg);
  }

  /* Only now: a layer the model cannot read must not cost the snapshot. */
  if (changed) {
    g_autofree gchar *msg = g_strdup_printf(
        _("Sparse Regenerate: %s changed since the snapshot, and the snapshot's caches depend "
          "on them; taking a new snapshot (full pass)."),
        changed);
    gimp_message(msg);
    sige_session_table_remove(t, e->id);
    e = NULL;
  }

  gboolean full = e == NULL;
  if (full) {
    sige_session *ses = sige_session_new(model, &opts, error);
    if (!ses) {
      sige_model_ref_unref(mref);
      return -1;
    }
    Payload *pl = g_new0(Payload, 1);
    pl->session = ses;
    pl->model = mref;
    pl->model_path = g_strdup(model_path);
    pl->opts = opts;
    e = sige_session_table_insert(t, image, drawable, src.width, src.height, src.bpp, pl, 0,
                                  payload_free);
  } else {
    sige_model_ref_unref(mref);
  }
  const guint32 id = e->id;
  Payload *pl = e->payload;

  Job job = {.session = pl->session, .input = input, .full = full};
  const gchar *what = NULL;
  if (mode == SIGE_PLUGIN_MODE_IMAGE)
    what = full ? _("Sparse Regenerate: snapshot, a full pass per denoising step...")
                : _("Sparse Regenerate: sparse denoising...");
  else
    what = full ? _("Sparse Regenerate: full pass (snapshot)...")
                : _("Sparse Regenerate: sparse pass...");
  /* say where it runs: auto may have fallen back to the CPU, and why */
  g_autofree gchar *what_where =
      g_strdup_printf("%s [%s]", what, sige_session_device_info(pl->session));
  if (!run_job(&job, interactive, what_where)) {
    /* A failed snapshot leaves nothing worth keeping; a failed sparse pass
     * leaves the session as it was. */
    if (full) sige_session_table_remove(t, id);
    g_propagate_error(error, job.error);
    return -1;
  }
  g_autoptr(sige_tensor) output = job.output;
  const sige_session_stats *st = sige_session_last_stats(pl->session);

  /* Output: the whole image in 8 bits, then only what differs from what the
   * output layer shows now is written (normally the engine's changed
   * rectangle; more if the user undid or painted on the output). */
  const int bpp = src.bpp;
  const int W = SIGE_W(output), H = SIGE_H(output);
  g_autofree guint8 *pixels = g_malloc((size_t)W * H * bpp);
  if (!sige_pixels_from_output(output, (sige_rect){0, 0, W, H}, bpp, pixels, error)) {
    sige_session_table_remove(t, id);
    return -1;
  }
  gimp_image_undo_group_start(image);
  gint32 out = e->output_layer_id;
  if (!valid_output(image, out, drawable)) out = find_output_layer(image, drawable);
  sige_rect wr;
  gboolean fresh = !valid_output(image, out, drawable);
  if (fresh) {
    out = new_output_layer(image, drawable, model_path, bpp);
    g_autofree gchar *text = g_strdup_printf("%d", drawable);
    GimpParasite *p = gimp_parasite_new(SIGE_OUTPUT_PARASITE, GIMP_PARASITE_UNDOABLE,
                                        strlen(text) + 1, text);
    gimp_item_attach_parasite(out, p);
    gimp_parasite_free(p);
    wr = (sige_rect){0, 0, W, H};
  } else {
    sige_pixels cur;
    g_autofree guint8 *cur_data = read_layer(out, &cur);
    sige_pixels now = {pixels, W, H, bpp};
    wr = sige_pixels_diff_rect(&cur, &now);
  }
  if (wr.width > 0) {
    g_autofree guint8 *part = crop(pixels, W, bpp, wr);
    write_rect(image, out, part, bpp, wr, !fresh);
  }
  if (parasite_session_id(drawable) != id) parasite_attach(drawable, e);
  gimp_image_undo_group_end(image);
  e->output_layer_id = out;

  sige_session_table_set_bytes(t, e, sige_session_cache_bytes(pl->session));
  guint evicted = sige_session_table_evict(t, id);
  const double total_ms = (g_get_monotonic_time() - t_start) / 1000.0;
  /* One line per run on stderr: what the tests and benchmarks read. */
  g_printerr("sparse-regenerate: %s pass %.1f ms (engine %.1f ms), edit %.2f %%, changed "
             "%d,%d %dx%d, written %d,%d %dx%d, cache %.1f MiB, %u sessions%s, on %s [%s]\n",
             full ? "full" : st->was_sparse ? "sparse" : st->macs ? "full-fallback" : "none",
             total_ms, st->seconds * 1e3, 100.0 * st->edit_ratio, job.changed.x, job.changed.y,
             job.changed.width, job.changed.height, wr.x, wr.y, wr.width, wr.height,
             sige_session_cache_bytes(pl->session) / 1048576.0, sige_session_table_size(t),
             evicted ? " (evicted some)" : "", sige_session_device_info(pl->session),
             mode == SIGE_PLUGIN_MODE_IMAGE ? "image" : "labels");
  return out;
}
