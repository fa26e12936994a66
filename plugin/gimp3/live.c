/* Live mode for GIMP 3: while the artist paints on the source layer, the
 * resident plug-in keeps the output layer in step with it.
 *
 * The same design as GIMP 2.10's (plugin/gimp210/live.c): the procedure is
 * a temporary procedure of the persistent plug-in (main.c), so the
 * sessions and their caches are the ones the normal runs use, and it runs
 * until the user stops it.  GIMP waits for it in a nested main loop, so
 * its windows stay usable; this side runs a nested loop of its own with a
 * small window (Stop) and a timer that reads the layer.  libgimp 3 has no
 * signal for "a drawable changed" either (a plug-in sees no undo counter
 * or dirty count that moves per stroke), so the reads are what notice a
 * stroke; plugin/common/sige-live.c decides when an update is due, and
 * the update is the normal run (sige_gimp3_regenerate_host): the same
 * sparse pass, the same write of what differs, one undo step per update
 * that writes. */
#include <gegl.h>
#include <libgimp/gimpui.h>

#include "sige-gimp3.h"
#include "sige-live.h"
#include "sige-regen.h"
#include "sige/error.h"

typedef struct {
  GimpImage *image;
  GimpDrawable *layer;
  SigeSettings s;
  GtkWidget *win, *status;
  sige_live live;
  GMainLoop *loop;
  gboolean stop;
  guint poll_id, poll_ms;
} Live;

static void set_status(Live *L, const gchar *text) {
  if (L->win) gtk_label_set_text(GTK_LABEL(L->status), text);
}

/* The layer's pixels as sige-live.c compares them (*size bytes). */
static guint8 *read_pixels(Live *L, gsize *size) {
  const gboolean gray = gimp_drawable_is_gray(L->layer);
  const gint w = gimp_drawable_get_width(L->layer), h = gimp_drawable_get_height(L->layer);
  *size = (gsize)w * h * (gray ? 1 : 3);
  guint8 *now = g_malloc(*size);
  GeglBuffer *buf = gimp_drawable_get_buffer(L->layer);
  gegl_buffer_get(buf, GEGL_RECTANGLE(0, 0, w, h), 1.0,
                  babl_format(gray ? "Y' u8" : "R'G'B' u8"), now, GEGL_AUTO_ROWSTRIDE,
                  GEGL_ABYSS_NONE);
  g_object_unref(buf);
  return now;
}

/* ---- the update --------------------------------------------------------- */

static void live_message(const char *text, gpointer data) {
  /* In the live window, not a GIMP message: the same warning (say,
   * non-palette colours) would otherwise pop up on every update. */
  set_status(data, text);
  g_printerr("sparse-regenerate: live: %s\n", text);
}

/* Keeps the Stop button working while the pass runs; Stop cancels it. */
static void live_wait(sige_pass *pass, const char *what, gpointer data) {
  Live *L = data;
  (void)what;
  while (!sige_pass_done(pass)) {
    while (g_main_context_pending(NULL)) g_main_context_iteration(NULL, FALSE);
    if (L->stop) sige_pass_cancel(pass);
    g_usleep(2000);
  }
}

static void update(Live *L, gint64 since_change_us) {
  const gint64 t0 = g_get_monotonic_time();
  const sige_regen_host host = {.message = live_message, .wait = live_wait, .data = L};
  GError *error = NULL;
  GimpLayer *out =
      sige_gimp3_regenerate_host(L->image, L->layer, &L->s, NULL, &host, &error);
  if (!out) {
    if (!g_error_matches(error, SIGE_ERROR, SIGE_ERROR_CANCELLED)) {
      /* Kept on screen, not fatal: the next stroke may fix it. */
      set_status(L, error->message);
      g_printerr("sparse-regenerate: live: error: %s\n", error->message);
    }
    g_error_free(error);
    return;
  }
  gimp_displays_flush();
  sige_live_updated(&L->live);
  const double ms = (g_get_monotonic_time() - t0) / 1000.0;
  /* One line per update with the wall clock, which the GUI tests compare
   * with the time they released the mouse button. */
  g_printerr("sparse-regenerate: live update %u done at %.3f s (wall clock); started %.0f ms "
             "after the last change seen, pass and write %.1f ms, polling every %u ms\n",
             L->live.updates, g_get_real_time() / 1e6, since_change_us / 1000.0, ms,
             sige_live_poll_ms(&L->live));
  g_autofree gchar *text = sige_live_status(L->live.updates, ms);
  set_status(L, text);
}

