#include "sige-settings.h"

#include <string.h>

#include "sige-i18n.h"
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
  s->guidance = 7.5;
  s->sd_sampler = SIGE_SAMPLER_CHOICE_DDIM; /* the SD pipeline's only one so far */
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

gchar *sige_default_model_path(sige_input_kind layer) {
  gchar *p = sige_find_data_file(sige_default_model_name(layer));
  if (!p && layer == SIGE_INPUT_IMAGE) p = sige_find_data_file(SIGE_DEFAULT_LABEL_MODEL);
  return p;
}

gchar *sige_resolve_model(const SigeSettings *s, sige_input_kind layer) {
  if (s->model[0]) return g_strdup(s->model);
  return sige_default_model_path(layer);
}

gboolean sige_settings_sd_sampler_from_name(const gchar *name, gint *choice) {
  if (!name) return FALSE;
  if (!g_ascii_strcasecmp(name, "ddim"))
    *choice = SIGE_SAMPLER_CHOICE_DDIM;
  else if (!g_ascii_strcasecmp(name, "dpmsolver++") || !g_ascii_strcasecmp(name, "dpm-solver++"))
    *choice = SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP;
  else
    return FALSE;
  return TRUE;
}

gboolean sige_settings_set_sd(SigeSettings *s, const gchar *model, gint steps, gdouble strength,
                              gint seed, const gchar *prompt, const gchar *negative,
                              gdouble guidance, const gchar *sampler, GError **error) {
  const gchar *bad = NULL, *expected = NULL;
  if (model && strlen(model) >= SIGE_PATH_MAX)
    bad = "model", expected = _("a file name shorter than 1024 bytes");
  else if (steps < 0 || steps > 1000)
    bad = "steps", expected = _("0 (the default) to 1000");
  else if (!(strength >= 0 && strength <= 1))
    bad = "strength", expected = _("0 (the default) to 1");
  else if (seed < -1)
    bad = "seed", expected = _("-1 (the session's) or a number >= 0");
  else if ((prompt && strlen(prompt) >= SIGE_PROMPT_MAX) ||
           (prompt && !g_utf8_validate(prompt, -1, NULL)))
    bad = "prompt", expected = _("UTF-8 text shorter than 1024 bytes");
  else if ((negative && strlen(negative) >= SIGE_PROMPT_MAX) ||
           (negative && !g_utf8_validate(negative, -1, NULL)))
    bad = "negative-prompt", expected = _("UTF-8 text shorter than 1024 bytes");
  else if (!(guidance >= 0 && guidance <= 100))
    bad = "guidance", expected = _("0 to 100");
  gint choice = s->sd_sampler;
  if (!bad && sampler && *sampler && !sige_settings_sd_sampler_from_name(sampler, &choice))
    bad = "sampler", expected = _("\"ddim\" or \"dpmsolver++\"");
  if (bad) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                _("plug-in-sparse-regenerate-sd: the argument %s takes %s."), bad, expected);
    return FALSE;
  }
  if (model && *model) g_strlcpy(s->model, model, sizeof s->model);
  s->steps = steps;
  s->strength = strength;
  if (seed != -1) s->seed = seed;
  g_strlcpy(s->prompt, prompt ? prompt : "", sizeof s->prompt);
  g_strlcpy(s->negative_prompt, negative ? negative : "", sizeof s->negative_prompt);
  s->guidance = guidance;
  s->sd_sampler = choice;
  return TRUE;
}

gchar *sige_settings_recent_label(const gchar *path) {
  g_autofree gchar *base = g_path_get_basename(path);
  g_autofree gchar *dir = g_path_get_dirname(path);
  /* Two folders tell the usual layouts apart (models/church vs
   * models/bedroom) and keep the combo box narrow. */
  g_auto(GStrv) parts = g_strsplit(dir, G_DIR_SEPARATOR_S, -1);
  const guint n = g_strv_length(parts);
  if (n <= 3) return g_strdup_printf("%s \u2014 %s", base, dir);
  return g_strdup_printf("%s \u2014 \u2026/%s/%s", base, parts[n - 2], parts[n - 1]);
}

#define GROUP "settings"

static const gchar *const sampler_names[] = {"dpm-solver++", "ddim"};
static const gchar *const precision_names[] = {"float32", "float16"};
static const struct {
  const gchar *name;
  sige_device device;
} device_names[] = {{"auto", SIGE_DEVICE_AUTO}, {"cpu", SIGE_DEVICE_CPU}, {"cuda", SIGE_DEVICE_CUDA}};

