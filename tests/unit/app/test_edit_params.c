/* The edit parameters' rules (sige-app/edit_params.h): defaults, how
 * strength and steps become the SDEdit schedule, which sampler a model
 * runs, and the refusals, each naming the setting and the fix. */
#include <math.h>
#include "test_util.h"

#include <string.h>

#include "app_test_models.h"
#include "sige-app/edit_params.h"
#include "sige-app/input_kind.h"
#include "sige/error.h"

static void expect_refused(const sige_model *m, const sige_edit_params *p, const char *a,
                           const char *b) {
  sige_session_options o;
  GError *err = NULL;
  assert_false(sige_edit_session_options(m, p, &o, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_INVALID));
  if (!strstr(err->message, a) || (b && !strstr(err->message, b)))
    fail_msg("'%s' does not name '%s' and '%s'", err->message, a, b ? b : "");
  g_error_free(err);
}

static void test_defaults(void **state) {
  (void)state;
  sige_edit_params p;
  memset(&p, 0x5a, sizeof p);
  sige_edit_params_init(&p);
  assert_float_equal(p.strength, 0, 0);
  assert_int_equal(p.steps, 0);
  assert_int_equal(p.sampler, SIGE_EDIT_SAMPLER_DEFAULT);
  assert_int_equal(p.seed, 0);
  assert_int_equal(p.device, SIGE_DEVICE_AUTO);
  assert_int_equal(p.memory_budget, 0);
}

static void test_ddpm(void **state) {
  (void)state;
  g_autoptr(sige_model) m = app_test_ddpm();
  assert_int_equal(sige_model_input_kind(m, NULL), SIGE_INPUT_IMAGE);
  sige_edit_params p;
  sige_edit_params_init(&p);
  p.seed = 5, p.fp16_caches = TRUE, p.memory_budget = 1 << 20, p.device = SIGE_DEVICE_CPU;
  sige_session_options o;
  GError *err = NULL;
  /* the defaults: the interactive demo's 10 DPM-Solver++ steps from 750 */
  assert_true(sige_edit_session_options(m, &p, &o, &err));
  assert_true(o.sdedit);
  assert_true(o.fp16_caches);
  assert_int_equal(o.memory_budget, 1 << 20);
  assert_int_equal(o.device, SIGE_DEVICE_CPU);
  /* the front-ends' sessions follow the free CPUs (issue #19, point 3)
   * unless a thread count was given */
  assert_true(o.follow_free_cpus);
  p.n_threads = 2;
  sige_session_options o2;
  assert_true(sige_edit_session_options(m, &p, &o2, &err));
  assert_false(o2.follow_free_cpus);
  p.n_threads = 0;
  assert_int_equal(o.seed, 5);
  assert_int_equal(o.sampler.kind, SIGE_SAMPLER_DPM_SOLVER_PP);
  assert_int_equal(o.sampler.sample_steps, 10);
  assert_int_equal(o.sampler.noise_level, 750);
  /* the default strength is the same schedule as giving it */
  sige_session_options o75;
  p.strength = 0.75;
  assert_true(sige_edit_session_options(m, &p, &o75, NULL));
  assert_int_equal(o75.sampler.noise_level, 750);
  /* strength * 1000, rounded; at least one level */
  p.steps = 3, p.strength = 0.2, p.sampler = SIGE_SAMPLER_DDIM;
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  assert_int_equal(o.sampler.sample_steps, 3);
  assert_int_equal(o.sampler.noise_level, 200);
  assert_int_equal(o.sampler.kind, SIGE_SAMPLER_DDIM);
  p.steps = 1, p.strength = 0.0001;
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  assert_int_equal(o.sampler.noise_level, 1);
  /* refusals */
  p.steps = 3, p.strength = 1.5;
  expect_refused(m, &p, "strength 1.50", "between 0.01 and 1 (0 = the default 0.75)");
  p.strength = -0.1;
  expect_refused(m, &p, "strength -0.10", "between 0.01 and 1");
  p.strength = NAN; /* not the default: NaN compares false with every bound */
  expect_refused(m, &p, "strength nan", "between 0.01 and 1");
  p.strength = 0.002; /* 2 levels */
  expect_refused(m, &p, "3 steps", "Lower the steps");
  p.strength = 0.2, p.steps = -2;
  expect_refused(m, &p, "steps -2", "1 or more");
  p.steps = 1, p.sampler = SIGE_SAMPLER_DPM_SOLVER_PP;
  expect_refused(m, &p, "DPM-Solver++ sampler needs at least 2 steps", "DDIM");
  p.sampler = SIGE_EDIT_SAMPLER_DEFAULT; /* the default is DPM-Solver++ too */
  expect_refused(m, &p, "at least 2 steps", NULL);
  p.sampler = SIGE_SAMPLER_DDIM; /* one DDIM step is fine */
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  p.sampler = SIGE_SAMPLER_PD;
  expect_refused(m, &p, "sampler pd", "ddim or dpmsolver++");
  assert_false(sige_edit_sampler_fits(SIGE_MODEL_DDPM_UNET, SIGE_SAMPLER_PD));
  assert_true(sige_edit_sampler_fits(SIGE_MODEL_DDPM_UNET, SIGE_SAMPLER_DDIM));
  /* the SD pipeline runs both solvers, not PD's */
  assert_true(sige_edit_sampler_fits(SIGE_MODEL_SD_UNET, SIGE_SAMPLER_DDIM));
  assert_true(sige_edit_sampler_fits(SIGE_MODEL_SD_UNET, SIGE_SAMPLER_DPM_SOLVER_PP));
  assert_false(sige_edit_sampler_fits(SIGE_MODEL_SD_UNET, SIGE_SAMPLER_PD));

  /* the options make a working SDEdit session: the snapshot is the image */
  p.steps = 2, p.strength = 0.1, p.sampler = SIGE_SAMPLER_DDIM, p.memory_budget = 0,
  p.n_threads = 1;
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  g_autoptr(sige_session) ses = sige_session_new(m, &o, &err);
  assert_non_null(ses);
  g_autoptr(sige_tensor) in = sige_tensor_new4(1, 3, 32, 32, NULL);
  for (int i = 0; i < 3 * 32 * 32; i++) in->data[i] = (float)(i % 17) / 8.5f - 1.0f;
  g_autoptr(sige_tensor) snap = NULL;
  assert_true(sige_session_snapshot(ses, in, &snap, &err));
  assert_memory_equal(snap->data, in->data, sizeof(float) * 3 * 32 * 32);
}

