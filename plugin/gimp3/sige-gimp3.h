/* The GIMP 3 front-end: a persistent plug-in (main.c) whose temporary
 * procedures (procedures.c) keep the editing sessions between calls; the
 * runs (regenerate.c), the settings in a GimpProcedureConfig (config.c) and
 * the GimpProcedureDialog (ui/gimp3/sige-dialog.c). */
#pragma once
#include <libgimp/gimp.h>

#include "sige-i18n.h"
#include "sige-names.h"
#include "sige-plugin-files.h"
#include "sige-regen.h"
#include "sige-settings.h"

/* Declares plug-in-sparse-regenerate, plug-in-sparse-regenerate-reset and
 * plug-in-sparse-regenerate-live as temporary procedures of the running
 * extension. */
void sige_gimp3_add_procedures(GimpPlugIn *plug_in);

/* The run's settings from the procedure's config (arguments and auxiliary
 * arguments). */
void sige_gimp3_settings_from_config(GimpProcedureConfig *config, SigeSettings *s);
/* Puts the model first in the config's recent models. */
void sige_gimp3_config_add_recent(GimpProcedureConfig *config, const gchar *model);
/* A script's sd-sampler name ("" = keep the last): checked (an unknown name
 * is an error naming the argument and the names it takes) and moved into
 * the dialog's sd-sampler-choice, which the run reads. */
gboolean sige_gimp3_config_take_sd_sampler(GimpProcedureConfig *config, GError **error);

/* Runs the model on the layer and returns the output layer, or NULL with
 * *error set. */
GimpLayer *sige_gimp3_regenerate(GimpImage *image, GimpDrawable *drawable,
                                 const SigeSettings *s, GimpLayer *instance,
                                 gboolean interactive, GError **error);
/* The same with the host's messages and wait (live mode: no progress
 * window). */
GimpLayer *sige_gimp3_regenerate_host(GimpImage *image, GimpDrawable *drawable,
                                      const SigeSettings *s, GimpLayer *instance,
                                      const sige_regen_host *host, GError **error);
/* Live mode (live.c): watches the layer and regenerates a moment after each
 * stroke until the user stops it; returns the number of updates. */
guint sige_gimp3_live_run(GimpImage *image, GimpDrawable *drawable, const SigeSettings *s);
/* The layer a run on `drawable` regenerates from: drawable itself, or the
 * source of a Sparse Regenerate output layer; NULL with *error set when
 * that source is gone. */
GimpDrawable *sige_gimp3_source_layer(GimpImage *image, GimpDrawable *drawable, GError **error);
/* Drops sessions of images and layers that are gone. */
void sige_gimp3_sessions_prune(void);
