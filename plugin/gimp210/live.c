/* Live mode for GIMP 2.10: while the artist paints on the source layer, the
 * resident extension keeps the output layer in step with it.
 *
 * The procedure runs until the user stops it.  GIMP waits for a temporary
 * procedure in a nested main loop, so its windows stay usable and the
 * artist paints as usual; this side runs its own GTK loop with a small
 * window (Stop) and a timer that polls the layer.
 *
 * Noticing a stroke: libgimp 2.10 has no signal for "a drawable changed",
 * and the PDB offers only gimp-image-is-dirty (a boolean, set once and
 * never again until a save) and no undo counter.  So the layer's pixels
 * are read (gegl_buffer_get through the tile protocol) at a few tens of
 * Hz; plugin/common/sige-live.c (shared with GIMP 3) compares each read
 * with the previous one and says when an update is due.
 *
 * The pass is the normal procedure's (sige_gimp210_regenerate_host): the
 * same session, the same sparse pass, the same write of only what differs
 * from what the output layer shows, one undo step per update that writes
 * (docs/USER-GUIDE.md, "Live mode", says why). */
#include <gegl.h>
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <stdlib.h>
#include <string.h>

#include "sige-live.h"
#include "sige-plugin.h"
#include "sige/error.h"

typedef struct {
  gint32 image, layer;
  SigeSettings s;
  GtkWidget *win, *status;
  sige_live live; /* when to update (plugin/common/sige-live.c) */
  gboolean stop;
  guint poll_id, poll_ms;
} Live;

static void set_status(Live *L, const gchar *text) {
  if (L->win) gtk_label_set_text(GTK_LABEL(L->status), text);
}

/* The layer's pixels as the front-ends compare them (*size bytes). */
static guint8 *read_pixels(Live *L, gsize *size) {
  const gboolean gray = gimp_drawable_is_gray(L->layer);
  const gint w = gimp_drawable_width(L->layer), h = gimp_drawable_height(L->layer);
  *size = (gsize)w * h * (gray ? 1 : 3);
  guint8 *now = g_malloc(*size);
  GeglBuffer *buf = gimp_drawable_get_buffer(L->layer);
  gegl_buffer_get(buf, GEGL_RECTANGLE(0, 0, w, h), 1.0,
                  babl_format(gray ? "Y' u8" : "R'G'B' u8"), now, GEGL_AUTO_ROWSTRIDE,
                  GEGL_ABYSS_NONE);
  g_object_unref(buf);
  return now;
}

/* ---- the pass ----------------------------------------------------------- */

static void live_message(const char *text, gpointer data) {
  /* Shown in the live window, not as a GIMP message: the same warning
   * (say, non-palette colours) would otherwise pop up on every update. */
  set_status(data, text);
  g_printerr("sparse-regenerate: live: %s\n", text);
}

/* Keeps the Stop button working while the pass runs; Stop cancels it. */
static void live_wait(sige_pass *pass, const char *what, gpointer data) {
  Live *L = data;
  (void)what;
  while (!sige_pass_done(pass)) {
    while (gtk_events_pending()) gtk_main_iteration();
    if (L->stop) sige_pass_cancel(pass);
    g_usleep(2000);
  }
}

static void update(Live *L, gint64 since_change_us) {
  const gint64 t0 = g_get_monotonic_time();
  const sige_regen_host host = {.message = live_message, .wait = live_wait, .data = L};
  GError *error = NULL;
  const gint32 active = gimp_image_get_active_layer(L->image);
  const gint32 out = sige_gimp210_regenerate_host(L->image, L->layer, &L->s, &host, &error);
  /* A new output layer becomes GIMP's active layer; the artist's next
   * stroke must still land on the labels. */
  if (active == L->layer && gimp_item_is_valid(L->layer) &&
      gimp_image_get_active_layer(L->image) != L->layer)
    gimp_image_set_active_layer(L->image, L->layer);
  if (out < 0) {
    if (!g_error_matches(error, SIGE_ERROR, SIGE_ERROR_CANCELLED)) {
      /* Kept on screen, not fatal: the next stroke may fix it (a layer
       * of the wrong kind is another matter, but the user sees why). */
      set_status(L, error->message);
      g_printerr("sparse-regenerate: live: error: %s\n", error->message);
    }
    g_error_free(error);
    return;
  }
  gimp_displays_flush();
  sige_live_updated(&L->live);
  const double ms = (g_get_monotonic_time() - t0) / 1000.0;
  /* One line per update with the wall clock, which the GUI test compares
   * with the time it released the mouse button. */
  g_printerr("sparse-regenerate: live update %u done at %.3f s (wall clock); started %.0f ms "
             "after the last change seen, pass and write %.1f ms\n",
             L->live.updates, g_get_real_time() / 1e6, since_change_us / 1000.0, ms);
  g_autofree gchar *text = sige_live_status(L->live.updates, ms);
  set_status(L, text);
}

/* Paid at the start rather than in the artist's first stroke: a pass on the
 * unchanged layer (the engine has nothing to recompute and nothing is
 * written, so no undo step).  Its label map -> input conversion touches
 * the memory a later pass converts into, fresh the first time: without
 * it the first stroke's conversion took 58 ms on an idle machine and 273
 * ms under load against 2-3 ms later; with it 3 ms (docs/PERFORMANCE.md).
 * The first stroke's other extra, GIMP's first undoable write into the
 * output layer, is not paid here: a write of the layer's own pixels with
 * the undo stack frozen, and the same undoable write into a scratch
 * image, were tried and did not make it cheaper. */
