#include "sige-app/model_spec.h"

#include <stdlib.h>
#include <string.h>

#include "sige-app/names.h"
#include "sige/error.h"
#include "sige/weights.h"

/* "8_8_8_12_8_6_6_8", "32": digits and underscores only. */
static gboolean all_digits(const char *s, size_t n, gboolean underscores) {
  if (n == 0) return FALSE;
  for (size_t i = 0; i < n; i++)
    if (!g_ascii_isdigit(s[i]) && !(underscores && s[i] == '_')) return FALSE;
  return TRUE;
}

gboolean sige_model_spec_parse(const char *text, sige_model_spec *spec, GError **error) {
  memset(spec, 0, sizeof *spec);
  const char *path = text ? text : "";
  const char *colon = strchr(path, ':');
  if (colon) {
    g_autofree char *word = g_strndup(path, (size_t)(colon - path));
    if (sige_model_kind_parse(NULL, word, &spec->kind, NULL)) {
      spec->has_kind = TRUE;
      path = colon + 1;
    }
  }
  /* the optional CONFIG: of the kinds that take one */
  colon = strchr(path, ':');
  const size_t n = colon ? (size_t)(colon - path) : 0;
  if (spec->has_kind && spec->kind == SIGE_MODEL_GANCOMP_SPADE && all_digits(path, n, TRUE)) {
    g_autofree char *config = g_strndup(path, n);
    if (!sige_gancomp_parse_channels(config, spec->channels, error)) {
      g_prefix_error(error, "model spec '%s': ", text);
      return FALSE;
    }
    spec->has_channels = TRUE;
    path = colon + 1;
  } else if (spec->has_kind && spec->kind == SIGE_MODEL_PD_UNET && all_digits(path, n, FALSE)) {
    const long v = strtol(path, NULL, 10);
    if (v < 1 || v > 65536) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  "model spec '%s': head width %.*s: expected 1 to 65536", text, (int)n, path);
      return FALSE;
    }
    spec->head_dim = (int)v;
    path = colon + 1;
  }
  if (!*path) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "model spec '%s': no weights file (expected "
                "[spade:|ddpm:|pd:[HEAD_DIM:]|gancomp:[CONFIG:]]PATH)",
                text ? text : "");
    return FALSE;
  }
  spec->path = g_strdup(path);
  return TRUE;
}

void sige_model_spec_clear(sige_model_spec *spec) {
  g_clear_pointer(&spec->path, g_free);
}

sige_model *sige_model_spec_load(const sige_model_spec *spec, GError **error) {
  const char *path = spec->path;
  g_autoptr(sige_model) m = sige_model_load(path, error);
  if (!m) return NULL;
  const sige_model_kind got = sige_model_get_kind(m);
  if (spec->has_kind && got != spec->kind) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: %s: expects %s, but the file holds a %s (use %s:PATH)", path,
                sige_model_kind_spec_name(spec->kind), sige_model_kind_description(spec->kind),
                sige_model_kind_name(got), sige_model_kind_spec_name(got));
    return NULL;
  }
  if (spec->head_dim > 0) {
    /* rebuild with the inferred widths and the given head width */
    sige_pd_config cfg = *sige_model_pd_config(m);
    if (cfg.head_dim == spec->head_dim) return g_steal_pointer(&m);
    cfg.head_dim = spec->head_dim;
    g_autoptr(sige_weights) w = sige_weights_load_any(path, error);
    if (!w) return NULL;
    sige_model *m2 = sige_model_new_pd(&cfg, w, error);
    if (!m2) g_prefix_error(error, "%s with head width %d: ", path, spec->head_dim);
    return m2;
  }
  if (spec->has_channels) {
    /* rebuild with the inferred settings (input size, labels, sparse
     * parameters) and the given channels; the weights must have their widths */
    sige_gancomp_config cfg = *sige_model_gancomp_config(m);
    if (!memcmp(cfg.channels, spec->channels, sizeof cfg.channels)) return g_steal_pointer(&m);
    memcpy(cfg.channels, spec->channels, sizeof cfg.channels);
    g_autoptr(sige_weights) w = sige_weights_load_any(path, error);
    if (!w) return NULL;
    sige_model *m2 = sige_model_new_gancomp(&cfg, w, error);
    if (!m2) {
      g_autofree char *config = g_strdup_printf("%d_%d_%d_%d_%d_%d_%d_%d", cfg.channels[0],
                                                cfg.channels[1], cfg.channels[2], cfg.channels[3],
                                                cfg.channels[4], cfg.channels[5], cfg.channels[6],
                                                cfg.channels[7]);
      g_prefix_error(error, "%s with channel configuration %s: ", path, config);
    }
    return m2;
  }
  return g_steal_pointer(&m);
}

sige_model *sige_model_load_spec(const char *text, GError **error) {
  sige_model_spec spec;
  if (!sige_model_spec_parse(text, &spec, error)) return NULL;
  sige_model *m = sige_model_spec_load(&spec, error);
  sige_model_spec_clear(&spec);
  return m;
}
