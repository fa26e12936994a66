/* The parameters of an edit, as the user gives them (`sige edit` options,
 * the plug-ins' settings), and the one home of their rules: defaults, the
 * accepted ranges, how strength becomes the SDEdit start and which sampler a
 * model runs.  sige_edit_session_options() turns them into the engine's
 * session options for a model. */
#pragma once
#include <glib.h>

#include "sige/model.h"
#include "sige/session.h"

G_BEGIN_DECLS

/* sampler: the model's own sampler (DPM-Solver++ for DDPM, PD for PD). */
#define SIGE_EDIT_SAMPLER_DEFAULT (-1)

typedef struct {
  /* SDEdit (DDPM, PD); ignored by label-map models. */
  double strength; /* noise level / the schedule's length, in (0, 1]; 0: the
                      sampler's default level (DDPM 750/1000, PD 5/8) */
  int steps;       /* >= 1; 0: DDPM 10, PD one step per noise level */
  int sampler;     /* a sige_sampler_kind, or SIGE_EDIT_SAMPLER_DEFAULT */
  guint64 seed;    /* noise seed */
  /* every model */
  sige_device device;
  int n_threads;          /* <= 0: all cores */
  gboolean fp16_caches;   /* activation caches in fp16 */
  double full_pass_above; /* <= 0: the engine's default */
  size_t memory_budget;   /* bytes a snapshot may hold; 0: no limit */
} sige_edit_params;

/* The defaults above (device auto, seed 0). */
void sige_edit_params_init(sige_edit_params *p);

/* Whether a model kind runs a sampler: DDPM and SD UNets DDIM and
 * DPM-Solver++, PD UNets the PD sampler, label-map models none. */
gboolean sige_edit_sampler_fits(sige_model_kind model, sige_sampler_kind sampler);

/* Session options for p on model m.  The rules (SIGE_ERROR_INVALID naming
 * the setting, the value and what would work):
 *   strength outside [0, 1] is refused; the SDEdit start is the noise level
 *     round(strength * schedule length), at least 1;
 *   steps < 0 is refused; more steps than noise levels is refused;
 *     DPM-Solver++ needs at least 2;
 *   a sampler the model does not run (sige_edit_sampler_fits) is refused.
 * Label-map models take none of the SDEdit settings and check none. */
gboolean sige_edit_session_options(const sige_model *m, const sige_edit_params *p,
                                   sige_session_options *o, GError **error);

/* The values a user types for the strength and the steps (`sige edit
 * --strength`, `--steps`): a strength in (0, 1], steps from 1 to 1000, the
 * whole text a number; anything else (NaN, 0, a negative number, "0.5x") is
 * SIGE_ERROR_INVALID naming the option and the text.  The defaults are had
 * by leaving the option out (0 in sige_edit_params is the default only for
 * callers that have no "left out", such as the plug-ins' PDB arguments). */
gboolean sige_edit_strength_parse(const char *option, const char *text, double *strength,
                                  GError **error);
gboolean sige_edit_steps_parse(const char *option, const char *text, int *steps,
                               GError **error);

/* Where an edit ran out of memory, for the message that says so. */
typedef enum {
  SIGE_EDIT_PHASE_WEIGHTS,  /* loading the weights */
  SIGE_EDIT_PHASE_IMAGE,    /* decoding an image (PNG, a layer) */
  SIGE_EDIT_PHASE_CACHES,   /* setting up the session: work buffers, cache allocation */
  SIGE_EDIT_PHASE_SNAPSHOT, /* the recording pass that fills the caches */
  SIGE_EDIT_PHASE_SPARSE,   /* the sparse pass of an edit */
} sige_edit_phase;

/* Where the user sets what the remedies name. */
typedef enum { SIGE_EDIT_UI_CLI, SIGE_EDIT_UI_PLUGIN } sige_edit_ui;

/* When *error says out of memory (SIGE_ERROR_NOMEM, G_FILE_ERROR_NOMEM),
 * rewrites it to name the phase and what to try, in the words of `ui`:
 * fewer threads, a smaller image, fp16 caches (unless p has them already), a
 * memory budget (which refuses an edit that will not fit before the pass
 * instead of failing in it), or, for the weights, more memory.  The engine's
 * own message stays, in parentheses.  Any other error, and no error, are left
 * as they are.  p may be NULL (before the parameters are known). */
void sige_edit_explain_nomem(GError **error, sige_edit_phase phase, const sige_edit_params *p,
                             sige_edit_ui ui);

G_END_DECLS
