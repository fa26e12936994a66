/* The plug-in's settings as the run uses them, whatever front-end filled
 * them in (GIMP 2.10: gimp_get_data; GIMP 3: a GimpProcedureConfig).  Plain
 * old data, so that GIMP 2.10 can keep it as one blob. */
#pragma once
#include <glib.h>

#include "sige-app/input_kind.h"
#include "sige/device.h"

G_BEGIN_DECLS

#define SIGE_N_RECENT 5
#define SIGE_PATH_MAX 1024
#define SIGE_PROMPT_MAX 1024

typedef enum { SIGE_PRECISION_F32, SIGE_PRECISION_F16 } SigePrecision;
/* The dialog's order; the engine's sige_sampler_kind is mapped explicitly so
 * that remembered settings do not depend on its numbering. */
typedef enum { SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP, SIGE_SAMPLER_CHOICE_DDIM } SigeSamplerChoice;

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
  gint instance_layer;        /* GauGAN instance layer id, -1 = none (per run) */
  gchar recent[SIGE_N_RECENT][SIGE_PATH_MAX];
  /* Stable Diffusion (steps, strength and seed are the fields above; their
   * 0 / -1 stand for SD's own defaults, 50 steps and 0.75) */
  gchar prompt[SIGE_PROMPT_MAX];          /* what the picture shows */
  gchar negative_prompt[SIGE_PROMPT_MAX]; /* what to steer away from */
  gdouble guidance;                       /* classifier-free guidance scale (7.5) */
  gint sd_sampler;                        /* SigeSamplerChoice (DDIM) */
} SigeSettings;

void sige_settings_defaults(SigeSettings *s);
/* Moves path to the front of the recent models (most recent first). */
void sige_settings_add_recent(SigeSettings *s, const gchar *path);
/* The shipped default model for a layer holding `layer` (a label map or a
 * picture, sige_pixels_guess_input_kind): newly allocated, NULL if missing.
 * A picture falls back to the label model when no picture model is
 * installed: its refusal of photos then says what to choose. */
gchar *sige_default_model_path(sige_input_kind layer);
/* s->model, else the default for `layer` (newly allocated; NULL if missing). */
gchar *sige_resolve_model(const SigeSettings *s, sige_input_kind layer);

/* The procedures' Stable Diffusion arguments into *s (both GIMPs): model
 * ("" keeps the last), steps / strength (0 = the default), seed (-1 =
 * the session's), prompt, negative prompt (NULL = ""), guidance (0..100),
 * sampler ("ddim", "dpmsolver++" or "dpm-solver++"; "" or NULL keeps the
 * last).  FALSE with *error naming the argument and what it takes. */
/* The SigeSamplerChoice a script's sampler name means ("ddim", "dpmsolver++"
 * or "dpm-solver++", any case); FALSE for any other name. */
gboolean sige_settings_sd_sampler_from_name(const gchar *name, gint *choice);
/* What sige_settings_sd_sampler_from_name accepts, for messages. */
#define SIGE_SD_SAMPLER_NAMES "\"ddim\" or \"dpmsolver++\""
gboolean sige_settings_set_sd(SigeSettings *s, const gchar *model, gint steps, gdouble strength,
                              gint seed, const gchar *prompt, const gchar *negative,
                              gdouble guidance, const gchar *sampler, GError **error);

/* What Recent shows for a model: the file name and, after a dash, the last
 * two folders ("weights.safetensors — …/models/church"), so that files of
 * the same name can be told apart.  Newly allocated. */
gchar *sige_settings_recent_label(const gchar *path);

/* The settings that outlive a GIMP session: a keyfile (group "settings"),
 * SIGE_SETTINGS_FILE in the user's GIMP profile.  The per-run instance
 * layer is not kept. */
#define SIGE_SETTINGS_FILE "sparse-regenerate.ini"
/* Fills *s with the defaults, then the values in the file.  A missing file
 * is not an error (first start).  A file that cannot be read or parsed, or
 * a value out of range, leaves the default for what could not be read and
 * sets *warning (naming the file and the key); the function never fails
 * otherwise.  Returns TRUE when the file existed and was read whole. */
gboolean sige_settings_load_file(SigeSettings *s, const gchar *path, GError **warning);
/* Writes *s to path atomically (a crash leaves the old file or the new). */
gboolean sige_settings_save_file(const SigeSettings *s, const gchar *path, GError **error);

G_END_DECLS
