/* The editing session: the API the GIMP plug-in and the command-line tool
 * share.
 *
 *   session = sige_session_new(model, &options, &error);
 *   sige_session_snapshot(session, original, &out, &error);     full pass, caches kept
 *   loop:
 *     sige_session_regenerate(session, edited, progress, data, &cancel,
 *                             &out, &changed, &error);             sparse pass
 *
 * Each regenerate diffs `edited` against the session's current input (the
 * snapshot, or the last successful edit), recomputes only the blocks the
 * difference reaches, writes them into the caches, and makes `edited` the new
 * current input.  An edit with no difference returns the cached output with
 * no compute.  A cancelled or failed call leaves the session exactly as it
 * was (the caches are restored from an undo log of the blocks the pass
 * overwrote; no full-size activation is ever copied).
 *
 * Inputs are model inputs: the semantic tensor for SPADE (see
 * sige_semantic_input), the noisy image x_t for a single DDPM UNet forward
 * (with the timestep given in the options) — or, with options.sdedit, clean
 * images for SDEdit editing with a DDPM UNet:
 *
 *   snapshot(x0)     a full pass at every step of the sampler's schedule on the
 *                    original's noised trajectory, one cache set per step;
 *                    the output is x0 itself (nothing to regenerate yet)
 *   regenerate(x0')  denoises x0' from the sampler's noise level with sparse
 *                    passes against each step's caches, resetting x to the
 *                    current trajectory outside the difference mask after
 *                    every step; the output is the edited image. */
#pragma once
#include <glib.h>
#include <stdint.h>
#include "sige/context.h"
#include "sige/device.h"
#include "sige/model.h"
#include "sige/sampler.h"
#include "sige/stats.h"
#include "sige/tensor.h"

G_BEGIN_DECLS

typedef struct sige_session sige_session;

typedef struct {
  int n_threads;        /* <= 0: SIGE_NUM_THREADS or all cores */
  /* Where the passes run (device.h; default CPU).  The caches live there
   * between calls; inputs and outputs are host tensors either way.  CUDA
   * without a usable device fails sige_session_new ("no CUDA device: ...");
   * AUTO then runs on the CPU (sige_session_device_info says why). */
  sige_device device;
  float timestep;       /* DDPM: the timestep of the single forward */
  /* When the dilated difference covers more than this fraction of the
   * input, run a full pass instead of a sparse one (it is then cheaper, and
   * gives exactly the dense result).  > 1 disables it. */
  double full_pass_above;
  /* Store the activation caches as IEEE half (default FALSE): half the cache
   * memory, for a small output error.  Computation stays float32; each
   * cached value is rounded once when stored (relative error <= 2^-11), and
   * the full pass goes on with the rounded values so that sparse passes stay
   * consistent with it: the snapshot's output already carries the rounding,
   * and an edit changes only the pixels it reaches.  Outputs differ from a
   * float32-cache session's by at most 8e-3 on the tiny GauGAN reference
   * (tanh images) and 2e-4 on the tiny DDPM one (measured; bounded in
   * tests/unit/session_fp16, see docs/SPARSE-ENGINE.md, "fp16 caches").  The
   * current input and output stay float32. */
  gboolean fp16_caches;
  /* SDEdit with a DDPM UNet (see the top of this file). */
  gboolean sdedit;
  sige_sampler_config sampler; /* schedule, steps, noise level */
  guint64 seed;                /* of the session's fixed noise tensor */
  /* Refuse a snapshot whose caches would exceed this many bytes (0: no
   * limit) with SIGE_ERROR_OVER_BUDGET; the error says what would fit. */
  size_t memory_budget;
  /* How the CPU runs 3x3 convolutions (context.h); AUTO (the default)
   * keeps the context's starting policy: SIGE_CONV from the environment,
   * or Winograd where the measured rule picks it. */
  sige_conv_policy conv_policy;
  /* Before each pass, run with as many threads as CPUs are free (at most
   * n_threads; sige_ctx_fit_threads).  Default FALSE: the thread count is
   * fixed, and with it every reduction's order, so outputs do not depend
   * on the machine's load; the front-ends (sige_edit_session_options) turn
   * it on. */
  gboolean follow_free_cpus;
} sige_session_options;
void sige_session_options_init(sige_session_options *o);