/* One problem per line, all of them in the one warning. */
static void note(GString *problems, const gchar *path, const gchar *key, const gchar *what) {
  g_string_append_printf(problems, "%s%s: [" GROUP "]%s%s: %s", problems->len ? "\n" : "", path,
                         *key ? " " : "", key, what);
}

static gboolean get_int(GKeyFile *kf, const gchar *path, const gchar *key, gint lo, gint hi,
                        gint *out, GString *problems) {
  if (!g_key_file_has_key(kf, GROUP, key, NULL)) return TRUE;
  g_autoptr(GError) e = NULL;
  gint v = g_key_file_get_integer(kf, GROUP, key, &e);
  if (e || v < lo || v > hi) {
    g_autofree gchar *what = g_strdup_printf(_("expected an integer from %d to %d; using %d"), lo, hi,
                                             *out);
    note(problems, path, key, what);
    return FALSE;
  }
  *out = v;
  return TRUE;
}

static gboolean get_double(GKeyFile *kf, const gchar *path, const gchar *key, gdouble lo,
                           gdouble hi, gdouble *out, GString *problems) {
  if (!g_key_file_has_key(kf, GROUP, key, NULL)) return TRUE;
  g_autoptr(GError) e = NULL;
  gdouble v = g_key_file_get_double(kf, GROUP, key, &e);
  if (e || !(v >= lo && v <= hi)) {
    g_autofree gchar *what =
        g_strdup_printf(_("expected a number from %g to %g; using %g"), lo, hi, *out);
    note(problems, path, key, what);
    return FALSE;
  }
  *out = v;
  return TRUE;
}

static gboolean get_name(GKeyFile *kf, const gchar *path, const gchar *key,
                         const gchar *const *names, guint n, gint *out, GString *problems) {
  if (!g_key_file_has_key(kf, GROUP, key, NULL)) return TRUE;
  g_autofree gchar *v = g_key_file_get_string(kf, GROUP, key, NULL);
  for (guint i = 0; v && i < n; i++)
    if (strcmp(v, names[i]) == 0) {
      *out = (gint)i;
      return TRUE;
    }
  g_autofree gchar *all = g_strjoinv(", ", (gchar **)names);
  g_autofree gchar *what = g_strdup_printf(_("expected one of %s; using %s"), all, names[*out]);
  note(problems, path, key, what);
  return FALSE;
}

static gboolean get_text(GKeyFile *kf, const gchar *path, const gchar *key, gchar *out,
                         gsize size, GString *problems) {
  if (!g_key_file_has_key(kf, GROUP, key, NULL)) return TRUE;
  g_autofree gchar *v = g_key_file_get_string(kf, GROUP, key, NULL);
  if (!v || strlen(v) >= size) {
    g_autofree gchar *what =
        g_strdup_printf(_("expected a text (UTF-8, shorter than %u bytes)"), (guint)size);
    note(problems, path, key, what);
    return FALSE;
  }
  g_strlcpy(out, v, size);
  return TRUE;
}

static gboolean get_path(GKeyFile *kf, const gchar *path, const gchar *key, gchar *out,
                         GString *problems) {
  if (!g_key_file_has_key(kf, GROUP, key, NULL)) return TRUE;
  g_autofree gchar *v = g_key_file_get_string(kf, GROUP, key, NULL);
  if (!v || strlen(v) >= SIGE_PATH_MAX) {
    note(problems, path, key, _("expected a file name (UTF-8, shorter than 1024 bytes)"));
    return FALSE;
  }
  g_strlcpy(out, v, SIGE_PATH_MAX);
  return TRUE;
}

