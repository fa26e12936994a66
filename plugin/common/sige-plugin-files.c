#include "sige-plugin-files.h"

#include <string.h>

#include "sige-i18n.h"

#ifndef SIGE_PLUGIN_DATADIR
#define SIGE_PLUGIN_DATADIR ""
#endif
#ifndef SIGE_LOCALEDIR
#define SIGE_LOCALEDIR ""
#endif

static gchar *binary_dir(void) {
  g_autofree gchar *exe = g_file_read_link("/proc/self/exe", NULL);
  return exe ? g_path_get_dirname(exe) : NULL;
}

gchar *sige_find_data_file(const gchar *name) {
  /* Installed by tools/install-plugin.sh next to the binary; a build-tree
   * binary finds the source tree's data/ through the compile-time folder. */
  g_autofree gchar *dir = binary_dir();
  if (dir) {
    gchar *p = g_build_filename(dir, name, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) return p;
    g_free(p);
  }
  const char *subdirs[] = {"models", "palettes", "clip", ""};
  for (guint i = 0; i < G_N_ELEMENTS(subdirs) && *SIGE_PLUGIN_DATADIR; i++) {
    gchar *p = g_build_filename(SIGE_PLUGIN_DATADIR, subdirs[i], name, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) return p;
    g_free(p);
  }
  return NULL;
}

const gchar *sige_i18n_init(void) {
  static gchar *locale_dir;
  if (!locale_dir) {
    /* GIMP translates the menu labels with the same folder, so both must
     * agree: the catalogues next to the binary win. */
    g_autofree gchar *dir = binary_dir();
    g_autofree gchar *local = dir ? g_build_filename(dir, "locale", NULL) : NULL;
    locale_dir = g_strdup(local && g_file_test(local, G_FILE_TEST_IS_DIR) ? local : SIGE_LOCALEDIR);
    bindtextdomain(GETTEXT_PACKAGE, locale_dir);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
  }
  return locale_dir;
}

gchar *sige_help_uri(void) {
  g_autofree gchar *dir = binary_dir();
  if (!dir) return NULL;
  g_autofree gchar *help = g_build_filename(dir, "help", NULL);
  g_autofree gchar *map = g_build_filename(help, "en", "gimp-help.xml", NULL);
  if (!g_file_test(map, G_FILE_TEST_IS_REGULAR)) return NULL;
  return g_filename_to_uri(help, NULL, NULL);
}

gboolean sige_install_palette(const gchar *palette_dir) {
  g_autofree gchar *src = sige_find_data_file("Cityscapes.gpl");
  if (!src || !palette_dir) return FALSE;
  g_autofree gchar *dst = g_build_filename(palette_dir, "Cityscapes.gpl", NULL);
  g_autofree gchar *want = NULL, *have = NULL;
  gsize n_want = 0, n_have = 0;
  if (!g_file_get_contents(src, &want, &n_want, NULL)) return FALSE;
  if (g_file_get_contents(dst, &have, &n_have, NULL) && n_have == n_want &&
      memcmp(have, want, n_want) == 0)
    return FALSE;
  return g_mkdir_with_parents(palette_dir, 0755) == 0 &&
         g_file_set_contents(dst, want, n_want, NULL);
}