static void warm_up(Live *L) {
  const gint64 t0 = g_get_monotonic_time();
  /* no messages: the start's pass said them already */
  const sige_regen_host host = {.wait = live_wait, .data = L};
  GError *error = NULL;
  if (sige_gimp210_regenerate_host(L->image, L->layer, &L->s, &host, &error) < 0) {
    g_printerr("sparse-regenerate: live: warm-up pass: %s\n", error->message);
    g_clear_error(&error);
    return;
  }
  g_printerr("sparse-regenerate: live: warm-up pass %.0f ms\n",
             (g_get_monotonic_time() - t0) / 1000.0);
}

/* ---- the loop ----------------------------------------------------------- */

static void stop(Live *L) {
  if (L->stop) return;
  L->stop = TRUE;
  /* Stop during the first pass comes before gtk_main runs. */
  if (gtk_main_level() > 0) gtk_main_quit();
}

static gboolean poll_layer(gpointer data);

static void schedule(Live *L, guint ms) {
  if (L->poll_id && ms == L->poll_ms) return;
  if (L->poll_id) g_source_remove(L->poll_id);
  L->poll_ms = ms;
  L->poll_id = g_timeout_add(ms, poll_layer, L);
}

static gboolean poll_layer(gpointer data) {
  Live *L = data;
  if (L->stop) return G_SOURCE_CONTINUE;
  if (!gimp_image_is_valid(L->image) || !gimp_item_is_valid(L->layer)) {
    g_printerr("sparse-regenerate: live: the layer is gone; live mode ends\n");
    L->poll_id = 0;
    stop(L);
    return G_SOURCE_REMOVE;
  }
  const gint64 t0 = g_get_monotonic_time();
  gsize size = 0;
  guint8 *px = read_pixels(L, &size);
  gint64 since = 0;
  if (sige_live_poll(&L->live, px, size, t0, g_get_monotonic_time(), &since) ==
      SIGE_LIVE_UPDATE) {
    update(L, since);
    if (L->stop) return G_SOURCE_CONTINUE;
  }
  const guint ms = sige_live_poll_ms(&L->live);
  if (ms != L->poll_ms) {
    L->poll_id = 0;
    schedule(L, ms);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static void on_response(GtkDialog *d, gint response, Live *L) {
  (void)d, (void)response;
  stop(L);
}

static void on_destroy(GtkWidget *w, Live *L) {
  (void)w;
  L->win = NULL;
  stop(L);
}

void sige_live_run(gint32 image, gint32 drawable, const SigeSettings *s) {
  gimp_ui_init("sparse-regenerate", FALSE);
  Live L = {.image = image, .layer = drawable, .s = *s};
  sige_live_init(&L.live);

  L.win = gimp_dialog_new(_("Sparse Regenerate Live"), "sparse-regenerate-live", NULL, 0,
                          gimp_standard_help_func, SIGE_LIVE_PROC, _("_Stop"),
                          GTK_RESPONSE_CLOSE, NULL);
  gtk_dialog_set_default_response(GTK_DIALOG(L.win), GTK_RESPONSE_CLOSE);
  gimp_window_set_transient(GTK_WINDOW(L.win));
  GtkWidget *vbox = gtk_vbox_new(FALSE, 6);
  gtk_container_set_border_width(GTK_CONTAINER(vbox), 12);
  gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(L.win))), vbox, TRUE, TRUE, 0);
  g_autofree gchar *name = gimp_item_get_name(drawable);
  g_autofree gchar *intro = sige_live_intro(name);
  GtkWidget *label = gtk_label_new(intro);
  gtk_label_set_line_wrap(GTK_LABEL(label), TRUE);
  gtk_misc_set_alignment(GTK_MISC(label), 0.0, 0.5);
  gtk_box_pack_start(GTK_BOX(vbox), label, FALSE, FALSE, 0);
  L.status = gtk_label_new(_("Bringing the output up to date..."));
  gtk_label_set_line_wrap(GTK_LABEL(L.status), TRUE);
  gtk_misc_set_alignment(GTK_MISC(L.status), 0.0, 0.5);
  gtk_box_pack_start(GTK_BOX(vbox), L.status, FALSE, FALSE, 0);
  gtk_widget_set_size_request(label, 320, -1);
  g_signal_connect(L.win, "response", G_CALLBACK(on_response), &L);
  g_signal_connect(L.win, "destroy", G_CALLBACK(on_destroy), &L);
  gtk_widget_show_all(L.win);

  /* First bring the output up to date (a full pass when the layer has no
   * snapshot yet): a stroke's update must not also carry old edits. */
  const gint64 t0 = g_get_monotonic_time();
  gsize size = 0;
  guint8 *px = read_pixels(&L, &size);
  sige_live_prime(&L.live, px, size, t0, g_get_monotonic_time());
  update(&L, 0);
  /* SIGE_LIVE_WARM_UP=0 leaves it out, to measure what it saves */
  const gchar *warm = g_getenv("SIGE_LIVE_WARM_UP");
  if (!L.stop && L.live.updates > 0 && !(warm && strcmp(warm, "0") == 0)) warm_up(&L);
  if (!L.stop) {
    g_printerr("sparse-regenerate: live: watching layer %d (a read costs %.1f ms), debounce %u ms\n",
               drawable, L.live.read_ms, L.live.debounce_ms);
    schedule(&L, sige_live_poll_ms(&L.live));
    gtk_main();
  }
  if (L.poll_id) g_source_remove(L.poll_id);
  if (L.win) {
    g_signal_handlers_disconnect_by_data(L.win, &L);
    gtk_widget_destroy(L.win);
  }
  const guint updates = L.live.updates;
  sige_live_clear(&L.live);
  g_printerr("sparse-regenerate: live: stopped after %u updates\n", updates);
}
