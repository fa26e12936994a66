/* Files the plug-in ships beside its binary (tools/install-plugin.sh puts
 * them there for either GIMP): the demo model, the Cityscapes palette and
 * the translations. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* The file `name` next to the plug-in's binary, else in the source tree's
 * data/ (a build-tree binary); NULL if absent. */
gchar *sige_find_data_file(const gchar *name);

/* Binds the gettext domain to the catalogues next to the binary, else to
 * the install prefix's.  Returns that folder (static). */
const gchar *sige_i18n_init(void);

/* The file:// URI of the help folder beside the binary (the user guide as
 * HTML, help/en/gimp-help.xml), or NULL when it is not installed there (a
 * build-tree binary): GIMP is then not told of a help domain it cannot open. */
gchar *sige_help_uri(void);

/* Copies Cityscapes.gpl into palette_dir unless an identical copy is there.
 * Returns TRUE when it wrote the file (the caller refreshes GIMP's
 * palettes). */
gboolean sige_install_palette(const gchar *palette_dir);

G_END_DECLS
