#include "sige-host.h"

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "sige-i18n.h"

static void host_message(const char *text, gpointer data) {
  (void)data;
  gimp_message(text);
}

static void host_progress_init(const char *what, gpointer data) {
  (void)data;
  gimp_progress_init(what);
}

static void on_cancel(GtkWidget *w, gint response, gpointer data) {
  (void)w, (void)response;
  sige_pass_cancel(data);
}

static void host_wait(sige_pass *pass, const char *what, gpointer data) {
  const gboolean interactive = GPOINTER_TO_INT(data);
  gimp_progress_init(what);
  GtkWidget *dlg = NULL;
  if (interactive) {
    /* GIMP gives a plug-in no cancel signal of its own progress, so offer a
     * button that raises the session's cancel flag. */
    dlg = gtk_dialog_new_with_buttons(_("Sparse Regenerate"), NULL, 0, _("_Cancel"),
                                      GTK_RESPONSE_CANCEL, NULL);
    GtkWidget *area = gtk_dialog_get_content_area(GTK_DIALOG(dlg));
    gtk_container_set_border_width(GTK_CONTAINER(area), 12);
    gtk_box_pack_start(GTK_BOX(area), gtk_label_new(what), TRUE, TRUE, 0);
    g_signal_connect(dlg, "response", G_CALLBACK(on_cancel), pass);
    gtk_widget_show_all(dlg);
  }
  int last = -1;
  while (!sige_pass_done(pass)) {
    if (dlg)
      while (gtk_events_pending()) gtk_main_iteration();
    const int pm = (int)(sige_pass_fraction(pass) * 1000);
    if (pm != last) {
      gimp_progress_update(pm / 1000.0);
      last = pm;
    }
    g_usleep(sige_pass_is_full(pass) ? 20000 : 2000);
  }
  if (dlg) gtk_widget_destroy(dlg);
  gimp_progress_update(1.0);
}

sige_regen_host sige_gimp_host(gboolean interactive) {
  return (sige_regen_host){
      .message = host_message,
      .progress_init = host_progress_init,
      .wait = host_wait,
      .data = GINT_TO_POINTER(interactive),
  };
}
