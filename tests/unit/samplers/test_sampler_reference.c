/* The samplers against the reference vectors: a dense SDEdit (no sparsity,
 * no mask reset) from x0_edit must reproduce `sdedit_dense` for the DDIM case
 * (4 steps from 200) and the DPM-Solver++ case (5 timesteps from 300), within
 * case.json's sdedit_vs_reference tolerance (rms_rel 1e-4). */
#include "test_util.h"

#include <math.h>
#include <stdio.h>

#include "sige/context.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/sampler.h"
#include "sige/weights.h"

#define SDEDIT_RMS_REL_TOL 1e-4

typedef struct {
  double rms_rel, max_abs;
} diff_stats;

static diff_stats compare(const sige_tensor *a, const sige_tensor *ref) {
  double num = 0.0, den = 0.0, mx = 0.0;
  for (size_t k = 0; k < ref->numel; k++) {
    double d = (double)a->data[k] - ref->data[k];
    num += d * d;
    den += (double)ref->data[k] * ref->data[k];
    if (fabs(d) > mx)
      mx = fabs(d);
  }
  diff_stats s = {sqrt(num / (den > 0.0 ? den : 1.0)), mx};
  return s;
}

static const sige_tensor *need(const sige_weights *io, const char *name) {
  GError *error = NULL;
  const sige_tensor *t = sige_weights_require(io, name, 4, (const int64_t[]){1, 3, 256, 256}, &error);
  if (!t)
    fail_msg("%s", error->message);
  return t;
}

static void run_case(const char *case_name, sige_sampler_kind kind, int noise_level,
                     int sample_steps, int steps, const int *expected_timesteps) {
  g_autofree char *dir = g_build_filename(sige_test_reference_dir(), case_name, NULL);
  g_autofree char *wpath = g_build_filename(dir, "weights.safetensors", NULL);
  g_autofree char *iopath = g_build_filename(dir, "io.safetensors", NULL);
  GError *error = NULL;

  g_autoptr(sige_weights) w = sige_weights_load_safetensors(wpath, &error);
  if (!w)
    fail_msg("%s", error->message);
  g_autoptr(sige_weights) io = sige_weights_load_safetensors(iopath, &error);
  if (!io)
    fail_msg("%s", error->message);

  /* the tiny church UNet of case.json */
  sige_ddpm_config mc;
  sige_ddpm_config_init(&mc);
  mc.ch = 32;
  const int ch_mult[] = {1, 1, 2, 2, 4, 4};
  mc.n_ch_mult = 6;
  for (int k = 0; k < 6; k++)
    mc.ch_mult[k] = ch_mult[k];
  mc.num_res_blocks = 2;
  mc.attn_resolutions[0] = 16;
  mc.n_attn_resolutions = 1;
  mc.in_ch = mc.out_ch = 3;
  mc.image_size = 256;
  mc.resamp_with_conv = TRUE;
  mc.groupnorm_groups = 32;
  mc.groupnorm_eps = 1e-6f;
  g_autoptr(sige_model) model = sige_model_new_ddpm(&mc, w, &error);
  if (!model)
    fail_msg("%s", error->message);
  g_autoptr(sige_ctx) ctx = sige_ctx_new(0);

  sige_sampler_config sc;
  sige_sampler_config_init(&sc, kind);
  sc.noise_level = noise_level;
  sc.sample_steps = sample_steps;
  g_autoptr(sige_sampler) s = sige_sampler_new(&sc, &error);
  if (!s)
    fail_msg("%s", error->message);
  assert_int_equal(sige_sampler_steps(s), steps);
  for (int i = 0; i <= steps; i++)
    assert_int_equal(sige_sampler_timestep(s, i), expected_timesteps[i]);

  const sige_tensor *x0_edit = need(io, "x0_edit");
  const sige_tensor *noise = need(io, "noise");
  const sige_tensor *ref = need(io, "sdedit_dense");

  g_autoptr(sige_tensor) x = sige_tensor_dup(x0_edit, &error);
  assert_non_null(x);
  /* the published runner starts from the edited image noised to the first timestep */
  sige_sampler_noisy(s, 0, x0_edit, noise, x);
  for (int i = 0; i < steps; i++) {
    sige_tensor *eps = NULL;
    if (!sige_model_forward_dense(model, ctx, x, sige_sampler_model_t(s, i), &eps, &error))
      fail_msg("%s step %d: %s", case_name, i, error->message);
    gboolean ok = sige_sampler_step(s, i, x, eps, &error);
    sige_tensor_free(eps);
    if (!ok)
      fail_msg("%s step %d: %s", case_name, i, error->message);
  }
  diff_stats d = compare(x, ref);
  printf("# %s: sdedit_dense rms_rel %.3g max_abs %.3g\n", case_name, d.rms_rel, d.max_abs);
  if (!(d.rms_rel <= SDEDIT_RMS_REL_TOL))
    fail_msg("%s: sdedit_dense rms_rel %g > %g (max abs %g)", case_name, d.rms_rel,
             SDEDIT_RMS_REL_TOL, d.max_abs);
}

static void test_ddim_reference(void **state) {
  (void)state;
  const int ts[] = {150, 100, 50, 0, -1};
  run_case("ddpm-church-tiny", SIGE_SAMPLER_DDIM, 200, 4, 4, ts);
}

static void test_dpm_solver_reference(void **state) {
  (void)state;
  /* four updates: the demo's fifth model evaluation (at 0) is never used */
  const int ts[] = {240, 180, 120, 60, 0};
  run_case("ddpm-church-tiny-dpmsolver", SIGE_SAMPLER_DPM_SOLVER_PP, 300, 5, 4, ts);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ddim_reference),
      cmocka_unit_test(test_dpm_solver_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
