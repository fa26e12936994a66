#include "sige-host.h"

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "sige-i18n.h"

/* The run's own progress window.  GIMP 2.10 and 3 both answer the Cancel
 * of a plug-in's progress in the status bar by closing the plug-in
 * (app/plug-in/gimpplugin-progress.c: the cancel callback ends in
 * gimp_plug_in_close), which for this resident plug-in loses every session
 * and the menu entries.  So a run never starts a progress in GIMP: it shows
 * this window, with a Cancel that raises the pass's cancel flag, and
 * redirects the plug-in's GIMP progress to it (a progress vtable) for the
 * length of the procedure, so that no stray gimp_progress_* call can put a
 * killing Cancel in the status bar.  The redirect also keeps gimp_message
 * out of the status bar (where short messages were overwritten by the
 * progress text): GIMP shows a plug-in's messages in the progress only if
 * the progress can show messages, and a vtable progress cannot, so they
 * go to GIMP's message dialog or error console, where they stay. */
typedef struct {
  gboolean active;     /* between sige_gimp_host_begin and _end */
  gchar *callback;     /* the installed vtable, NULL when none */
  GtkWidget *window, *label, *bar, *cancel;
  sige_pass *pass;     /* the pass the Cancel stops, while it runs */
} HostUi;

static HostUi ui;

/* Closes what GTK has queued (an unmap, a destroy) now: between runs the
 * resident plug-in runs no GTK main loop, so without this a closed window
 * stays on screen until the next run. */
static void flush_gtk(void) {
  while (gtk_events_pending()) gtk_main_iteration();
  GdkDisplay *d = gdk_display_get_default();
  if (d) {
    gdk_display_flush(d);
    gdk_display_sync(d);
  }
}

static void window_show(const char *what) {
  if (!ui.window) return;
  if (what) gtk_label_set_text(GTK_LABEL(ui.label), what);
  if (!gtk_widget_get_visible(ui.window)) {
    gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(ui.bar), 0.0);
    gtk_widget_set_sensitive(ui.cancel, TRUE);
    gtk_widget_show_all(ui.window);
  }
  flush_gtk();
}

static void window_hide(void) {
  if (!ui.window || !gtk_widget_get_visible(ui.window)) return;
  gtk_widget_hide(ui.window);
  flush_gtk();
}

static void on_response(GtkDialog *dlg, gint response, gpointer data) {
  (void)dlg, (void)response, (void)data;
  /* Cancel, Escape and the window's close button all mean stop. */
  if (ui.pass) {
    sige_pass_cancel(ui.pass);
    gtk_label_set_text(GTK_LABEL(ui.label), _("Cancelling..."));
    gtk_widget_set_sensitive(ui.cancel, FALSE);
  }
}

static gboolean on_delete(GtkWidget *w, GdkEvent *ev, gpointer data) {
  (void)w, (void)ev, (void)data;
  on_response(NULL, GTK_RESPONSE_DELETE_EVENT, NULL);
  return TRUE; /* the window stays until the pass has stopped */
}

static void window_new(void) {
  ui.window = gtk_dialog_new();
  gtk_window_set_title(GTK_WINDOW(ui.window), _("Sparse Regenerate (running)"));
  gtk_window_set_role(GTK_WINDOW(ui.window), "sparse-regenerate-progress");
  gtk_window_set_resizable(GTK_WINDOW(ui.window), FALSE);
  /* away from the image window's menu bar and toolbox */
  gtk_window_set_position(GTK_WINDOW(ui.window), GTK_WIN_POS_CENTER);
  ui.cancel = gtk_dialog_add_button(GTK_DIALOG(ui.window), _("_Cancel"), GTK_RESPONSE_CANCEL);
  GtkWidget *area = gtk_dialog_get_content_area(GTK_DIALOG(ui.window));
  gtk_container_set_border_width(GTK_CONTAINER(area), 12);
  ui.label = gtk_label_new("");
#if GTK_CHECK_VERSION(3, 16, 0)
  gtk_label_set_xalign(GTK_LABEL(ui.label), 0.0);
#else
  gtk_misc_set_alignment(GTK_MISC(ui.label), 0.0, 0.5);
#endif
  gtk_box_pack_start(GTK_BOX(area), ui.label, FALSE, FALSE, 6);
  ui.bar = gtk_progress_bar_new();
  gtk_widget_set_size_request(ui.bar, 360, -1);
  gtk_box_pack_start(GTK_BOX(area), ui.bar, FALSE, FALSE, 6);
  g_signal_connect(ui.window, "response", G_CALLBACK(on_response), NULL);
  g_signal_connect(ui.window, "delete-event", G_CALLBACK(on_delete), NULL);
  /* Over the image window that ran it; asks GIMP, so before the vtable
   * (which would answer with this very window). */
#if GIMP_CHECK_VERSION(2, 99, 0)
  /* A call from a script (the Script-Fu server, a batch command) has no
   * window: GIMP 3 answers with an empty handle, which libgimpui's
   * gimp_window_set_transient takes as an X window anyway (a CRITICAL on
   * every such run). */
  GBytes *handle = gimp_progress_get_window_handle();
  if (handle && g_bytes_get_size(handle) > 0)
    gimp_window_set_transient_for(GTK_WINDOW(ui.window), handle);
  if (handle) g_bytes_unref(handle);
#else
  gimp_window_set_transient(GTK_WINDOW(ui.window));
#endif
}

