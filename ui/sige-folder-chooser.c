/* A diffusers Stable Diffusion model is a folder (model_index.json, unet/,
 * vae/, text_encoder/...), which a file chooser in open mode cannot pick;
 * it becomes the model as "sd:FOLDER", as scripts name it. */
#include "sige-folder-chooser.h"

#include "sige-i18n.h"

gchar *sige_choose_sd_folder(GtkWidget *parent, const gchar *current, const gchar *near_file) {
  GtkWidget *top = gtk_widget_get_toplevel(parent);
  GtkWidget *fc = gtk_file_chooser_dialog_new(
      _("Choose a Stable Diffusion folder (diffusers)"), GTK_WINDOW(top),
      GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Cancel"), GTK_RESPONSE_CANCEL, _("_Select"),
      GTK_RESPONSE_ACCEPT, NULL);
  gtk_dialog_set_default_response(GTK_DIALOG(fc), GTK_RESPONSE_ACCEPT);
  if (current && g_str_has_prefix(current, "sd:") && current[3])
    gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(fc), current + 3);
  else if (near_file) {
    g_autofree gchar *near = g_path_get_dirname(near_file);
    gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(fc), near);
  }
  gchar *model = NULL;
  if (gtk_dialog_run(GTK_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
    g_autofree gchar *dir = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));
    if (dir) model = g_strconcat("sd:", dir, NULL);
  }
  gtk_widget_destroy(fc);
  return model;
}
