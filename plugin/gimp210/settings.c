#include <string.h>

#include "sige-plugin.h"

#ifndef SIGE_PLUGIN_DATADIR
#define SIGE_PLUGIN_DATADIR ""
#endif

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

void sige_settings_load(SigeSettings *s) {
  sige_settings_defaults(s);
  /* A settings blob of another size comes from another version: ignore it. */
  if (gimp_get_data_size(SIGE_SETTINGS_KEY) == sizeof *s) gimp_get_data(SIGE_SETTINGS_KEY, s);
  s->model[SIGE_PATH_MAX - 1] = '\0';
  for (int i = 0; i < SIGE_N_RECENT; i++) s->recent[i][SIGE_PATH_MAX - 1] = '\0';
}

void sige_settings_save(const SigeSettings *s) { gimp_set_data(SIGE_SETTINGS_KEY, s, sizeof *s); }

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

gchar *sige_find_data_file(const gchar *name) {
  /* Installed by tools/install-plugin.sh next to the binary; a build-tree
   * binary finds the source tree's data/ through the compile-time folder. */
  g_autofree gchar *exe = g_file_read_link("/proc/self/exe", NULL);
  if (exe) {
    g_autofree gchar *dir = g_path_get_dirname(exe);
    gchar *p = g_build_filename(dir, name, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) return p;
    g_free(p);
  }
  const char *subdirs[] = {"models", "palettes", ""};
  for (guint i = 0; i < G_N_ELEMENTS(subdirs) && *SIGE_PLUGIN_DATADIR; i++) {
    gchar *p = g_build_filename(SIGE_PLUGIN_DATADIR, subdirs[i], name, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) return p;
    g_free(p);
  }
  return NULL;
}

gchar *sige_resolve_model(const SigeSettings *s) {
  if (s->model[0]) return g_strdup(s->model);
  return sige_find_data_file("gaugan-demo.safetensors");
}
