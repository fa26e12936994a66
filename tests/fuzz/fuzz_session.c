/* libFuzzer target: the editing session (sige/session.h) with random
 * inputs, edits and difference masks on tiny models with seeded random
 * weights, built once: SPADE generators (32x32 output, ngf 2, 4 classes)
 * and DDPM UNets (8x8 images, ch 8) with several sparse settings (block
 * sizes 3 to 8, dilations 0 to 2).  Each input: a snapshot of an original,
 * then one or two edits through regenerate (the session's own mask) or
 * regenerate_masked (a mask from the input, possibly one that misses the
 * edit, or all ones), sometimes a cancelled call in between.
 *
 * Oracle, besides no crash, leak, UB or hang:
 *   - every call either succeeds or fails with a GError that has a message;
 *   - outputs have the model's output shape and are finite;
 *   - the changed rectangle lies inside the output;
 *   - a call cancelled before it starts fails with SIGE_ERROR_CANCELLED and
 *     leaves the session's output bit for bit as it was;
 *   - where every block is active (an all-ones mask, sparse pass forced) on
 *     a SPADE model, the sparse result equals a dense forward of the edited
 *     input within 2e-5 (float32 caches; the same kernels sum in another
 *     order over the gathered blocks, outputs are tanh values in [-1, 1];
 *     measured at most 1.7e-6 over 400 corpus inputs) or 2e-2 (fp16 caches:
 *     session.h bounds their error by 8e-3 on the tiny GauGAN; measured at
 *     most 2.9e-3 here).  FUZZ_SESSION_REPORT=1 prints the differences.  The UNets freeze their
 *     norm statistics from the snapshot in sparse passes, so their sparse
 *     result is not the dense one of the edit: only the rest is checked.
 *
 * Input layout: [variant][flags][spare byte][pattern length][pattern][per round:
 * pair count, (position hi, lo, value) pairs].  Inputs stay small (fuzz.sh
 * gives this target -max_len=256): the models
 * are tiny so that it runs thousands of passes a second. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "random_weights.h"
#include "sige/context.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/session.h"
#include "sige/sparse.h"

#define N_CLASSES 4
#ifndef TOL_F32 /* (overridable, to measure the margin: -DTOL_F32=0) */
#define TOL_F32 2e-5
#define TOL_F16 2e-2
#endif

typedef struct {
  sige_model *model;
  gboolean spade;
} variant;

/* block size, shortcut block size, mask dilation, pyramid dilation */
static const int settings[][4] = {{3, 1, 0, 0}, {4, 2, 1, 1}, {6, 4, 1, 2}, {8, 3, 2, 0}};
#define N_SETTINGS ((int)G_N_ELEMENTS(settings))
static variant variants[2 * N_SETTINGS];
/* One session per variant and cache precision, made once: a session's
 * context and work buffers cost more than the tiny passes, and every input
 * starts with a snapshot, which replaces all the state a session keeps
 * (caches, current input and output), so an input's run does not depend on
 * the inputs before it. */
static sige_session *sessions[2 * N_SETTINGS][2];
static sige_ctx *dense_ctx;

static void apply_settings(sige_sparse_config *sp, int i) {
  sp->block_size = settings[i][0];
  sp->shortcut_block_size = settings[i][1];
  sp->mask_dilate_radius = settings[i][2];
  sp->pyramid_dilation = settings[i][3];
  sp->diff_eps = 1e-3f;
}

static sige_model *spade_model(int i, GError **error) {
  sige_spade_config c;
  sige_spade_config_init(&c);
  c.ngf = 2;
  c.label_nc = N_CLASSES;
  c.contain_instance = FALSE;
  c.crop_size = 32;
  c.aspect_ratio = 1.0;
  c.num_upsampling_layers = 5;
  c.num_sparse_layers = 5;
  apply_settings(&c.sparse, i);
  g_autoptr(sige_weights) w = sige_random_spade_weights(&c, 1000 + (uint64_t)i, error);
  return w ? sige_model_new_spade(&c, w, error) : NULL;
}

