#include <string.h>
/* sige_model_load recognises every reference case's weights by their keys. */
#include "test_util.h"

#include "sige/model.h"

static void expect_kind(const char *case_name, sige_model_kind kind) {
  g_autofree char *p =
      g_build_filename(sige_test_reference_dir(), case_name, "weights.safetensors", NULL);
  GError *error = NULL;
  g_autoptr(sige_model) m = sige_model_load(p, &error);
  if (!m) fail_msg("%s: %s", case_name, error->message);
  if (sige_model_get_kind(m) != kind)
    fail_msg("%s loaded as %s, expected %s", case_name,
             sige_model_kind_name(sige_model_get_kind(m)), sige_model_kind_name(kind));
}

static void test_kinds(void **state) {
  (void)state;
  expect_kind("gaugan-cityscapes-tiny", SIGE_MODEL_SPADE);
  expect_kind("gancomp-cityscapes-tiny", SIGE_MODEL_GANCOMP_SPADE);
  expect_kind("ddpm-church-tiny", SIGE_MODEL_DDPM_UNET);
  expect_kind("pd-church128-tiny", SIGE_MODEL_PD_UNET);
}

/* The CLIP text encoder of the reference case is recognised by its SD
 * single-file keys; its width (32) is no multiple of 64, so the head count
 * cannot be inferred without metadata: the error says which key to add. */
static void test_clip_text_heads(void **state) {
  (void)state;
  g_autofree char *p =
      g_build_filename(sige_test_reference_dir(), "clip-text-tiny", "weights.safetensors", NULL);
  GError *error = NULL;
  g_autoptr(sige_model) m = sige_model_load(p, &error);
  assert_null(m);
  if (!error || !strstr(error->message, "sige.heads"))
    fail_msg("expected an error naming sige.heads, got %s", error ? error->message : "none");
  g_clear_error(&error);
}

/* A file of no known layout names what was expected. */
static void test_unknown_layout(void **state) {
  (void)state;
  g_autofree char *p =
      g_build_filename(sige_test_reference_dir(), "gaugan-cityscapes-tiny", "io.safetensors", NULL);
  GError *error = NULL;
  g_autoptr(sige_model) m = sige_model_load(p, &error);
  assert_null(m);
  assert_non_null(error);
  assert_non_null(strstr(error->message, "io.safetensors"));
  g_clear_error(&error);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kinds),
      cmocka_unit_test(test_unknown_layout),
      cmocka_unit_test(test_clip_text_heads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
