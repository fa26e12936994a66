#include "sige-plugin.h"

void sige_settings_load(SigeSettings *s) {
  sige_settings_defaults(s);
  /* A settings blob of another size comes from another version: ignore it. */
  if (gimp_get_data_size(SIGE_SETTINGS_KEY) == sizeof *s) gimp_get_data(SIGE_SETTINGS_KEY, s);
  s->model[SIGE_PATH_MAX - 1] = '\0';
  for (int i = 0; i < SIGE_N_RECENT; i++) s->recent[i][SIGE_PATH_MAX - 1] = '\0';
}

void sige_settings_save(const SigeSettings *s) { gimp_set_data(SIGE_SETTINGS_KEY, s, sizeof *s); }