static sige_model *ddpm_model(int i, GError **error) {
  sige_ddpm_config c;
  sige_tiny_ddpm_config(&c);
  c.ch = 8;
  c.groupnorm_groups = 4;
  c.ch_mult[1] = 2;
  c.image_size = 8;
  c.sparse_resolution_threshold = 4;
  apply_settings(&c.sparse, i);
  g_autoptr(sige_weights) w = sige_random_ddpm_weights(&c, 2000 + (uint64_t)i, error);
  return w ? sige_model_new_ddpm(&c, w, error) : NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_glib();
  GError *error = NULL;
  for (int i = 0; i < N_SETTINGS; i++) {
    variants[2 * i] = (variant){spade_model(i, &error), TRUE};
    if (!variants[2 * i].model) g_error("fuzz_session: SPADE %d: %s", i, error->message);
    variants[2 * i + 1] = (variant){ddpm_model(i, &error), FALSE};
    if (!variants[2 * i + 1].model) g_error("fuzz_session: DDPM %d: %s", i, error->message);
  }
  for (size_t i = 0; i < G_N_ELEMENTS(variants); i++)
    for (int fp16 = 0; fp16 < 2; fp16++) {
      sige_session_options o;
      sige_session_options_init(&o);
      o.device = SIGE_DEVICE_CPU;
      o.n_threads = 1;
      o.fp16_caches = fp16;
      o.full_pass_above = 2.0; /* always sparse: the sparse code is the one under test */
      sessions[i][fp16] = sige_session_new(variants[i].model, &o, &error);
      if (!sessions[i][fp16]) g_error("fuzz_session: session %zu: %s", i, error->message);
    }
  dense_ctx = sige_ctx_new(1);
  return 0;
}

/* Bytes in order, then zeros once the input is used up. */
typedef struct {
  const uint8_t *p;
  size_t n, at;
} reader;
static int next(reader *r) { return r->at < r->n ? r->p[r->at++] : 0; }

static void check_error(gboolean ok, GError *error) {
  if (ok == (error != NULL)) abort();
  if (error && (!error->message || !*error->message)) abort();
}

static void check_output(const sige_tensor *out, const sige_tensor *like) {
  if (!out || out->ndim != 4 || SIGE_H(out) != SIGE_H(like) || SIGE_W(out) != SIGE_W(like))
    abort();
  for (size_t i = 0; i < out->numel; i++)
    if (!isfinite(out->data[i])) abort();
}

