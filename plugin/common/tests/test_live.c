/* Live mode's timing (sige-live.c): a change is an exact pixel difference,
 * an update comes once the layer has stayed the same for the debounce time
 * and only once per change, and the poll interval follows the read cost
 * within its bounds.  Times are given, not measured, so the test is exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sige-live.h"

#define MS 1000 /* µs */

static guint8 *pixels(guint8 value, gsize n) {
  guint8 *p = g_malloc(n);
  memset(p, value, n);
  return p;
}

/* a read at t (ms) that costs 1 ms */
static sige_live_action poll_at(sige_live *L, guint8 *px, gsize n, gint64 t_ms, gint64 *since) {
  return sige_live_poll(L, px, n, t_ms * MS, t_ms * MS + MS, since);
}

static void test_debounce(void **state) {
  (void)state;
  g_unsetenv("SIGE_LIVE_DEBOUNCE_MS");
  sige_live L;
  sige_live_init(&L);
  assert_int_equal(L.debounce_ms, SIGE_LIVE_DEBOUNCE_MS);
  sige_live_prime(&L, pixels(0, 64), 64, 0, MS);
  gint64 since = -1;
  /* unchanged: nothing to do, ever */
  assert_int_equal(poll_at(&L, pixels(0, 64), 64, 40, &since), SIGE_LIVE_WAIT);
  assert_int_equal(poll_at(&L, pixels(0, 64), 64, 1000, &since), SIGE_LIVE_WAIT);
  /* a stroke over two reads: one byte differs, then another */
  guint8 *a = pixels(0, 64);
  a[63] = 1;
  assert_int_equal(poll_at(&L, a, 64, 1040, &since), SIGE_LIVE_WAIT);
  guint8 *b = pixels(0, 64);
  b[63] = 1, b[0] = 9;
  assert_int_equal(poll_at(&L, b, 64, 1080, &since), SIGE_LIVE_WAIT);
  /* still under the debounce after the last change */
  b = g_memdup2(b, 64);
  assert_int_equal(poll_at(&L, b, 64, 1080 + SIGE_LIVE_DEBOUNCE_MS - 1, &since), SIGE_LIVE_WAIT);
  assert_int_equal(since, -1);
  /* the debounce reached: one update, timed from the last change */
  b = g_memdup2(b, 64);
  assert_int_equal(poll_at(&L, b, 64, 1080 + SIGE_LIVE_DEBOUNCE_MS + 10, &since),
                   SIGE_LIVE_UPDATE);
  assert_int_equal(since, (SIGE_LIVE_DEBOUNCE_MS + 10) * MS);
  /* and not a second one for the same change */
  b = g_memdup2(b, 64);
  assert_int_equal(poll_at(&L, b, 64, 2000, &since), SIGE_LIVE_WAIT);
  /* a size change is a change */
  assert_int_equal(poll_at(&L, pixels(0, 32), 32, 2100, &since), SIGE_LIVE_WAIT);
  assert_int_equal(poll_at(&L, pixels(0, 32), 32, 2400, &since), SIGE_LIVE_UPDATE);
  sige_live_clear(&L);
  assert_null(L.last);
}

static void test_env_debounce(void **state) {
  (void)state;
  sige_live L;
  g_setenv("SIGE_LIVE_DEBOUNCE_MS", "0", TRUE);
  sige_live_init(&L);
  assert_int_equal(L.debounce_ms, 0);
  sige_live_prime(&L, pixels(0, 8), 8, 0, MS);
  assert_int_equal(poll_at(&L, pixels(1, 8), 8, 40, NULL), SIGE_LIVE_WAIT);
  /* the next read that sees no change updates */
  assert_int_equal(poll_at(&L, pixels(1, 8), 8, 80, NULL), SIGE_LIVE_UPDATE);
  sige_live_clear(&L);
  g_setenv("SIGE_LIVE_DEBOUNCE_MS", "999999", TRUE);
  sige_live_init(&L);
  assert_int_equal(L.debounce_ms, 10000);
  g_unsetenv("SIGE_LIVE_DEBOUNCE_MS");
}

static void test_poll_interval(void **state) {
  (void)state;
  sige_live L;
  sige_live_init(&L);
  /* a cheap read: the minimum */
  sige_live_prime(&L, pixels(0, 8), 8, 0, 2 * MS);
  assert_int_equal(sige_live_poll_ms(&L), SIGE_LIVE_POLL_MIN_MS);
  /* a 20 ms read: 10 % of a core is 200 ms */
  sige_live_prime(&L, pixels(0, 8), 8, 0, 20 * MS);
  assert_int_equal(sige_live_poll_ms(&L), 200);
  /* a very slow read: the maximum */
  sige_live_prime(&L, pixels(0, 8), 8, 0, 5000 * MS);
  assert_int_equal(sige_live_poll_ms(&L), SIGE_LIVE_POLL_MAX_MS);
  /* smoothed: one cheap read after the slow one moves it only part way */
  sige_live_poll(&L, pixels(0, 8), 8, 0, 0, NULL);
  assert_int_equal(sige_live_poll_ms(&L), SIGE_LIVE_POLL_MAX_MS);
  sige_live_clear(&L);
}

/* The window's texts: the intro names the layer and promises no time (it
 * once said "a fifth of a second" for Stable Diffusion models too, whose
 * updates take seconds); the status line switches to seconds at 10 s. */
static void test_texts(void **state) {
  (void)state;
  g_autofree gchar *intro = sige_live_intro("Labels");
  assert_non_null(strstr(intro, "\"Labels\""));
  assert_non_null(strstr(intro, "one undo step"));
  assert_null(strstr(intro, "second"));
  g_autofree gchar *fast = sige_live_status(3, 156.4);
  assert_string_equal(fast, "Updates so far: 3; the last took 156 ms.");
  g_autofree gchar *edge = sige_live_status(4, 9999.0);
  assert_string_equal(edge, "Updates so far: 4; the last took 9999 ms.");
  g_autofree gchar *slow = sige_live_status(2, 14250.0);
  assert_string_equal(slow, "Updates so far: 2; the last took 14.2 s.");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_debounce),
      cmocka_unit_test(test_texts),
      cmocka_unit_test(test_env_debounce),
      cmocka_unit_test(test_poll_interval),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