typedef struct {
  int x, y, width, height; /* width = 0: nothing changed */
} sige_rect;

typedef void (*sige_progress_fn)(double fraction, void *user_data);

/* The model is borrowed: it must outlive the session. */
sige_session *sige_session_new(const sige_model *model, const sige_session_options *options,
                               GError **error);
void sige_session_free(sige_session *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_session, sige_session_free)

/* SDEdit: use this noise tensor (the input's shape) instead of the seeded
 * one; call before the snapshot. */
gboolean sige_session_set_noise(sige_session *s, const sige_tensor *noise, GError **error);

/* Full pass on `input`; keeps the caches.  *output (optional) receives a new
 * tensor with the model output. */
gboolean sige_session_snapshot(sige_session *s, const sige_tensor *input, sige_tensor **output,
                               GError **error);
/* The same with progress and cancel (as for regenerate; an SDEdit snapshot
 * runs a full pass per step).  A cancelled or failed snapshot keeps the
 * previous one, if any. */
gboolean sige_session_snapshot_full(sige_session *s, const sige_tensor *input,
                                    sige_progress_fn progress, void *user_data,
                                    const gint *cancel, sige_tensor **output, GError **error);
gboolean sige_session_has_snapshot(const sige_session *s);

/* Sparse pass on `edited` (same shape as the snapshot).  progress may be
 * NULL; cancel may be NULL, else polled between layers (set it to non-zero
 * from any thread to stop; the call then fails with SIGE_ERROR_CANCELLED).
 * *output (optional) receives a new tensor; *changed (optional) the bounding
 * rectangle of output pixels that differ from the previous output. */
gboolean sige_session_regenerate(sige_session *s, const sige_tensor *edited,
                                 sige_progress_fn progress, void *user_data, const gint *cancel,
                                 sige_tensor **output, sige_rect *changed, GError **error);

/* Like regenerate, with the (dilated) difference mask given by the caller
 * instead of computed from the inputs: for models whose mask comes from
 * another space than their input (a diffusion UNet's x_t is edited where the
 * clean image x_0 was).  mask (sparse.h) is at the input's resolution, or
 * at the model's mask resolution where that differs (the SD VAE decoder's
 * input is the latent, its mask the image's). */
gboolean sige_session_regenerate_masked(sige_session *s, const sige_tensor *edited,
                                        const void *mask, sige_progress_fn progress,
                                        void *user_data, const gint *cancel,
                                        sige_tensor **output, sige_rect *changed,
                                        GError **error);

/* The difference mask an edit would use (dilated, input resolution). */
gboolean sige_session_edit_ratio(const sige_session *s, const sige_tensor *edited,
                                 double *ratio, GError **error);

/* Bytes held by the activation caches (F16 or F32 elements) and the current
 * input and output (always F32). */
size_t sige_session_cache_bytes(const sige_session *s);
const sige_session_stats *sige_session_last_stats(const sige_session *s);
/* Per layer group of the last pass (empty before one, and after a skipped
 * pass); *n receives the count.  Owned by the session. */
const sige_layer_stats *sige_session_last_layer_stats(const sige_session *s, int *n);
/* The device that runs the session's passes (cpu, cuda or sim) and a line
 * for users naming it (sige_ctx_device_info). */
sige_device sige_session_device(const sige_session *s);
const char *sige_session_device_info(const sige_session *s);
/* The current output (owned by the session), or NULL before a snapshot. */
const sige_tensor *sige_session_output(const sige_session *s);

G_END_DECLS
