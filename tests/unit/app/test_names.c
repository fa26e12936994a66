/* The name <-> enum pairs (sige-app/names.h): every name round-trips, and a
 * bad name is an error naming the field, the name and the accepted ones. */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

#include "sige-app/names.h"
#include "sige/error.h"

static void assert_error_names(GError *err, const char *const *words) {
  assert_non_null(err);
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_INVALID));
  for (int i = 0; words[i]; i++)
    if (!strstr(err->message, words[i])) fail_msg("'%s' does not name '%s'", err->message, words[i]);
}

static void test_sampler(void **state) {
  (void)state;
  const sige_sampler_kind all[] = {SIGE_SAMPLER_DDIM, SIGE_SAMPLER_DPM_SOLVER_PP, SIGE_SAMPLER_PD};
  for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
    sige_sampler_kind k = (sige_sampler_kind)-1;
    assert_true(sige_sampler_kind_parse("--sampler", sige_sampler_kind_name(all[i]), &k, NULL));
    assert_int_equal(k, all[i]);
  }
  assert_string_equal(sige_sampler_kind_name(SIGE_SAMPLER_DPM_SOLVER_PP), "dpmsolver++");
  sige_sampler_kind k;
  assert_true(sige_sampler_kind_parse(NULL, "DDIM", &k, NULL));
  assert_int_equal(k, SIGE_SAMPLER_DDIM);
  GError *err = NULL;
  assert_false(sige_sampler_kind_parse("--sampler", "euler", &k, &err));
  assert_error_names(err, (const char *[]){"--sampler", "'euler'", "ddim, dpmsolver++ or pd", NULL});
  g_clear_error(&err);
  assert_false(sige_sampler_kind_parse(NULL, NULL, &k, &err));
  assert_error_names(err, (const char *[]){"sampler ''", NULL});
  g_clear_error(&err);
}

static void test_device(void **state) {
  (void)state;
  const sige_device all[] = {SIGE_DEVICE_AUTO, SIGE_DEVICE_CPU, SIGE_DEVICE_CUDA, SIGE_DEVICE_SIM};
  for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
    sige_device d = (sige_device)-1;
    assert_true(sige_device_kind_parse("--device", sige_device_name(all[i]), &d, NULL));
    assert_int_equal(d, all[i]);
  }
  sige_device d;
  GError *err = NULL;
  assert_false(sige_device_kind_parse("--device", "gpu", &d, &err));
  /* sim is for tests: accepted, not advertised */
  assert_error_names(err, (const char *[]){"--device 'gpu'", "auto, cpu or cuda", NULL});
  assert_null(strstr(err->message, "sim"));
  g_clear_error(&err);
  /* no option: the environment, else auto; a bad variable names itself */
  g_unsetenv("SIGE_DEVICE");
  assert_true(sige_device_from_option("--device", NULL, &d, NULL));
  assert_int_equal(d, SIGE_DEVICE_AUTO);
  g_setenv("SIGE_DEVICE", "cpu", TRUE);
  assert_true(sige_device_from_option("--device", "", &d, NULL));
  assert_int_equal(d, SIGE_DEVICE_CPU);
  assert_true(sige_device_from_option("--device", "cuda", &d, NULL));
  assert_int_equal(d, SIGE_DEVICE_CUDA);
  g_setenv("SIGE_DEVICE", "tpu", TRUE);
  assert_false(sige_device_from_option("--device", NULL, &d, &err));
  assert_error_names(err, (const char *[]){"SIGE_DEVICE 'tpu'", NULL});
  g_clear_error(&err);
  g_unsetenv("SIGE_DEVICE");
}

static void test_model_kind(void **state) {
  (void)state;
  const sige_model_kind all[] = {SIGE_MODEL_SPADE, SIGE_MODEL_DDPM_UNET, SIGE_MODEL_PD_UNET,
                                 SIGE_MODEL_GANCOMP_SPADE};
  for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
    sige_model_kind k = (sige_model_kind)-1;
    assert_true(sige_model_kind_parse(NULL, sige_model_kind_spec_name(all[i]), &k, NULL));
    assert_int_equal(k, all[i]);
    assert_non_null(strstr(sige_model_kind_description(all[i]), " "));
  }
  assert_string_equal(sige_model_kind_spec_name(SIGE_MODEL_GANCOMP_SPADE), "gancomp");
  sige_model_kind k;
  GError *err = NULL;
  assert_false(sige_model_kind_parse("--model", "unet", &k, &err));
  assert_error_names(err, (const char *[]){"--model 'unet'", "spade, ddpm, pd or gancomp", NULL});
  g_clear_error(&err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sampler),
      cmocka_unit_test(test_device),
      cmocka_unit_test(test_model_kind),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
