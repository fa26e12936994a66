/* Small helpers shared by the cmocka unit tests.  Include after <cmocka.h>
 * (or let this header pull it in). */
#pragma once
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib.h>

#include "sige/rng.h"

/* Fixed-seed data (sige/rng.h): the same numbers on every machine and run,
 * so a failing test fails the same way again. */
typedef sige_rng sige_test_rng;

static inline sige_test_rng sige_test_rng_new(uint64_t seed) {
  sige_rng r;
  sige_rng_init(&r, seed);
  return r;
}

static inline uint64_t sige_test_rng_next(sige_test_rng *r) { return sige_rng_next(r); }

/* Uniform in [lo, hi). */
static inline float sige_test_rng_uniform(sige_test_rng *r, float lo, float hi) {
  return (float)(lo + (hi - lo) * sige_rng_uniform(r));
}

/* The reference vectors folder (tests/meson.build sets SIGE_REFERENCE_DIR to
 * ../shared/reference by default).  A missing folder fails the test instead
 * of skipping it: a silently skipped reference test proves nothing. */
static inline const char *sige_test_reference_dir(void) {
  const char *dir = g_getenv("SIGE_REFERENCE_DIR");
  if (!dir || !*dir)
    fail_msg("SIGE_REFERENCE_DIR is not set: run the tests through meson test "
             "(the reference folder ../shared/reference is missing)");
  if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
    fail_msg("SIGE_REFERENCE_DIR/../shared/reference is missing: '%s' is not a folder", dir);
  return dir;
}
