#include "cli_input.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sige-app/image_files.h"
#include "sige/error.h"

sige_tensor *sige_cli_read_input(const sige_model *model, const char *path,
                                 const char *instance_path, GError **error) {
  sige_input_report report = {0, 0};
  sige_tensor *t = sige_model_input_from_png(model, path, instance_path, &report, error);
  if (t && report.n_nearest > 0)
    fprintf(stderr,
            "sige: warning: %s: %" G_GINT64_FORMAT " pixels (%.2f %%) are not Cityscapes "
            "colours; mapped to the nearest class\n",
            path, report.n_nearest, 100.0 * report.n_nearest / (double)MAX(report.n_pixels, 1));
  return t;
}

/* "8_8_8_12_8_6_6_8": digits and underscores only. */
static gboolean looks_like_config(const char *s, size_t n) {
  if (n == 0) return FALSE;
  for (size_t i = 0; i < n; i++)
    if (!g_ascii_isdigit(s[i]) && s[i] != '_') return FALSE;
  return TRUE;
}

sige_model *sige_cli_load_model(const char *spec, GError **error) {
  static const struct {
    const char *prefix;
    sige_model_kind kind;
    const char *what;
  } kinds[] = {
      {"spade:", SIGE_MODEL_SPADE, "a SPADE (GauGAN) generator"},
      {"ddpm:", SIGE_MODEL_DDPM_UNET, "a DDPM UNet"},
      {"pd:", SIGE_MODEL_PD_UNET, "a PD UNet"},
      {"gancomp:", SIGE_MODEL_GANCOMP_SPADE, "a GAN-Compression sub-mobile SPADE generator"},
  };
  const char *path = spec;
  int want = -1;
  for (int i = 0; i < (int)G_N_ELEMENTS(kinds); i++)
    if (g_str_has_prefix(spec, kinds[i].prefix)) {
      want = i;
      path = spec + strlen(kinds[i].prefix);
      break;
    }
  /* gancomp:CONFIG:PATH overrides the file's channel configuration,
   * pd:HEAD_DIM:PATH its attention head width */
  g_autofree char *config_str = NULL;
  if (want >= 0 && (kinds[want].kind == SIGE_MODEL_GANCOMP_SPADE ||
                    kinds[want].kind == SIGE_MODEL_PD_UNET)) {
    const char *colon = strchr(path, ':');
    if (colon && looks_like_config(path, (size_t)(colon - path)) &&
        (kinds[want].kind == SIGE_MODEL_GANCOMP_SPADE || !memchr(path, '_', (size_t)(colon - path)))) {
      config_str = g_strndup(path, (size_t)(colon - path));
      path = colon + 1;
    }
  }
  if (!*path) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "--model %s: no weights file (expected [spade:|ddpm:|pd:[HEAD_DIM:]|gancomp:[CONFIG:]]PATH)",
                spec);
    return NULL;
  }
  int channels[8], head_dim = 0;
  if (config_str && kinds[want].kind == SIGE_MODEL_PD_UNET) {
    head_dim = atoi(config_str);
    if (head_dim < 1 || head_dim > 65536) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  "--model %s: head width %s: expected a positive number", spec, config_str);
      return NULL;
    }
  } else if (config_str && !sige_gancomp_parse_channels(config_str, channels, error)) {
    g_prefix_error(error, "--model %s: ", spec);
    return NULL;
  }
  g_autoptr(sige_model) m = sige_model_load(path, error);
  if (!m) return NULL;
  const sige_model_kind got = sige_model_get_kind(m);
  if (want >= 0 && got != kinds[want].kind) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: --model %.*s expects %s, but the file holds a %s (use %s)", path,
                (int)strlen(kinds[want].prefix) - 1, kinds[want].prefix, kinds[want].what,
                sige_model_kind_name(got), got == SIGE_MODEL_SPADE ? "spade:PATH"
                                           : got == SIGE_MODEL_DDPM_UNET ? "ddpm:PATH"
                                           : got == SIGE_MODEL_PD_UNET ? "pd:PATH"
                                                                       : "gancomp:PATH");
    return NULL;
  }
  if (head_dim > 0) {
    /* rebuild with the inferred widths and the given head width */
    sige_pd_config cfg = *sige_model_pd_config(m);
    if (cfg.head_dim == head_dim) return g_steal_pointer(&m);
    cfg.head_dim = head_dim;
    g_autoptr(sige_weights) w = sige_weights_load_any(path, error);
    if (!w) return NULL;
    sige_model *m2 = sige_model_new_pd(&cfg, w, error);
    if (!m2) g_prefix_error(error, "%s with head width %d: ", path, head_dim);
    return m2;
  }
  if (config_str) {
    /* rebuild with the inferred settings (input size, labels, sparse
     * parameters) and the given channels; the weights must have their widths */
    sige_gancomp_config cfg = *sige_model_gancomp_config(m);
    if (!memcmp(cfg.channels, channels, sizeof channels)) return g_steal_pointer(&m);
    memcpy(cfg.channels, channels, sizeof channels);
    g_autoptr(sige_weights) w = sige_weights_load_any(path, error);
    if (!w) return NULL;
    sige_model *m2 = sige_model_new_gancomp(&cfg, w, error);
    if (!m2) g_prefix_error(error, "%s with channel configuration %s: ", path, config_str);
    return m2;
  }
  return g_steal_pointer(&m);
}
