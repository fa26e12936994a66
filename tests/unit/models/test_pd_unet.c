/* The PD UNet and the PD sampler on the pd-church128-tiny reference case.
 * `sige check-reference` covers out_dense_*, out_sparse_edit and
 * sampled_sparse; here: the schedule's numbers, the update rule on
 * consistent predictions, shape errors, the full pass against the dense
 * forward, and a sparse edit that is cheaper than a dense pass. */
#include "test_util.h"

#include <math.h>
#include <string.h>

#include "sige/error.h"
#include "sige/model.h"
#include "sige/sampler.h"
#include "sige/session.h"
#include "sige/sparse.h"
#include "sige/weights.h"

static double max_abs(const sige_tensor *a, const sige_tensor *b) {
  assert_int_equal(a->numel, b->numel);
  double m = 0;
  for (size_t i = 0; i < a->numel; i++) m = fmax(m, fabs((double)a->data[i] - b->data[i]));
  return m;
}

/* the published schedule: (t + 1) / 8 on -2 log tan(a u + b), -20..20 */
static void test_pd_schedule(void **state) {
  (void)state;
  sige_sampler_config c;
  sige_sampler_config_init(&c, SIGE_SAMPLER_PD);
  GError *error = NULL;
  g_autoptr(sige_sampler) s = sige_sampler_new(&c, &error);
  assert_non_null(s);
  assert_int_equal(sige_sampler_steps(s), 5);
  for (int i = 0; i <= 5; i++) assert_int_equal(sige_sampler_timestep(s, i), 4 - i);
  /* io.safetensors "logsnr" (the published float32 value at timestep 4) */
  assert_true(fabsf(sige_sampler_model_t(s, 0) - -0.80635035f) < 1e-7f);
  assert_true(fabs(sige_pd_logsnr(-1, 8, -20, 20) - 20.0) < 1e-5);
  /* u = 1 is tan near pi/2 in float32 (as published): only roughly -20 */
  assert_true(sige_pd_logsnr(7, 8, -20, 20) < -15.0);
  assert_true(fabs(sige_pd_logsnr(3, 8, -20, 20)) < 1e-6);
  for (int i = 0; i <= 5; i++) {
    const double l = sige_pd_logsnr(4 - i, 8, -20, 20);
    assert_true(fabs(sige_sampler_alpha_bar(s, i) - 1.0 / (1.0 + exp(-l))) < 1e-12);
  }
  /* a DDPM-shaped eps is refused */
  int64_t shape[4] = {1, 3, 4, 4};
  g_autoptr(sige_tensor) x = sige_tensor_new(4, shape, &error);
  g_autoptr(sige_tensor) e = sige_tensor_new(4, shape, &error);
  assert_false(sige_sampler_step(s, 0, x, e, &error));
  assert_int_equal(error->code, SIGE_ERROR_SHAPE);
  g_clear_error(&error);
  /* bad range */
  c.logsnr_min = 5;
  c.logsnr_max = 5;
  assert_null(sige_sampler_new(&c, &error));
  g_clear_error(&error);
}

/* With predictions consistent with z (z = alpha x + sigma eps, |x| < 1) the
 * mixing and clipping change nothing: the step is alpha_s x + sigma_s eps;
 * the last step returns x; |x| > 1 is clipped. */
static void test_pd_update(void **state) {
  (void)state;
  sige_test_rng r = sige_test_rng_new(7);
  enum { N = 257 };
  float px[N], pe[N], z[N];
  const double lt = 0.8, ls = 1.7;
  const double at = sqrt(1 / (1 + exp(-lt))), st = sqrt(1 / (1 + exp(lt)));
  const double as = sqrt(1 / (1 + exp(-ls))), ss = sqrt(1 / (1 + exp(ls)));
  for (int k = 0; k < N; k++) {
    px[k] = sige_test_rng_uniform(&r, -0.95f, 0.95f);
    pe[k] = sige_test_rng_uniform(&r, -2.0f, 2.0f);
    z[k] = (float)(at * px[k] + st * pe[k]);
  }
  float x[N];
  memcpy(x, z, sizeof z);
  sige_pd_update(x, px, pe, N, lt, ls, FALSE);
  for (int k = 0; k < N; k++) assert_true(fabs(x[k] - (as * px[k] + ss * pe[k])) < 2e-6);
  memcpy(x, z, sizeof z);
  sige_pd_update(x, px, pe, N, lt, ls, TRUE);
  for (int k = 0; k < N; k++) assert_true(fabs(x[k] - px[k]) < 2e-6);
  float big = 3.0f, zero = 0.0f, zb = (float)(at * 3.0);
  sige_pd_update(&zb, &big, &zero, 1, lt, ls, TRUE);
  assert_true(zb == 1.0f);
}