gboolean sige_settings_load_file(SigeSettings *s, const gchar *path, GError **warning) {
  sige_settings_defaults(s);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_autoptr(GError) e = NULL;
  if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &e)) {
    if (g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT)) return FALSE;
    g_set_error(warning, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                _("%s: unreadable settings (%s); using the defaults"), path, e->message);
    return FALSE;
  }
  g_autoptr(GString) problems = g_string_new(NULL);
  gboolean ok = TRUE;
  if (!g_key_file_has_group(kf, GROUP)) {
    note(problems, path, "", _("missing; using the defaults"));
    ok = FALSE;
  }
  gint sampler = s->sampler, precision = s->precision, device = 0;
  ok &= get_path(kf, path, "model", s->model, problems);
  ok &= get_int(kf, path, "steps", 0, 1000, &s->steps, problems);
  ok &= get_double(kf, path, "strength", 0, 1, &s->strength, problems);
  ok &= get_int(kf, path, "seed", -1, G_MAXINT, &s->seed, problems);
  ok &= get_name(kf, path, "sampler", sampler_names, G_N_ELEMENTS(sampler_names), &sampler,
                 problems);
  ok &= get_double(kf, path, "threshold", 0.01, 1.01, &s->threshold, problems);
  ok &= get_name(kf, path, "precision", precision_names, G_N_ELEMENTS(precision_names),
                 &precision, problems);
  const gchar *dev_names[G_N_ELEMENTS(device_names) + 1] = {NULL};
  for (guint i = 0; i < G_N_ELEMENTS(device_names); i++) {
    dev_names[i] = device_names[i].name;
    if (device_names[i].device == (sige_device)s->device) device = (gint)i;
  }
  ok &= get_name(kf, path, "device", dev_names, G_N_ELEMENTS(device_names), &device, problems);
  ok &= get_int(kf, path, "threads", 0, 256, &s->threads, problems);
  ok &= get_int(kf, path, "budget-mib", 64, 1 << 20, &s->budget_mib, problems);
  gint sd_sampler = s->sd_sampler;
  ok &= get_text(kf, path, "prompt", s->prompt, sizeof s->prompt, problems);
  ok &= get_text(kf, path, "negative-prompt", s->negative_prompt, sizeof s->negative_prompt,
                 problems);
  ok &= get_double(kf, path, "guidance", 0, 100, &s->guidance, problems);
  ok &= get_name(kf, path, "sd-sampler", sampler_names, G_N_ELEMENTS(sampler_names), &sd_sampler,
                 problems);
  s->sd_sampler = sd_sampler;
  s->sampler = sampler;
  s->precision = precision;
  s->device = (gint)device_names[device].device;
  if (g_key_file_has_key(kf, GROUP, "recent", NULL)) {
    gsize n = 0;
    g_auto(GStrv) recent = g_key_file_get_string_list(kf, GROUP, "recent", &n, NULL);
    /* oldest first, so that each add moves the newer ones to the front */
    for (gsize i = n; recent && i-- > 0;)
      if (*recent[i] && strlen(recent[i]) < SIGE_PATH_MAX) sige_settings_add_recent(s, recent[i]);
    if (!recent) {
      note(problems, path, "recent", _("expected a list of file names separated by ';'"));
      ok = FALSE;
    }
  }
  if (!ok) g_set_error_literal(warning, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                               problems->str);
  return ok;
}

/* 15 digits: the dialog's values (two decimals) read back exactly and read
 * well, where g_key_file_set_double writes 0.45000000000000001. */
static void set_double(GKeyFile *kf, const gchar *key, gdouble v) {
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_key_file_set_value(kf, GROUP, key, g_ascii_formatd(buf, sizeof buf, "%.15g", v));
}

gboolean sige_settings_save_file(const SigeSettings *s, const gchar *path, GError **error) {
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_key_file_set_comment(kf, NULL, NULL,
                         " Sparse Regenerate: the settings of the last run (rewritten by the "
                         "plug-in after each run)",
                         NULL);
  g_key_file_set_string(kf, GROUP, "model", s->model);
  g_key_file_set_integer(kf, GROUP, "steps", s->steps);
  set_double(kf, "strength", s->strength);
  g_key_file_set_integer(kf, GROUP, "seed", s->seed);
  if (s->sampler >= 0 && s->sampler < (gint)G_N_ELEMENTS(sampler_names))
    g_key_file_set_string(kf, GROUP, "sampler", sampler_names[s->sampler]);
  set_double(kf, "threshold", s->threshold);
  if (s->precision >= 0 && s->precision < (gint)G_N_ELEMENTS(precision_names))
    g_key_file_set_string(kf, GROUP, "precision", precision_names[s->precision]);
  for (guint i = 0; i < G_N_ELEMENTS(device_names); i++)
    if ((gint)device_names[i].device == s->device)
      g_key_file_set_string(kf, GROUP, "device", device_names[i].name);
  g_key_file_set_integer(kf, GROUP, "threads", s->threads);
  g_key_file_set_integer(kf, GROUP, "budget-mib", s->budget_mib);
  g_key_file_set_string(kf, GROUP, "prompt", s->prompt);
  g_key_file_set_string(kf, GROUP, "negative-prompt", s->negative_prompt);
  set_double(kf, "guidance", s->guidance);
  if (s->sd_sampler >= 0 && s->sd_sampler < (gint)G_N_ELEMENTS(sampler_names))
    g_key_file_set_string(kf, GROUP, "sd-sampler", sampler_names[s->sd_sampler]);
  const gchar *recent[SIGE_N_RECENT];
  gsize n = 0;
  for (int i = 0; i < SIGE_N_RECENT && s->recent[i][0]; i++) recent[n++] = s->recent[i];
  g_key_file_set_string_list(kf, GROUP, "recent", recent, n);
  return g_key_file_save_to_file(kf, path, error);
}