/* The model input of `bytes` (labels for SPADE, an image for a UNet). */
static sige_tensor *make_input(const variant *v, const guint8 *bytes, int h, int w, int c) {
  GError *error = NULL;
  sige_tensor *t = NULL;
  if (v->spade) {
    g_autofree int32_t *labels = g_new(int32_t, (size_t)h * w);
    for (int i = 0; i < h * w; i++) labels[i] = bytes[i] % N_CLASSES;
    t = sige_semantic_input(labels, NULL, h, w, N_CLASSES, &error);
  } else {
    t = sige_tensor_new4(1, c, h, w, &error);
    if (t)
      for (size_t i = 0; i < t->numel; i++) t->data[i] = bytes[i] / 127.5f - 1.0f;
  }
  if (!t) abort();
  return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = {data, size, 0};
  const int vi = next(&r) % (int)G_N_ELEMENTS(variants);
  const variant *v = &variants[vi];
  const int flags = next(&r);
  const gboolean fp16 = flags & 1, masked = flags & 2, full_mask = flags & 4,
                 second = flags & 8, cancel_first = flags & 16;
  int64_t shape[4];
  sige_model_input_shape(v->model, shape);
  const int c = (int)shape[1], h = (int)shape[2], w = (int)shape[3];
  /* one byte per pixel for labels, per value for images */
  const int n = v->spade ? h * w : c * h * w;

  sige_session *s = sessions[vi][fp16 ? 1 : 0];
  (void)next(&r); /* spare: seeds keep their layout */
  GError *error = NULL;

  /* the original: a pattern of 1 to 32 bytes, tiled (inputs stay short) */
  g_autofree guint8 *a = g_new0(guint8, n);
  guint8 pattern[32];
  const int plen = 1 + next(&r) % 32;
  for (int i = 0; i < plen; i++) pattern[i] = (guint8)next(&r);
  for (int i = 0; i < n; i++) a[i] = pattern[i % plen];
  g_autoptr(sige_tensor) orig = make_input(v, a, h, w, c);
  g_autoptr(sige_tensor) snap = NULL;
  gboolean ok = sige_session_snapshot(s, orig, &snap, &error);
  check_error(ok, error);
  if (!ok) abort(); /* nothing about a valid input can fail on a small model */
  check_output(snap, orig);

  for (int round = 0; round < (second ? 2 : 1); round++) {
    /* edits: (position, value) pairs, up to 16 per round */
    g_autofree guint8 *b = g_memdup2(a, n);
    g_autoptr(sige_mask) mask = sige_mask_new(h, w);
    const int pairs = 1 + next(&r) % 16;
    for (int k = 0; k < pairs; k++) {
      const int pos = (next(&r) << 8 | next(&r)) % n;
      b[pos] = (guint8)next(&r);
      /* the caller's mask marks the edit, or (odd value) a pixel beside it */
      const int px = v->spade ? pos : pos % (h * w);
      const int at = (b[pos] & 1) ? (px + 1) % (h * w) : px;
      mask->data[at] = 1;
    }
    if (full_mask) memset(mask->data, 1, (size_t)h * w);
    g_autoptr(sige_tensor) edited = make_input(v, b, h, w, c);

    if (cancel_first) {
      const gint cancel = 1;
      const sige_tensor *before = sige_session_output(s);
      g_autoptr(sige_tensor) kept = sige_tensor_dup(before, &error);
      if (!kept) abort();
      sige_tensor *none = NULL;
      ok = masked ? sige_session_regenerate_masked(s, edited, mask, NULL, NULL, &cancel, &none,
                                                   NULL, &error)
                  : sige_session_regenerate(s, edited, NULL, NULL, &cancel, &none, NULL, &error);
      check_error(ok, error);
      /* an edit equal to the current input has nothing to cancel */
      if (error) {
        if (!g_error_matches(error, SIGE_ERROR, SIGE_ERROR_CANCELLED) || none) abort();
        g_clear_error(&error);
        if (memcmp(kept->data, sige_session_output(s)->data, kept->numel * sizeof(float)))
          abort();
      }
      if (none) sige_tensor_free(none);
    }

    g_autoptr(sige_tensor) out = NULL;
    sige_rect changed = {-1, -1, -1, -1};
    ok = masked ? sige_session_regenerate_masked(s, edited, mask, NULL, NULL, NULL, &out,
                                                 &changed, &error)
                : sige_session_regenerate(s, edited, NULL, NULL, NULL, &out, &changed, &error);
    check_error(ok, error);
    if (!ok) abort();
    check_output(out, snap);
    if (changed.width < 0 || changed.height < 0 || changed.x < 0 || changed.y < 0 ||
        changed.x + changed.width > SIGE_W(out) || changed.y + changed.height > SIGE_H(out))
      abort();

    if (v->spade && masked && full_mask) {
      if (!sige_session_last_stats(s)->was_sparse) abort();
      g_autoptr(sige_tensor) dense = NULL;
      if (!sige_model_forward_dense(v->model, dense_ctx, edited, 0.0f, &dense, &error)) abort();
      double worst = 0;
      for (size_t i = 0; i < out->numel; i++)
        worst = fmax(worst, fabs((double)out->data[i] - dense->data[i]));
      if (g_getenv("FUZZ_SESSION_REPORT"))
        fprintf(stderr, "fuzz_session: every block active (%s caches): max |sparse - dense| %g\n",
                fp16 ? "fp16" : "f32", worst);
      if (worst > (fp16 ? TOL_F16 : TOL_F32)) {
        fprintf(stderr, "fuzz_session: every block active, sparse vs dense max |diff| %g\n",
                worst);
        abort();
      }
    }
    memcpy(a, b, n);
  }
  return 0;
}
