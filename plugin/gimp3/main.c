/* Sparse Regenerate for GIMP 3: a persistent plug-in.
 *
 * A plug-in that runs as a new process per call would throw away the
 * activation caches that make the second run fast.  GIMP starts the
 * extension procedure (persistent, no arguments) by itself; it declares the
 * user-visible procedures as temporary ones and then serves their calls,
 * keeping the editing sessions in memory until GIMP quits.  Models load
 * lazily on the first run, so the start costs GIMP nothing. */
#include "sige-gimp3.h"

#define SIGE_TYPE_PLUG_IN (sige_plug_in_get_type())
G_DECLARE_FINAL_TYPE(SigePlugIn, sige_plug_in, SIGE, PLUG_IN, GimpPlugIn)

struct _SigePlugIn {
  GimpPlugIn parent_instance;
};

G_DEFINE_TYPE(SigePlugIn, sige_plug_in, GIMP_TYPE_PLUG_IN)

static GList *query_procedures(GimpPlugIn *plug_in) {
  /* The dialog's Help button and F1 on the menu entries ask for the
   * procedure's name in this domain (installed help/ beside the binary). */
  g_autofree gchar *help = sige_help_uri();
  if (help) {
    g_autoptr(GFile) file = g_file_new_for_uri(help);
    gimp_plug_in_set_help_domain(plug_in, SIGE_HELP_DOMAIN, file);
  }
  return g_list_append(NULL, g_strdup(SIGE_EXTENSION_PROC));
}

/* Puts Cityscapes.gpl into the user's palettes so that label maps can be
 * painted with the exact class colours. */
static void install_palette(void) {
  g_autofree gchar *dir = g_build_filename(gimp_directory(), "palettes", NULL);
  if (sige_install_palette(dir)) gimp_palettes_refresh();
}

static GimpValueArray *run_extension(GimpProcedure *procedure, GimpProcedureConfig *config,
                                     gpointer run_data) {
  (void)config, (void)run_data;
  GimpPlugIn *plug_in = gimp_procedure_get_plug_in(procedure);
  sige_i18n_init();
  sige_gimp3_add_procedures(plug_in);
  gimp_procedure_persistent_ready(procedure);
  install_palette();
  /* Serve the temporary procedures from the main loop, which also runs the
   * dialogs of interactive calls. */
  gimp_plug_in_persistent_enable(plug_in);
  g_main_loop_run(g_main_loop_new(NULL, FALSE));
  return gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
}

static GimpProcedure *create_procedure(GimpPlugIn *plug_in, const gchar *name) {
  if (g_strcmp0(name, SIGE_EXTENSION_PROC) != 0) return NULL;
  GimpProcedure *p =
      gimp_procedure_new(plug_in, name, GIMP_PDB_PROC_TYPE_PERSISTENT, run_extension, NULL, NULL);
  gimp_procedure_set_documentation(p, "Sparse Regenerate (resident part)",
                                   "Keeps the editing sessions of Sparse Regenerate in memory.",
                                   NULL);
  gimp_procedure_set_attribution(p, "Sparse Regenerate authors", "Sparse Regenerate authors",
                                 "2024");
  return p;
}

static gboolean set_i18n(GimpPlugIn *plug_in, const gchar *procedure_name, gchar **domain,
                         gchar **catalog_dir) {
  (void)plug_in, (void)procedure_name;
  /* The catalogues tools/install-plugin.sh puts in locale/ next to the
   * binary, under the project's domain (also the 2.10 plug-in's).  Without
   * them (a build without gettext) the plug-in binds the install prefix's
   * itself rather than have GIMP complain about a missing folder. */
  g_autofree gchar *dir = g_path_get_dirname(gimp_get_progname());
  g_autofree gchar *local = g_build_filename(dir, "locale", NULL);
  if (!g_file_test(local, G_FILE_TEST_IS_DIR)) {
    sige_i18n_init();
    return FALSE;
  }
  *domain = g_strdup(GETTEXT_PACKAGE);
  *catalog_dir = g_strdup("locale");
  return TRUE;
}

static void sige_plug_in_class_init(SigePlugInClass *klass) {
  GimpPlugInClass *plug_in_class = GIMP_PLUG_IN_CLASS(klass);
  plug_in_class->query_procedures = query_procedures;
  plug_in_class->create_procedure = create_procedure;
  plug_in_class->set_i18n = set_i18n;
}

static void sige_plug_in_init(SigePlugIn *self) { (void)self; }

GIMP_MAIN(SIGE_TYPE_PLUG_IN)
