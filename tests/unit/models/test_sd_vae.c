/* The SD VAE's passes through a session, on tiny random weights (the
 * published semantics themselves are checked by the sd-vae-tiny reference
 * case): the recording pass gives the dense output; fp16 caches give the
 * sparse output of float32 caches within half precision; the decoder, whose
 * masks are at the image's resolution, takes an image-size mask and
 * refuses a latent-size one, and without a mask makes one from the latent
 * difference, each latent pixel covering its block of image pixels (2 x 2
 * with these two levels, 8 x 8 in SD). */
#include "test_util.h"

#include <math.h>
#include <string.h>

#include "random_weights.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/session.h"
#include "sige/sparse.h"

#define IMG 32
#define LAT 16 /* two levels: one halving */

static void tiny_config(sige_sd_vae_config *c, sige_model_kind part) {
  sige_sd_vae_config_init(c, part);
  c->ch = 32;
  c->ch_mult[0] = 1, c->ch_mult[1] = 2;
  c->n_ch_mult = 2;
  c->num_res_blocks = 1;
  c->image_h = c->image_w = IMG;
}

static sige_model *tiny_model(sige_model_kind part, uint64_t seed) {
  sige_sd_vae_config c;
  tiny_config(&c, part);
  GError *error = NULL;
  g_autoptr(sige_weights) w = sige_random_model_weights(part, &c, seed, &error);
  sige_model *m = w ? sige_model_new_sd_vae(part, &c, w, &error) : NULL;
  if (!m) fail_msg("%s", error->message);
  return m;
}

static sige_tensor *pattern(int c, int h, int w, int salt) {
  sige_tensor *t = sige_tensor_new4(1, c, h, w, NULL);
  for (size_t i = 0; i < t->numel; i++)
    t->data[i] = (float)(((i + salt) * 37) % 23) / 11.0f - 1.0f;
  return t;
}

static double max_abs_diff(const sige_tensor *a, const sige_tensor *b) {
  assert_int_equal(a->numel, b->numel);
  double m = 0;
  for (size_t i = 0; i < a->numel; i++) m = fmax(m, fabs((double)a->data[i] - b->data[i]));
  return m;
}

static double max_abs(const sige_tensor *a) {
  double m = 0;
  for (size_t i = 0; i < a->numel; i++) m = fmax(m, fabs((double)a->data[i]));
  return m;
}

/* snapshot(orig) then a sparse pass on edit with mask (NULL: the
 * session's own); returns the sparse output, *full the snapshot's. */
static sige_tensor *run(const sige_model *m, gboolean fp16, const sige_tensor *orig,
                        const sige_tensor *edit, const sige_mask *mask, sige_tensor **full) {
  sige_session_options o;
  sige_session_options_init(&o);
  o.n_threads = 1;
  o.device = SIGE_DEVICE_CPU;
  o.full_pass_above = 2.0; /* always sparse */
  o.fp16_caches = fp16;
  GError *error = NULL;
  g_autoptr(sige_session) s = sige_session_new(m, &o, &error);
  sige_tensor *out = NULL;
  if (!s || !sige_session_snapshot(s, orig, full, &error) ||
      !(mask ? sige_session_regenerate_masked(s, edit, mask, NULL, NULL, NULL, &out, NULL, &error)
             : sige_session_regenerate(s, edit, NULL, NULL, NULL, &out, NULL, &error)))
    fail_msg("%s", error->message);
  assert_true(sige_session_last_stats(s)->was_sparse);
  return out;
}

/* An edit of the image's rows 10..13, columns 18..21 (and its mask). */
static sige_tensor *edit_image(const sige_tensor *x, sige_mask **mask) {
  sige_tensor *e = sige_tensor_dup(x, NULL);
  for (int c = 0; c < 3; c++)
    for (int y = 10; y < 14; y++)
      for (int xx = 18; xx < 22; xx++) e->data[((size_t)c * IMG + y) * IMG + xx] += 0.5f;
  g_autoptr(sige_mask) raw = sige_mask_from_diff(x, e, 0.02f);
  *mask = sige_mask_cross_dilate(raw, 5);
  return e;
}

