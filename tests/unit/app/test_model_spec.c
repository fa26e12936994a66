/* Model specs (sige-app/model_spec.h): what "[KIND:[CONFIG:]]PATH" parses
 * to, the refusals, and loading with the reference cases' tiny weights. */
#include "test_util.h"

#include <string.h>

#include "sige-app/model_spec.h"
#include "sige/error.h"

static void parse_ok(const char *text, sige_model_spec *s) {
  GError *err = NULL;
  if (!sige_model_spec_parse(text, s, &err)) fail_msg("%s: %s", text, err->message);
}

static void parse_bad(const char *text, GError **err, const char *words) {
  sige_model_spec s;
  assert_false(sige_model_spec_parse(text, &s, err));
  assert_non_null(*err);
  assert_true(g_error_matches(*err, SIGE_ERROR, SIGE_ERROR_INVALID));
  if (!strstr((*err)->message, words)) fail_msg("'%s' does not name '%s'", (*err)->message, words);
  assert_null(s.path);
  g_clear_error(err);
}

static void test_parse_good(void **state) {
  (void)state;
  sige_model_spec s;
  parse_ok("models/a.safetensors", &s);
  assert_false(s.has_kind);
  assert_string_equal(s.path, "models/a.safetensors");
  sige_model_spec_clear(&s);
  assert_null(s.path);

  const struct {
    const char *text;
    sige_model_kind kind;
  } kinds[] = {{"spade:x", SIGE_MODEL_SPADE},
               {"ddpm:x", SIGE_MODEL_DDPM_UNET},
               {"pd:x", SIGE_MODEL_PD_UNET},
               {"gancomp:x", SIGE_MODEL_GANCOMP_SPADE}};
  for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++) {
    parse_ok(kinds[i].text, &s);
    assert_true(s.has_kind);
    assert_int_equal(s.kind, kinds[i].kind);
    assert_false(s.has_channels);
    assert_int_equal(s.head_dim, 0);
    assert_string_equal(s.path, "x");
    sige_model_spec_clear(&s);
  }
  parse_ok("gancomp:32_32_32_48_32_24_24_32:dir/w.safetensors", &s);
  assert_true(s.has_channels);
  const int want[8] = {32, 32, 32, 48, 32, 24, 24, 32};
  assert_memory_equal(s.channels, want, sizeof want);
  assert_string_equal(s.path, "dir/w.safetensors");
  sige_model_spec_clear(&s);
  parse_ok("pd:32:w.safetensors", &s);
  assert_int_equal(s.head_dim, 32);
  assert_string_equal(s.path, "w.safetensors");
  sige_model_spec_clear(&s);
  /* a colon in the path: only a kind word is a prefix, only digits a config */
  parse_ok("weights:v2.safetensors", &s);
  assert_false(s.has_kind);
  assert_string_equal(s.path, "weights:v2.safetensors");
  sige_model_spec_clear(&s);
  parse_ok("pd:run:3/w.safetensors", &s);
  assert_int_equal(s.head_dim, 0);
  assert_string_equal(s.path, "run:3/w.safetensors");
  sige_model_spec_clear(&s);
}

static void test_parse_bad(void **state) {
  (void)state;
  GError *err = NULL;
  parse_bad("", &err, "no weights file");
  parse_bad(NULL, &err, "no weights file");
  parse_bad("ddpm:", &err, "[spade:|ddpm:|pd:[HEAD_DIM:]|gancomp:[CONFIG:]]PATH");
  parse_bad("gancomp:8_8:", &err, "gancomp:8_8:");
  parse_bad("gancomp:8_8:w.safetensors", &err, "model spec 'gancomp:8_8:w.safetensors'");
  parse_bad("pd:0:w.safetensors", &err, "head width 0: expected 1 to 65536");
  parse_bad("pd:99999999:w.safetensors", &err, "head width 99999999");
}

static char *ref_weights(const char *case_name) {
  return g_build_filename(sige_test_reference_dir(), case_name, "weights.safetensors", NULL);
}

static void test_load(void **state) {
  (void)state;
  g_autofree char *pd = ref_weights("pd-church128-tiny");
  g_autofree char *gancomp = ref_weights("gancomp-cityscapes-tiny");
  GError *err = NULL;
  /* the file's own kind */
  g_autoptr(sige_model) m = sige_model_load_spec(pd, &err);
  if (!m) fail_msg("%s", err->message);
  assert_int_equal(sige_model_get_kind(m), SIGE_MODEL_PD_UNET);
  /* a head width (the tiny model's heads are 32 wide) */
  g_autofree char *pd32 = g_strconcat("pd:32:", pd, NULL);
  g_autoptr(sige_model) m32 = sige_model_load_spec(pd32, &err);
  if (!m32) fail_msg("%s", err->message);
  assert_int_equal(sige_model_pd_config(m32)->head_dim, 32);
  /* the file's own channels given explicitly */
  g_autoptr(sige_model) g = sige_model_load_spec(gancomp, &err);
  if (!g) fail_msg("%s", err->message);
  const int *ch = sige_model_gancomp_config(g)->channels;
  g_autofree char *spec = g_strdup_printf("gancomp:%d_%d_%d_%d_%d_%d_%d_%d:%s", ch[0], ch[1],
                                          ch[2], ch[3], ch[4], ch[5], ch[6], ch[7], gancomp);
  g_autoptr(sige_model) g2 = sige_model_load_spec(spec, &err);
  if (!g2) fail_msg("%s", err->message);
  assert_memory_equal(sige_model_gancomp_config(g2)->channels, ch, 8 * sizeof(int));
  /* another kind than the spec's: both kinds and the prefix to use */
  g_autofree char *wrong = g_strconcat("spade:", pd, NULL);
  assert_null(sige_model_load_spec(wrong, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED));
  assert_non_null(strstr(err->message, "a SPADE (GauGAN) generator"));
  assert_non_null(strstr(err->message, "pd-unet"));
  assert_non_null(strstr(err->message, "use pd:PATH"));
  g_clear_error(&err);
  /* channels the weights do not have */
  g_autofree char *bad = g_strconcat("gancomp:64_64_64_64_64_64_64_64:", gancomp, NULL);
  assert_null(sige_model_load_spec(bad, &err));
  assert_non_null(strstr(err->message, "with channel configuration 64_64_64_64_64_64_64_64"));
  g_clear_error(&err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_good),
      cmocka_unit_test(test_parse_bad),
      cmocka_unit_test(test_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