/* A PD UNet samples with its own sampler and 8-level schedule. */
static void test_pd(void **state) {
  (void)state;
  g_autoptr(sige_model) m = app_test_pd();
  assert_int_equal(sige_model_input_kind(m, NULL), SIGE_INPUT_IMAGE);
  sige_edit_params p;
  sige_edit_params_init(&p);
  sige_session_options o;
  /* default: level 5 of 8, every level a step */
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  assert_int_equal(o.sampler.kind, SIGE_SAMPLER_PD);
  assert_int_equal(o.sampler.noise_level, 5);
  assert_int_equal(o.sampler.sample_steps, 5);
  p.strength = 0.5;
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  assert_int_equal(o.sampler.noise_level, 4);
  assert_int_equal(o.sampler.sample_steps, 4);
  p.strength = 0.01; /* round(0.08) = 0: still one level */
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  assert_int_equal(o.sampler.noise_level, 1);
  p.strength = 0.5, p.steps = 9;
  expect_refused(m, &p, "9 steps", "Lower the steps");
  p.steps = 2, p.sampler = SIGE_SAMPLER_DDIM;
  expect_refused(m, &p, "sampler ddim", "samples with pd");
  p.sampler = SIGE_SAMPLER_PD;
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  assert_int_equal(o.sampler.sample_steps, 2);
}

/* Label-map models: the SDEdit settings neither apply nor are checked. */
static void test_labels(void **state) {
  (void)state;
  g_autoptr(sige_model) m = app_test_gaugan();
  assert_int_equal(sige_model_input_kind(m, NULL), SIGE_INPUT_LABELS);
  sige_edit_params p;
  sige_edit_params_init(&p);
  p.steps = -1, p.strength = 7, p.sampler = SIGE_SAMPLER_PD, p.fp16_caches = TRUE;
  p.n_threads = 2, p.full_pass_above = 0.3, p.memory_budget = 99;
  sige_session_options o;
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  assert_false(o.sdedit);
  assert_true(o.fp16_caches);
  assert_int_equal(o.n_threads, 2);
  assert_float_equal(o.full_pass_above, 0.3, 0);
  assert_int_equal(o.memory_budget, 99);
  p.full_pass_above = 0; /* the engine's default */
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  sige_session_options d;
  sige_session_options_init(&d);
  assert_float_equal(o.full_pass_above, d.full_pass_above, 0);
}

/* What a user types: the whole text a number in range, else refused naming
 * the option and the text; the value is untouched on refusal. */
