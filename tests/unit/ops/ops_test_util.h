/* Shared helpers of the operator tests: a fixed-seed PRNG, tensor fill and a
 * tolerance-checked comparison against double-precision references. */
#pragma once
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "sige/context.h"
#include "sige/error.h"
#include "sige/ops.h"
#include "sige/rng.h"
#include "sige/tensor.h"

/* The seeded generator of sige/rng.h driven by a bare state word. */
static inline uint64_t ot_next(uint64_t *s) {
  sige_rng r = {.state = *s};
  const uint64_t v = sige_rng_next(&r);
  *s = r.state;
  return v;
}

/* Uniform in [lo, hi). */
static inline float ot_uniform(uint64_t *s, float lo, float hi) {
  return lo + (hi - lo) * (float)((double)(ot_next(s) >> 40) / (double)(1ull << 24));
}

static inline void ot_fill(sige_tensor *t, uint64_t *s, float lo, float hi) {
  for (size_t i = 0; i < t->numel; i++) t->data[i] = ot_uniform(s, lo, hi);
}

static inline sige_tensor *ot_new4(int n, int c, int h, int w, sige_layout layout) {
  sige_tensor *t = sige_tensor_new4(n, c, h, w, NULL);
  assert_non_null(t);
  t->layout = layout;
  return t;
}

static inline sige_tensor *ot_new1(int n) {
  int64_t s[1] = {n};
  sige_tensor *t = sige_tensor_new(1, s, NULL);
  assert_non_null(t);
  return t;
}

static inline sige_tensor *ot_new2(int a, int b) {
  int64_t s[2] = {a, b};
  sige_tensor *t = sige_tensor_new(2, s, NULL);
  assert_non_null(t);
  return t;
}

/* Flat index of logical element (n, c, h, w) whatever the layout. */
static inline size_t ot_idx(const sige_tensor *t, int n, int c, int h, int w) {
  const size_t N = (size_t)t->shape[0], C = (size_t)t->shape[1];
  const size_t H = (size_t)t->shape[2], W = (size_t)t->shape[3];
  if (t->layout == SIGE_LAYOUT_CNHW) return (((size_t)c * N + n) * H + h) * W + w;
  return (((size_t)n * C + c) * H + h) * W + w;
}

static inline float ot_at(const sige_tensor *t, int n, int c, int h, int w) {
  return t->data[ot_idx(t, n, c, h, w)];
}

/* Fails the test at the first element with |got - ref| > atol + rtol*|ref|,
 * printing where it happened. */
static inline void ot_expect_close(const char *what, const float *got, const double *ref,
                                   size_t n, double atol, double rtol) {
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double err = fabs((double)got[i] - ref[i]);
    const double tol = atol + rtol * fabs(ref[i]);
    if (!(err <= tol)) {
      print_error("%s: element %zu is %.9g, expected %.9g (err %.3g > tol %.3g)\n", what, i,
                  (double)got[i], ref[i], err, tol);
      fail();
    }
    if (err > worst) worst = err;
  }
  (void)worst;
}

/* The context every test uses: SIGE_NUM_THREADS (2 under meson test). */
static inline int ot_setup_ctx(void **state) {
  *state = sige_ctx_new(0);
  return *state ? 0 : -1;
}

static inline int ot_teardown_ctx(void **state) {
  sige_ctx_free(*state);
  return 0;
}

/* Same with a per-element tolerance. */
static inline void ot_expect_within(const char *what, const float *got, const double *ref,
                                    const double *tol, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const double err = fabs((double)got[i] - ref[i]);
    if (!(err <= tol[i])) {
      print_error("%s: element %zu is %.9g, expected %.9g (err %.3g > tol %.3g)\n", what, i,
                  (double)got[i], ref[i], err, tol[i]);
      fail();
    }
  }
}
