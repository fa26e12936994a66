/* Small helpers shared by the cmocka unit tests.  Include after <cmocka.h>
 * (or let this header pull it in). */
#pragma once
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib.h>

/* Fixed-seed PRNG (splitmix64): the same numbers on every machine and run, so
 * a failing test fails the same way again. */
typedef struct {
  uint64_t state;
} sige_test_rng;

static inline sige_test_rng sige_test_rng_new(uint64_t seed) {
  sige_test_rng r = {seed};
  return r;
}

static inline uint64_t sige_test_rng_next(sige_test_rng *r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline float sige_test_rng_uniform(sige_test_rng *r, float lo, float hi) {
  double u = (double)(sige_test_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(lo + (hi - lo) * u);
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