typedef struct {
  sige_weights *io;
  sige_model *model;
  sige_mask *mask;
  float logsnr;
} fixture;

static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  g_autofree char *dir = g_build_filename(sige_test_reference_dir(), "pd-church128-tiny", NULL);
  g_autofree char *wp = g_build_filename(dir, "weights.safetensors", NULL);
  g_autofree char *iop = g_build_filename(dir, "io.safetensors", NULL);
  GError *error = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(wp, &error);
  if (!w) fail_msg("%s", error->message);
  f->io = sige_weights_load_safetensors(iop, &error);
  if (!f->io) fail_msg("%s", error->message);
  sige_pd_config c;
  sige_pd_config_init(&c);
  /* pd-church128-tiny/case.json */
  c.ch = 32;
  const int mult[5] = {1, 2, 2, 2, 2};
  memcpy(c.ch_mult, mult, sizeof mult);
  c.head_dim = 32;
  c.temb_ch = 384;
  f->model = sige_model_new_pd(&c, w, &error);
  if (!f->model) fail_msg("%s", error->message);
  g_autoptr(sige_mask) raw = sige_mask_from_diff(sige_weights_get(f->io, "x0_orig"),
                                                 sige_weights_get(f->io, "x0_edit"), c.sparse.diff_eps);
  f->mask = sige_mask_cross_dilate(raw, c.sparse.mask_dilate_radius);
  f->logsnr = sige_weights_get(f->io, "logsnr")->data[0];
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  sige_weights_free(f->io);
  sige_model_free(f->model);
  sige_mask_free(f->mask);
  g_free(f);
  return 0;
}

/* the recording pass computes exactly the dense forward; a sparse edit
 * matches the reference at a fraction of the MACs; a wrong input is an error */
static void test_pd_passes(void **state) {
  fixture *f = *state;
  GError *error = NULL;
  sige_ctx *ctx = sige_ctx_new(0);
  g_autoptr(sige_tensor) dense = NULL;
  assert_true(sige_model_forward_dense(f->model, ctx, sige_weights_get(f->io, "z_orig"),
                                       f->logsnr, &dense, &error));
  assert_int_equal(dense->shape[1], 6);
  sige_session_options o;
  sige_session_options_init(&o);
  o.timestep = f->logsnr;
  o.full_pass_above = 2.0;
  g_autoptr(sige_session) s = sige_session_new(f->model, &o, &error);
  g_autoptr(sige_tensor) full = NULL, sparse = NULL;
  assert_true(sige_session_snapshot(s, sige_weights_get(f->io, "z_orig"), &full, &error));
  assert_true(max_abs(full, dense) == 0.0);
  const uint64_t dense_macs = sige_session_last_stats(s)->macs;
  assert_true(sige_session_regenerate_masked(s, sige_weights_get(f->io, "z_edit"), f->mask, NULL,
                                             NULL, NULL, &sparse, NULL, &error));
  assert_true(max_abs(sparse, sige_weights_get(f->io, "out_sparse_edit")) < 1e-3);
  assert_true(sige_session_last_stats(s)->was_sparse);
  assert_true(sige_session_last_stats(s)->macs * 2 < dense_macs);
  int64_t shape[4] = {1, 3, 64, 64};
  g_autoptr(sige_tensor) small = sige_tensor_new(4, shape, &error);
  g_autoptr(sige_tensor) bad = NULL;
  assert_false(sige_model_forward_dense(f->model, ctx, small, f->logsnr, &bad, &error));
  assert_int_equal(error->code, SIGE_ERROR_SHAPE);
  g_clear_error(&error);
  sige_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pd_schedule),
      cmocka_unit_test(test_pd_update),
      cmocka_unit_test_setup_teardown(test_pd_passes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
