/* Reading a reference case's case.json into model configurations. */
#pragma once
#include <json-glib/json-glib.h>
#include "sige/model.h"

typedef struct {
  JsonParser *parser;
  JsonObject *root;
  char *dir;
  char *kind;
} sige_case;

gboolean sige_case_open(sige_case *c, const char *dir, GError **error);
void sige_case_close(sige_case *c);
gboolean sige_case_spade_config(const sige_case *c, sige_spade_config *cfg, GError **error);
/* "sub-mobile-spade-generator": the SPADE settings plus config_str and
 * instancenorm_eps. */
gboolean sige_case_gancomp_config(const sige_case *c, sige_gancomp_config *cfg, GError **error);
gboolean sige_case_ddpm_config(const sige_case *c, sige_ddpm_config *cfg, GError **error);
gboolean sige_case_pd_config(const sige_case *c, sige_pd_config *cfg, GError **error);
/* "sd-unet": the UNet's sizes (the "sige" section's sparse settings are not
 * read yet: the sparse pass is not written). */
gboolean sige_case_sd_unet_config(const sige_case *c, sige_sd_unet_config *cfg, GError **error);
/* "clip-text": the text encoder's sizes (config.mlp_ratio * width for the
 * MLP); which key prefix the weights use is the caller's to set. */
gboolean sige_case_clip_text_config(const sige_case *c, sige_clip_text_config *cfg,
                                    GError **error);
/* The case's "prompts" (g_strfreev). */
char **sige_case_prompts(const sige_case *c, GError **error);
/* The tolerance string of `name` in "tolerances" ("abs 1e-4" / "rms_rel 1e-4"). */
gboolean sige_case_tolerance(const sige_case *c, const char *name, gboolean *rms_rel,
                             double *value, GError **error);
