/* GimpProcedureConfig <-> the shared SigeSettings.  The config is what GIMP
 * remembers between runs (last values) and what the dialog edits; the run
 * itself only reads SigeSettings. */
#include <string.h>

#include "sige-gimp3.h"
#include "sige/error.h"

/* The recent models are one aux string, one path per line: a string is
 * what a config remembers without further ado. */
static void recent_from_string(const gchar *text, SigeSettings *s) {
  if (!text) return;
  g_auto(GStrv) lines = g_strsplit(text, "\n", SIGE_N_RECENT + 1);
  for (int i = 0, n = 0; lines[i] && n < SIGE_N_RECENT; i++)
    if (*lines[i] && strlen(lines[i]) < SIGE_PATH_MAX)
      g_strlcpy(s->recent[n++], lines[i], SIGE_PATH_MAX);
}

void sige_gimp3_settings_from_config(GimpProcedureConfig *config, SigeSettings *s) {
  sige_settings_defaults(s);
  g_autofree gchar *model = NULL, *recent = NULL, *prompt = NULL, *negative = NULL;
  gint budget = 0;
  g_object_get(config, "model", &model, "steps", &s->steps, "strength", &s->strength, "seed",
               &s->seed, "threshold", &s->threshold, "threads", &s->threads, "budget-mib",
               &budget, "recent-models", &recent, "prompt", &prompt, "negative-prompt",
               &negative, "guidance", &s->guidance, NULL);
  if (prompt) g_strlcpy(s->prompt, prompt, sizeof s->prompt);
  if (negative) g_strlcpy(s->negative_prompt, negative, sizeof s->negative_prompt);
  s->sd_sampler = gimp_procedure_config_get_choice_id(config, "sd-sampler-choice");
  if (model && strlen(model) < SIGE_PATH_MAX) g_strlcpy(s->model, model, sizeof s->model);
  s->budget_mib = budget;
  s->sampler = gimp_procedure_config_get_choice_id(config, "sampler");
  s->precision = gimp_procedure_config_get_choice_id(config, "precision");
  s->device = gimp_procedure_config_get_choice_id(config, "device");
  recent_from_string(recent, s);
}

gboolean sige_gimp3_config_take_sd_sampler(GimpProcedureConfig *config, GError **error) {
  g_autofree gchar *name = NULL;
  g_object_get(config, "sd-sampler", &name, NULL);
  if (!name || !*name) return TRUE;
  gint choice;
  if (!sige_settings_sd_sampler_from_name(name, &choice)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("%s: the argument sd-sampler takes %s (or \"\" for the last used), not "
                  "\"%s\"."),
                SIGE_RUN_PROC, SIGE_SD_SAMPLER_NAMES, name);
    return FALSE;
  }
  g_object_set(config, "sd-sampler-choice",
               choice == SIGE_SAMPLER_CHOICE_DDIM ? "ddim" : "dpmsolver++", "sd-sampler", "",
               NULL);
  return TRUE;
}

void sige_gimp3_config_add_recent(GimpProcedureConfig *config, const gchar *model) {
  if (!model || !*model) return;
  SigeSettings s;
  sige_gimp3_settings_from_config(config, &s);
  sige_settings_add_recent(&s, model);
  g_autoptr(GString) text = g_string_new(NULL);
  for (int i = 0; i < SIGE_N_RECENT && s.recent[i][0]; i++)
    g_string_append_printf(text, "%s%s", i ? "\n" : "", s.recent[i]);
  g_object_set(config, "recent-models", text->str, NULL);
}
