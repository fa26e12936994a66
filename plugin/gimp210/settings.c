#include "sige-plugin.h"

/* The session's blob (gimp_set_data) if this GIMP has one, else the
 * keyfile in the profile that the last session wrote. */
void sige_settings_load(SigeSettings *s) {
  sige_settings_defaults(s);
  /* A settings blob of another size comes from another version: ignore it. */
  if (gimp_get_data_size(SIGE_SETTINGS_KEY) == sizeof *s) {
    gimp_get_data(SIGE_SETTINGS_KEY, s);
  } else {
    g_autofree gchar *path = gimp_personal_rc_file(SIGE_SETTINGS_FILE);
    g_autoptr(GError) warning = NULL;
    sige_settings_load_file(s, path, &warning);
    static gboolean warned; /* once per GIMP session: the next run rewrites the file */
    if (warning && !warned) {
      warned = TRUE;
      g_printerr("sparse-regenerate: %s\n", warning->message);
      gimp_message(warning->message);
    }
  }
  s->model[SIGE_PATH_MAX - 1] = '\0';
  for (int i = 0; i < SIGE_N_RECENT; i++) s->recent[i][SIGE_PATH_MAX - 1] = '\0';
}

void sige_settings_save(const SigeSettings *s) {
  gimp_set_data(SIGE_SETTINGS_KEY, s, sizeof *s);
  g_autofree gchar *path = gimp_personal_rc_file(SIGE_SETTINGS_FILE);
  g_autoptr(GError) error = NULL;
  if (!sige_settings_save_file(s, path, &error))
    g_printerr("sparse-regenerate: the settings are not kept for the next GIMP session: %s\n",
               error->message);
}
