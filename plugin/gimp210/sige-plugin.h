/* The GIMP 2.10 front-end: names, remembered settings and the run functions
 * shared by the extension (main.c), the runs (regenerate.c) and the dialog
 * (ui/). */
#pragma once
#include <libgimp/gimp.h>

#include "sige-i18n.h"
#include "sige/backend.h"

#define SIGE_EXTENSION_PROC "extension-sparse-regenerate"
#define SIGE_RUN_PROC "plug-in-sparse-regenerate"
#define SIGE_RESET_PROC "plug-in-sparse-regenerate-reset"
#define SIGE_SETTINGS_KEY "plug-in-sparse-regenerate"
#define SIGE_PARASITE "sparse-regenerate-session"
#define SIGE_OUTPUT_PARASITE "sparse-regenerate-output"
#define SIGE_MENU_PATH "<Image>/Filters/Generative"

#define SIGE_N_RECENT 5
#define SIGE_PATH_MAX 1024

typedef enum { SIGE_PRECISION_F32, SIGE_PRECISION_F16 } SigePrecision;
/* The dialog's order; the engine's sige_sampler_kind is mapped explicitly so
 * that remembered settings do not depend on its numbering. */
typedef enum { SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP, SIGE_SAMPLER_CHOICE_DDIM } SigeSamplerChoice;

/* Everything the dialog sets; kept with gimp_set_data, so plain old data. */
typedef struct {
  gchar model[SIGE_PATH_MAX]; /* "" = the shipped default */
  gint steps;                 /* DDPM; 0 = the default (10) */
  gdouble strength;           /* DDPM (SDEdit); 0 = the default (0.75) */
  gint seed;                  /* -1 = keep the session's */
  gint sampler;               /* DDPM: SigeSamplerChoice */
  gdouble threshold;          /* full pass when the edit covers more than this fraction */
  gint precision;             /* SigePrecision of the activation caches */
  gint device;                /* sige_device: auto, cpu or cuda (older settings: cpu 0, cuda 1) */
  gint threads;               /* 0 = all cores */
  gint budget_mib;            /* memory budget of all sessions */
  gint instance_layer;        /* GauGAN instance layer, -1 = none (per run) */
  gchar recent[SIGE_N_RECENT][SIGE_PATH_MAX];
} SigeSettings;

void sige_settings_defaults(SigeSettings *s);
void sige_settings_load(SigeSettings *s);
void sige_settings_save(const SigeSettings *s);
void sige_settings_add_recent(SigeSettings *s, const gchar *path);

/* The shipped GauGAN demo model and the Cityscapes palette, found next to
 * the plug-in's binary or in the compile-time data folder; NULL if absent. */
gchar *sige_find_data_file(const gchar *name);
/* settings->model, else the shipped default (newly allocated). */
gchar *sige_resolve_model(const SigeSettings *s);

/* Runs the model on the layer (full pass the first time, sparse afterwards)
 * and returns the output layer, or -1 with *error set. */
gint32 sige_run_regenerate(gint32 image, gint32 drawable, const SigeSettings *s,
                           gboolean interactive, GError **error);
/* Forgets the layer's session.  Returns whether there was one. */
gboolean sige_run_reset(gint32 image, gint32 drawable);
/* Drops sessions of images that are gone. */
void sige_sessions_prune(void);
