/* The GIMP 2.10 front-end: names, remembered settings and the run functions
 * shared by the extension (main.c), the runs (regenerate.c) and the dialog
 * (ui/). */
#pragma once
#include <libgimp/gimp.h>

#include "sige-i18n.h"
#include "sige-names.h"
#include "sige-plugin-files.h"
#include "sige-regen.h"
#include "sige-settings.h"

#define SIGE_SETTINGS_KEY "plug-in-sparse-regenerate"
/* GIMP 2.10's menu entry for SIGE_RESET_PROC (main.c says why). */
#define SIGE_RESET_MENU_PROC "plug-in-sparse-regenerate-reset-menu"

/* The settings of the last run: kept with gimp_set_data as one blob for
 * this GIMP session, and in the profile's SIGE_SETTINGS_FILE for the next. */
void sige_settings_load(SigeSettings *s);
void sige_settings_save(const SigeSettings *s);

/* Runs the model on the layer (full pass the first time, sparse afterwards;
 * plugin/common/sige-regen.c) and returns the output layer, or -1 with
 * *error set. */
gint32 sige_gimp210_regenerate(gint32 image, gint32 drawable, const SigeSettings *s,
                           gboolean interactive, GError **error);
/* The same with the host's messages and wait (live mode: no progress bar,
 * its own window kept responsive). */
gint32 sige_gimp210_regenerate_host(gint32 image, gint32 drawable, const SigeSettings *s,
                                    const sige_regen_host *host, GError **error);
/* Live mode (live.c): watches the layer and regenerates after each
 * stroke until the user stops it; returns when stopped. */
void sige_live_run(gint32 image, gint32 drawable, const SigeSettings *s);
/* The layer a run on `drawable` regenerates from: drawable itself, or the
 * source of a Sparse Regenerate output layer; -1 with *error set when that
 * source is gone. */
gint32 sige_gimp210_source_layer(gint32 image, gint32 drawable, GError **error);
/* Drops sessions of images that are gone. */
void sige_sessions_prune(void);