/* ---- the loop ----------------------------------------------------------- */

static void stop(Live *L) {
  if (L->stop) return;
  L->stop = TRUE;
  g_main_loop_quit(L->loop);
}

static gboolean poll_layer(gpointer data);

static void schedule(Live *L, guint ms) {
  if (L->poll_id) g_source_remove(L->poll_id);
  L->poll_ms = ms;
  L->poll_id = g_timeout_add(ms, poll_layer, L);
}

static gboolean poll_layer(gpointer data) {
  Live *L = data;
  if (L->stop) return G_SOURCE_CONTINUE;
  if (!gimp_image_is_valid(L->image) || !gimp_item_is_valid(GIMP_ITEM(L->layer))) {
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

static GtkWidget *wrapped_label(const gchar *text) {
  GtkWidget *label = gtk_label_new(text);
  gtk_label_set_line_wrap(GTK_LABEL(label), TRUE);
  gtk_label_set_xalign(GTK_LABEL(label), 0.0);
  gtk_label_set_max_width_chars(GTK_LABEL(label), 48);
  return label;
}

static void window_new(Live *L) {
  L->win = gimp_dialog_new(_("Sparse Regenerate Live"), "sparse-regenerate-live", NULL, 0,
                           gimp_standard_help_func, SIGE_LIVE_PROC, _("_Stop"),
                           GTK_RESPONSE_CLOSE, NULL);
  gtk_dialog_set_default_response(GTK_DIALOG(L->win), GTK_RESPONSE_CLOSE);
  /* Over the image window it was started from; a call from a script has
   * no window (an empty handle, see ui/sige-host.c). */
  GBytes *handle = gimp_progress_get_window_handle();
  if (handle && g_bytes_get_size(handle) > 0)
    gimp_window_set_transient_for(GTK_WINDOW(L->win), handle);
  if (handle) g_bytes_unref(handle);
  GtkWidget *vbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_container_set_border_width(GTK_CONTAINER(vbox), 12);
  gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(L->win))), vbox, TRUE, TRUE,
                     0);
  g_autofree gchar *name = gimp_item_get_name(GIMP_ITEM(L->layer));
  g_autofree gchar *intro = sige_live_intro(name);
  gtk_box_pack_start(GTK_BOX(vbox), wrapped_label(intro), FALSE, FALSE, 0);
  L->status = wrapped_label(_("Bringing the output up to date..."));
  gtk_box_pack_start(GTK_BOX(vbox), L->status, FALSE, FALSE, 0);
  g_signal_connect(L->win, "response", G_CALLBACK(on_response), L);
  g_signal_connect(L->win, "destroy", G_CALLBACK(on_destroy), L);
  gtk_widget_show_all(L->win);
}

guint sige_gimp3_live_run(GimpImage *image, GimpDrawable *drawable, const SigeSettings *s) {
  gimp_ui_init("sparse-regenerate");
  Live L = {.image = image, .layer = drawable, .s = *s, .loop = g_main_loop_new(NULL, FALSE)};
  sige_live_init(&L.live);
  window_new(&L);

  /* First bring the output up to date (a full pass when the layer has no
   * snapshot yet): a stroke's update must not also carry old edits. */
  const gint64 t0 = g_get_monotonic_time();
  gsize size = 0;
  guint8 *px = read_pixels(&L, &size);
  sige_live_prime(&L.live, px, size, t0, g_get_monotonic_time());
  update(&L, 0);
  if (!L.stop) {
    g_printerr("sparse-regenerate: live: watching layer %d (a read costs %.1f ms), debounce %u ms\n",
               gimp_item_get_id(GIMP_ITEM(drawable)), L.live.read_ms, L.live.debounce_ms);
    schedule(&L, sige_live_poll_ms(&L.live));
    g_main_loop_run(L.loop);
  }
  if (L.poll_id) g_source_remove(L.poll_id);
  if (L.win) {
    g_signal_handlers_disconnect_by_data(L.win, &L);
    gtk_widget_destroy(L.win);
  }
  g_main_loop_unref(L.loop);
  const guint updates = L.live.updates;
  sige_live_clear(&L.live);
  g_printerr("sparse-regenerate: live: stopped after %u updates\n", updates);
  return updates;
}