/* ---- GIMP's progress, redirected here ----------------------------------- */

static void vt_start(const gchar *message, gboolean cancelable, gpointer data) {
  (void)cancelable, (void)data;
  window_show(message);
}
static void vt_end(gpointer data) { (void)data; }
static void vt_set_text(const gchar *message, gpointer data) {
  (void)data;
  if (ui.window && message) gtk_label_set_text(GTK_LABEL(ui.label), message);
}
static void vt_set_value(gdouble fraction, gpointer data) {
  (void)data;
  if (ui.window) gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(ui.bar), CLAMP(fraction, 0, 1));
}
static void vt_pulse(gpointer data) {
  (void)data;
  if (ui.window) gtk_progress_bar_pulse(GTK_PROGRESS_BAR(ui.bar));
}

static const GimpProgressVtable vtable = {
    .start = vt_start,
    .end = vt_end,
    .set_text = vt_set_text,
    .set_value = vt_set_value,
    .pulse = vt_pulse,
};

void sige_gimp_host_begin(void) {
  if (ui.active) return;
  ui.active = TRUE;
  /* Batch GIMP (gimp-console, scripts without a GUI) has no display: no
   * window, and no progress of GIMP's either. */
  const gchar *display = gimp_display_name();
  if (!display || !*display) return;
  static gboolean ui_ready;
  if (!ui_ready) {
#if GIMP_CHECK_VERSION(2, 99, 0)
    gimp_ui_init("sparse-regenerate");
#else
    gimp_ui_init("sparse-regenerate", FALSE);
#endif
    ui_ready = TRUE;
  }
  window_new();
#if GIMP_CHECK_VERSION(2, 99, 0)
  const gchar *cb = gimp_progress_install_vtable(&vtable, NULL, NULL);
#else
  const gchar *cb = gimp_progress_install_vtable(&vtable, NULL);
#endif
  ui.callback = g_strdup(cb);
}

void sige_gimp_host_end(void) {
  if (!ui.active) return;
  ui.active = FALSE;
  if (ui.callback) {
    gimp_progress_uninstall(ui.callback);
    g_clear_pointer(&ui.callback, g_free);
  }
  if (ui.window) {
    gtk_widget_destroy(ui.window);
    ui.window = ui.label = ui.bar = ui.cancel = NULL;
  }
  ui.pass = NULL;
  if (gdk_display_get_default()) flush_gtk();
}

/* ---- the host the run talks to ------------------------------------------ */

static void host_message(const char *text, gpointer data) {
  (void)data;
  gimp_message(text);
}

static void host_progress_init(const char *what, gpointer data) {
  (void)data;
  window_show(what);
}

static void host_wait(sige_pass *pass, const char *what, gpointer data) {
  (void)data;
  window_show(what);
  if (ui.window) {
    /* the driver's own words, for whoever wonders why it runs on the CPU */
    gtk_widget_set_tooltip_text(ui.label, sige_pass_device_info(pass));
    ui.pass = pass;
  }
  int last = -1;
  while (!sige_pass_done(pass)) {
    if (ui.window) {
      while (gtk_events_pending()) gtk_main_iteration();
      const int pm = (int)(sige_pass_fraction(pass) * 1000);
      if (pm != last) {
        gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(ui.bar), pm / 1000.0);
        last = pm;
      }
    }
    /* the Cancel's latency budget is 0.5 s; 20 ms keeps the window lively
     * without competing with the engine's threads */
    g_usleep(sige_pass_is_full(pass) ? 20000 : 2000);
  }
  ui.pass = NULL;
  window_hide();
}

sige_regen_host sige_gimp_host(gboolean interactive) {
  return (sige_regen_host){
      .message = host_message,
      .progress_init = host_progress_init,
      .wait = host_wait,
      .data = GINT_TO_POINTER(interactive),
  };
}