static void test_encoder(void **state) {
  (void)state;
  g_autoptr(sige_model) m = tiny_model(SIGE_MODEL_SD_VAE_ENCODER, 7);
  g_autoptr(sige_tensor) x = pattern(3, IMG, IMG, 0);
  g_autoptr(sige_mask) mask = NULL;
  g_autoptr(sige_tensor) e = edit_image(x, &mask);
  g_autoptr(sige_ctx) ctx = sige_ctx_new(1);
  GError *error = NULL;
  g_autoptr(sige_tensor) dense = NULL, dense_e = NULL, full = NULL, full16 = NULL;
  assert_true(sige_model_forward_dense(m, ctx, x, 0, &dense, &error));
  assert_true(sige_model_forward_dense(m, ctx, e, 0, &dense_e, &error));
  g_autoptr(sige_tensor) sp = run(m, FALSE, x, e, mask, &full);
  g_autoptr(sige_tensor) sp16 = run(m, TRUE, x, e, mask, &full16);
  /* the recording pass is the dense forward (the same ops in the same
   * order) */
  assert_true(max_abs_diff(full, dense) == 0.0);
  /* the edit reaches the moments, and the sparse pass follows it: nearer
   * the dense result on the edit than the snapshot is (frozen statistics
   * keep it from being equal) */
  const double moved = max_abs_diff(sp, full), off = max_abs_diff(sp, dense_e);
  assert_true(moved > 1e-3);
  assert_true(off < max_abs_diff(full, dense_e));
  /* fp16 caches: half precision (relative 2^-11 per stored value) through
   * a handful of layers; measured 7e-4 of the output's scale here (both
   * halves), allowed 2e-2 */
  const double d16 = max_abs_diff(sp16, sp) / max_abs(sp);
  print_message("encoder: sparse moved %g, off dense %g, fp16 relative %g\n", moved, off, d16);
  if (!(d16 < 2e-2)) fail_msg("fp16 caches: relative %g", d16);
}

static void test_decoder(void **state) {
  (void)state;
  g_autoptr(sige_model) m = tiny_model(SIGE_MODEL_SD_VAE_DECODER, 9);
  g_autoptr(sige_tensor) z = pattern(4, LAT, LAT, 3);
  g_autoptr(sige_tensor) ze = sige_tensor_dup(z, NULL);
  /* latent pixel (5, 9): the image's 2 x 2 block at (10, 18) */
  for (int c = 0; c < 4; c++) ze->data[((size_t)c * LAT + 5) * LAT + 9] += 1.0f;
  g_autoptr(sige_mask) img = sige_mask_new(IMG, IMG);
  for (int y = 10; y < 12; y++)
    for (int x = 18; x < 20; x++) img->data[y * IMG + x] = 1;
  g_autoptr(sige_mask) mask = sige_mask_cross_dilate(img, 5);
  g_autoptr(sige_ctx) ctx = sige_ctx_new(1);
  GError *error = NULL;
  g_autoptr(sige_tensor) dense = NULL, full = NULL, full2 = NULL, full16 = NULL;
  assert_true(sige_model_forward_dense(m, ctx, z, 0, &dense, &error));
  g_autoptr(sige_tensor) sp = run(m, FALSE, z, ze, mask, &full);
  assert_true(max_abs_diff(full, dense) == 0.0);
  assert_true(max_abs_diff(sp, full) > 1e-3);
  /* without a mask the session makes this one from the latent difference */
  g_autoptr(sige_tensor) own = run(m, FALSE, z, ze, NULL, &full2);
  assert_true(max_abs_diff(own, sp) == 0.0);
  g_autoptr(sige_tensor) sp16 = run(m, TRUE, z, ze, mask, &full16);
  const double d16 = max_abs_diff(sp16, sp) / max_abs(sp);
  print_message("decoder: fp16 relative %g\n", d16);
  if (!(d16 < 2e-2)) fail_msg("fp16 caches: relative %g", d16);
  /* a mask at the latent's size is refused, naming the size expected */
  sige_session_options o;
  sige_session_options_init(&o);
  o.n_threads = 1;
  o.device = SIGE_DEVICE_CPU;
  g_autoptr(sige_session) s = sige_session_new(m, &o, &error);
  assert_non_null(s);
  assert_true(sige_session_snapshot(s, z, NULL, &error));
  g_autoptr(sige_mask) small = sige_mask_new(LAT, LAT);
  g_autoptr(sige_tensor) out = NULL;
  assert_false(sige_session_regenerate_masked(s, ze, small, NULL, NULL, NULL, &out, NULL, &error));
  assert_true(g_error_matches(error, SIGE_ERROR, SIGE_ERROR_SHAPE));
  if (!strstr(error->message, "32x32")) fail_msg("%s", error->message);
  g_clear_error(&error);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_encoder),
                                     cmocka_unit_test(test_decoder)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
