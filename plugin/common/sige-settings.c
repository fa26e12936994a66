#include "sige-settings.h"

#include <string.h>

#include "sige-plugin-files.h"

void sige_settings_defaults(SigeSettings *s) {
  memset(s, 0, sizeof *s);
  s->seed = -1;
  s->sampler = SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP;
  s->threshold = 0.6; /* the engine's default */
  s->precision = SIGE_PRECISION_F32;
  s->device = SIGE_DEVICE_AUTO; /* CUDA when a device is present, else the CPU */
  s->budget_mib = 4096;
  s->instance_layer = -1;
}

void sige_settings_add_recent(SigeSettings *s, const gchar *path) {
  if (!path || !*path || strlen(path) >= SIGE_PATH_MAX) return;
  int found = SIGE_N_RECENT - 1;
  for (int i = 0; i < SIGE_N_RECENT; i++)
    if (strcmp(s->recent[i], path) == 0) {
      found = i;
      break;
    }
  memmove(s->recent[1], s->recent[0], (size_t)found * SIGE_PATH_MAX);
  g_strlcpy(s->recent[0], path, SIGE_PATH_MAX);
}

gchar *sige_resolve_model(const SigeSettings *s) {
  if (s->model[0]) return g_strdup(s->model);
  return sige_find_data_file(SIGE_DEFAULT_MODEL);
}
