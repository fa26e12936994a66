/* The "Diffusers folder..." chooser of both dialogs (GTK 2 and GTK 3 share
 * the calls it makes). */
#pragma once
#include <gtk/gtk.h>

G_BEGIN_DECLS

/* Runs a folder chooser over `parent`'s window, starting in the folder of
 * `current` ("sd:FOLDER") when it names one, else in `near_file`'s folder
 * (either may be NULL).  Returns the chosen folder as the model "sd:FOLDER"
 * (g_free it), or NULL when cancelled. */
gchar *sige_choose_sd_folder(GtkWidget *parent, const gchar *current, const gchar *near_file);

G_END_DECLS