static void test_parse_typed(void **state) {
  (void)state;
  double strength = 0.25;
  int steps = 7;
  GError *error = NULL;
  assert_true(sige_edit_strength_parse("--strength", "0.5", &strength, &error));
  assert_true(strength == 0.5);
  assert_true(sige_edit_strength_parse("--strength", "1", &strength, &error));
  assert_true(strength == 1.0);
  const char *bad_strength[] = {"nan", "NaN", "inf", "0", "-0.1", "1.01", "0.5x", "", " 0.5", "x"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad_strength); i++) {
    assert_false(sige_edit_strength_parse("--strength", bad_strength[i], &strength, &error));
    assert_true(g_error_matches(error, SIGE_ERROR, SIGE_ERROR_INVALID));
    g_autofree char *want = g_strdup_printf("--strength %s:", bad_strength[i]);
    assert_non_null(strstr(error->message, want));
    g_clear_error(&error);
    assert_true(strength == 1.0);
  }
  assert_true(sige_edit_steps_parse("--steps", "12", &steps, &error));
  assert_int_equal(steps, 12);
  const char *bad_steps[] = {"0", "-3", "2.5", "1001", "nan", "1e9", "4 ", ""};
  for (size_t i = 0; i < G_N_ELEMENTS(bad_steps); i++) {
    assert_false(sige_edit_steps_parse("--steps", bad_steps[i], &steps, &error));
    assert_true(g_error_matches(error, SIGE_ERROR, SIGE_ERROR_INVALID));
    assert_non_null(strstr(error->message, "1 to 1000"));
    g_clear_error(&error);
    assert_int_equal(steps, 12);
  }
}

/* Out-of-memory errors name the phase and what to try (issue 20 point 11);
 * other errors, and a budget refusal (no allocation failed), stay as they are. */
static void test_explain_nomem(void **state) {
  (void)state;
  sige_edit_params p;
  sige_edit_params_init(&p);
  GError *e = g_error_new(SIGE_ERROR, SIGE_ERROR_NOMEM, "out of memory allocating a tensor of 64 MiB");
  sige_edit_explain_nomem(&e, SIGE_EDIT_PHASE_SNAPSHOT, &p, SIGE_EDIT_UI_CLI);
  assert_true(g_error_matches(e, SIGE_ERROR, SIGE_ERROR_NOMEM));
  print_message("%s\n", e->message);
  assert_non_null(strstr(e->message, "Out of memory during the snapshot"));
  assert_non_null(strstr(e->message, "(out of memory allocating a tensor of 64 MiB)"));
  assert_non_null(strstr(e->message, "--threads 1"));
  assert_non_null(strstr(e->message, "--fp16-caches"));
  assert_non_null(strstr(e->message, "--memory-budget MIB"));
  g_clear_error(&e);

  /* fp16 caches already on, a budget set: not proposed again as such */
  p.fp16_caches = TRUE;
  p.memory_budget = (size_t)300 << 20;
  e = g_error_new(SIGE_ERROR, SIGE_ERROR_NOMEM, "x");
  sige_edit_explain_nomem(&e, SIGE_EDIT_PHASE_CACHES, &p, SIGE_EDIT_UI_PLUGIN);
  print_message("%s\n", e->message);
  assert_non_null(strstr(e->message, "caches and work buffers"));
  assert_null(strstr(e->message, "float16"));
  assert_non_null(strstr(e->message, "Memory budget, now 300 MiB"));
  g_clear_error(&e);

  e = g_error_new(SIGE_ERROR, SIGE_ERROR_NOMEM, "x");
  sige_edit_explain_nomem(&e, SIGE_EDIT_PHASE_SPARSE, NULL, SIGE_EDIT_UI_CLI);
  assert_non_null(strstr(e->message, "during the sparse pass"));
  assert_null(strstr(e->message, "budget"));
  g_clear_error(&e);

  e = g_error_new(G_FILE_ERROR, G_FILE_ERROR_NOMEM, "x");
  sige_edit_explain_nomem(&e, SIGE_EDIT_PHASE_WEIGHTS, NULL, SIGE_EDIT_UI_CLI);
  assert_non_null(strstr(e->message, "during loading the weights"));
  g_clear_error(&e);

  e = g_error_new(SIGE_ERROR, SIGE_ERROR_NOMEM, "x");
  sige_edit_explain_nomem(&e, SIGE_EDIT_PHASE_IMAGE, NULL, SIGE_EDIT_UI_CLI);
  assert_non_null(strstr(e->message, "during decoding the image"));
  assert_non_null(strstr(e->message, "smaller image"));
  g_clear_error(&e);

  for (int code = 0; code < 2; code++) {
    e = code ? g_error_new(SIGE_ERROR, SIGE_ERROR_OVER_BUDGET, "the caches need 9 MiB")
             : g_error_new(SIGE_ERROR, SIGE_ERROR_FORMAT, "bad");
    g_autofree char *before = g_strdup(e->message);
    sige_edit_explain_nomem(&e, SIGE_EDIT_PHASE_SNAPSHOT, NULL, SIGE_EDIT_UI_CLI);
    assert_string_equal(e->message, before);
    g_clear_error(&e);
  }
  sige_edit_explain_nomem(&e, SIGE_EDIT_PHASE_SNAPSHOT, NULL, SIGE_EDIT_UI_CLI);
  assert_null(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_ddpm),
      cmocka_unit_test(test_pd),
      cmocka_unit_test(test_labels),
      cmocka_unit_test(test_parse_typed),
      cmocka_unit_test(test_explain_nomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
