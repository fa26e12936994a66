/* Helpers of the sparse unit tests: random tensors, a naive reference
 * convolution (double accumulation, independent of the engine's GEMM path)
 * and mask construction. */
#pragma once
#include "test_util.h"

#include <math.h>
#include <string.h>

#include "sige/context.h"
#include "sige/ops.h"
#include "sige/sparse.h"
#include "sige/tensor.h"

static inline sige_tensor *sp_new4(int n, int c, int h, int w) {
  GError *err = NULL;
  sige_tensor *t = sige_tensor_new4(n, c, h, w, &err);
  if (!t) fail_msg("tensor: %s", err->message);
  return t;
}

static inline sige_tensor *sp_new_blocks(int nb, int c, int side) {
  sige_tensor *t = sp_new4(nb, c, side, side);
  t->layout = SIGE_LAYOUT_CNHW;
  return t;
}

static inline void sp_fill(sige_tensor *t, sige_test_rng *r, float lo, float hi) {
  for (size_t i = 0; i < t->numel; i++) t->data[i] = sige_test_rng_uniform(r, lo, hi);
}

static inline void sp_fill_value(sige_tensor *t, float v) {
  for (size_t i = 0; i < t->numel; i++) t->data[i] = v;
}

/* Offset of logical element (n, c, y, x) whatever the layout. */
static inline size_t sp_at(const sige_tensor *t, int n, int c, int y, int x) {
  const size_t N = (size_t)SIGE_N(t), C = (size_t)SIGE_C(t), H = (size_t)SIGE_H(t),
               W = (size_t)SIGE_W(t);
  return t->layout == SIGE_LAYOUT_CNHW ? (((size_t)c * N + (size_t)n) * H + (size_t)y) * W + (size_t)x
                                       : (((size_t)n * C + (size_t)c) * H + (size_t)y) * W + (size_t)x;
}

/* out = conv(x, w, b) with stride s and zero padding (top, bottom, left,
 * right); works on NCHW and CNHW tensors (out must be allocated). */
static inline void sp_naive_conv(const sige_tensor *x, const sige_tensor *w, const sige_tensor *b,
                                 int s, int pt, int pl, sige_tensor *out) {
  const int n = SIGE_N(x), cin = SIGE_C(x), h = SIGE_H(x), wd = SIGE_W(x);
  const int cout = SIGE_C(out), k = SIGE_H(w);
  assert_int_equal(SIGE_C(w), cin);
  assert_int_equal(SIGE_N(out), n);
  for (int in = 0; in < n; in++)
    for (int co = 0; co < cout; co++)
      for (int oy = 0; oy < SIGE_H(out); oy++)
        for (int ox = 0; ox < SIGE_W(out); ox++) {
          double acc = b ? b->data[co] : 0.0;
          for (int ci = 0; ci < cin; ci++)
            for (int ky = 0; ky < k; ky++)
              for (int kx = 0; kx < k; kx++) {
                const int y = oy * s - pt + ky, xx = ox * s - pl + kx;
                if (y < 0 || y >= h || xx < 0 || xx >= wd) continue;
                acc += (double)x->data[sp_at(x, in, ci, y, xx)] *
                       (double)w->data[(((size_t)co * cin + ci) * k + ky) * k + kx];
              }
          out->data[sp_at(out, in, co, oy, ox)] = (float)acc;
        }
}

/* The engine's convolution on a block batch (CNHW in, CNHW out, no padding). */
static inline void sp_block_conv(sige_ctx *ctx, const sige_tensor *blocks, const sige_tensor *w,
                                 const sige_tensor *b, int stride, sige_tensor *out) {
  sige_conv2d_params p = sige_conv2d_params_simple(stride, 0);
  GError *err = NULL;
  if (!sige_conv2d(ctx, blocks, w, b, &p, out, &err)) fail_msg("sige_conv2d: %s", err->message);
}

static inline sige_mask *sp_mask_from_rows(int h, int w, const char *const *rows) {
  sige_mask *m = sige_mask_new(h, w);
  for (int y = 0; y < h; y++) {
    assert_int_equal((int)strlen(rows[y]), w);
    for (int x = 0; x < w; x++) m->data[(size_t)y * w + x] = rows[y][x] == '#';
  }
  return m;
}

static inline void sp_assert_mask_equal(const sige_mask *got, const sige_mask *want,
                                        const char *what) {
  if (got->h != want->h || got->w != want->w)
    fail_msg("%s: size %dx%d, expected %dx%d", what, got->h, got->w, want->h, want->w);
  for (int y = 0; y < got->h; y++)
    for (int x = 0; x < got->w; x++) {
      const size_t i = (size_t)y * got->w + x;
      if (!!got->data[i] != !!want->data[i])
        fail_msg("%s: differs at (%d, %d): got %d, expected %d (%" G_GINT64_FORMAT
                 " vs %" G_GINT64_FORMAT " set)", what, y, x, got->data[i], want->data[i],
                 sige_mask_count(got), sige_mask_count(want));
    }
}
