/* The SPADE blocks' recording pass in row bands (fp16 caches,
 * spade_blocks.c "the recording pass in row bands") against the unbanded
 * pass, on a GauGAN of ngf 16 at 64x128 with random weights (its up_1
 * gamma|beta convs run Winograd, the others im2col; both in the bands too).
 *
 * - One band covering the whole height (the context's band rows, from
 *   SIGE_SPADE_BAND_ROWS, above it) runs
 *   the banded code with the same conv calls as the unbanded pass: the
 *   snapshot, the edit and the cache bytes must be identical (memcmp).  A
 *   wrong slot order, channel range, norm or shortcut shows here.
 * - Bands of 8 and 4 rows: each band's conv is a GEMM of other dimensions,
 *   and the BLAS sums the same products in another order (on this machine's
 *   OpenBLAS even with one thread), so a few activations round to the
 *   neighbouring half when recorded.  That is the kind of difference a
 *   change of thread count makes (tests/unit/session_fp16 measured up to
 *   8.0e-3 between float32 and fp16 caches).  Measured here: see BAND_TOL.
 * - Within a banded session the edit's output equals the snapshot's outside
 *   the changed rectangle bit for bit: the caches hold exactly what the
 *   banded pass went on with (the session's changed rectangle relies on it). */
#include "test_util.h"

#include <math.h>
#include <string.h>

#include "random_weights.h"
#include "sige/context.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/session.h"
#include "sige/tensor.h"
#include "sige/weights.h"

/* Max |banded - unbanded| of the tanh images (in [-1, 1]).  Measured
 * 1.1e-3 for bands of 8 and of 4 rows, snapshot and edit alike (x86-64 with
 * AVX-512, Debian's OpenBLAS 0.3.21, 2 threads); the bound is 4.5x that and
 * below one 8-bit level of the image (7.8e-3).  A band that reads a wrong
 * row or misses its halo gives errors of order 0.1 to 1. */
#define BAND_TOL 5e-3

typedef struct {
  sige_tensor *snap, *edit;
  sige_rect rect;
  size_t cache_bytes;
} run_result;

static void fail_on(GError *error, const char *what) {
  if (error) fail_msg("%s: %s", what, error->message);
}

static run_result run(const sige_model *m, const sige_tensor *a, const sige_tensor *b,
                      const char *rows) {
  g_setenv("SIGE_SPADE_BAND_ROWS", rows, TRUE);
  sige_session_options o;
  sige_session_options_init(&o);
  o.fp16_caches = TRUE;
  o.n_threads = 2;
  o.full_pass_above = 2.0; /* always sparse */
  GError *error = NULL;
  g_autoptr(sige_session) s = sige_session_new(m, &o, &error);
  fail_on(error, "sige_session_new");
  run_result r = {0};
  const gboolean snapped = sige_session_snapshot(s, a, &r.snap, &error);
  fail_on(error, "snapshot");
  assert_true(snapped);
  const gboolean edited = sige_session_regenerate(s, b, NULL, NULL, NULL, &r.edit, &r.rect, &error);
  fail_on(error, "regenerate");
  assert_true(edited);
  assert_true(sige_session_last_stats(s)->was_sparse);
  r.cache_bytes = sige_session_cache_bytes(s);
  g_unsetenv("SIGE_SPADE_BAND_ROWS");
  return r;
}

static void result_clear(run_result *r) {
  sige_tensor_free(r->snap);
  sige_tensor_free(r->edit);
}

static double max_diff(const sige_tensor *a, const sige_tensor *b) {
  assert_true(sige_tensor_same_shape(a, b));
  double m = 0;
  for (size_t i = 0; i < a->numel; i++) m = fmax(m, fabs((double)a->data[i] - b->data[i]));
  return m;
}

static void assert_identical(const sige_tensor *a, const sige_tensor *b, const char *what) {
  assert_true(sige_tensor_same_shape(a, b));
  if (memcmp(a->data, b->data, a->numel * sizeof(float)))
    fail_msg("%s: one band differs from the unbanded pass (max %.3g)", what, max_diff(a, b));
}

/* The edit equals the snapshot outside the changed rectangle. */
static void assert_consistent(const run_result *r, const char *what) {
  const int c = SIGE_C(r->snap), h = SIGE_H(r->snap), w = SIGE_W(r->snap);
  assert_true(r->rect.width > 0 && r->rect.height > 0);
  assert_true(r->rect.width < w || r->rect.height < h);
  for (int k = 0; k < c; k++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        if (x >= r->rect.x && x < r->rect.x + r->rect.width && y >= r->rect.y &&
            y < r->rect.y + r->rect.height)
          continue;
        const size_t i = ((size_t)k * h + y) * w + x;
        if (memcmp(&r->snap->data[i], &r->edit->data[i], sizeof(float)))
          fail_msg("%s: the edit changed (%d, %d) outside its rectangle", what, x, y);
      }
}

static void test_banded(void **state) {
  (void)state;
  sige_spade_config c;
  sige_spade_config_init(&c);
  c.ngf = 16;
  c.label_nc = 5;
  c.crop_size = 128;
  GError *error = NULL;
  g_autoptr(sige_weights) w = sige_random_model_weights(SIGE_MODEL_SPADE, &c, 11, &error);
  fail_on(error, "random weights");
  g_autoptr(sige_model) m = sige_model_new_spade(&c, w, &error);
  fail_on(error, "model");
  int64_t s[4];
  sige_model_input_shape(m, s);
  assert_int_equal(s[2], 64);
  assert_int_equal(s[3], 128);
  /* a label map of rectangles, and the same with a patch relabelled */
  g_autoptr(sige_tensor) a = sige_tensor_new4(1, (int)s[1], (int)s[2], (int)s[3], NULL);
  const size_t plane = (size_t)s[2] * s[3];
  for (int y = 0; y < s[2]; y++)
    for (int x = 0; x < s[3]; x++)
      a->data[(size_t)((x / 24 + y / 16) % c.label_nc) * plane + y * s[3] + x] = 1.0f;
  g_autoptr(sige_tensor) b = sige_tensor_dup(a, NULL);
  for (int y = 20; y < 30; y++)
    for (int x = 50; x < 62; x++)
      for (int k = 0; k < s[1]; k++) /* label 3 there becomes 0 */
        b->data[(size_t)k * plane + y * s[3] + x] = k == 0 ? 1.0f : 0.0f;

  run_result plain = run(m, a, b, "0");
  run_result one = run(m, a, b, "100000");
  assert_identical(one.snap, plain.snap, "snapshot");
  assert_identical(one.edit, plain.edit, "edit");
  assert_int_equal(one.cache_bytes, plain.cache_bytes);
  assert_consistent(&plain, "unbanded");
  assert_consistent(&one, "one band");
  const char *rows[] = {"8", "4"};
  for (int i = 0; i < 2; i++) {
    run_result r = run(m, a, b, rows[i]);
    const double ds = max_diff(r.snap, plain.snap), de = max_diff(r.edit, plain.edit);
    print_message("bands of %s rows: max |banded - unbanded| snapshot %.3g, edit %.3g\n", rows[i],
                  ds, de);
    if (ds > BAND_TOL || de > BAND_TOL)
      fail_msg("bands of %s rows: %.3g / %.3g above %.3g", rows[i], ds, de, BAND_TOL);
    assert_int_equal(r.cache_bytes, plain.cache_bytes);
    assert_consistent(&r, rows[i]);
    result_clear(&r);
  }
  result_clear(&plain);
  result_clear(&one);
}

/* The band rows are a context setting (context.h) whose start value comes
 * from SIGE_SPADE_BAND_ROWS, which run() above relies on. */
static void test_ctx_band_rows(void **state) {
  (void)state;
  g_unsetenv("SIGE_SPADE_BAND_ROWS");
  sige_ctx *ctx = sige_ctx_new(1);
  assert_int_equal(sige_ctx_band_rows(ctx), SIGE_BAND_ROWS_AUTO);
  sige_ctx_set_band_rows(ctx, 0);
  assert_int_equal(sige_ctx_band_rows(ctx), 0);
  sige_ctx_set_band_rows(ctx, -7);
  assert_int_equal(sige_ctx_band_rows(ctx), SIGE_BAND_ROWS_AUTO);
  sige_ctx_free(ctx);
  g_setenv("SIGE_SPADE_BAND_ROWS", "12", TRUE);
  ctx = sige_ctx_new(1);
  assert_int_equal(sige_ctx_band_rows(ctx), 12);
  sige_ctx_free(ctx);
  g_unsetenv("SIGE_SPADE_BAND_ROWS");
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_ctx_band_rows),
                                     cmocka_unit_test(test_banded)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
