/* The reader on the real reference files (../shared/reference). */
#include <math.h>
#include <string.h>

#include "sige/error.h"
#include "sige/weights.h"
#include "test_util.h"

static sige_weights *load_case_file(const char *file) {
  const char *dir = sige_test_reference_dir();
  g_autofree char *path = g_build_filename(dir, "gaugan-cityscapes-tiny", file, NULL);
  if (!g_file_test(path, G_FILE_TEST_EXISTS))
    fail_msg("%s is missing (SIGE_REFERENCE_DIR/../shared/reference is missing or incomplete)",
             path);
  g_autoptr(GError) err = NULL;
  sige_weights *w = sige_weights_load_safetensors(path, &err);
  if (!w) fail_msg("%s", err->message);
  return w;
}

static void test_reference_weights_shapes(void **state) {
  (void)state;
  g_autoptr(sige_weights) w = load_case_file("weights.safetensors");
  g_autoptr(GError) err = NULL;
  const int64_t fc[] = {128, 36, 3, 3};
  const sige_tensor *t = sige_weights_require(w, "fc.weight", 4, fc, &err);
  if (!t) fail_msg("%s", err->message);
  assert_int_equal(sige_weights_dtype(w, "fc.weight"), SIGE_DTYPE_F16);
  const int64_t bias[] = {3};
  t = sige_weights_require(w, "conv_img.bias", 1, bias, &err);
  if (!t) fail_msg("%s", err->message);
  for (size_t i = 0; i < t->numel; i++) assert_true(isfinite(t->data[i]));
  const int64_t g[] = {128, 128, 3, 3};
  assert_non_null(sige_weights_require(w, "G_middle_0.conv_0.weight_orig", 4, g, NULL));
  assert_non_null(sige_weights_metadata(w, "format"));
  guint n = 0;
  sige_weights_names(w, &n);
  assert_true(n > 10);
}

static void test_reference_io_label(void **state) {
  (void)state;
  g_autoptr(sige_weights) w = load_case_file("io.safetensors");
  g_autoptr(GError) err = NULL;
  const int64_t shape[] = {256, 512};
  const sige_tensor *t = sige_weights_require(w, "label/0", 2, shape, &err);
  if (!t) fail_msg("%s", err->message);
  assert_int_equal(sige_weights_dtype(w, "label/0"), SIGE_DTYPE_I32);
  float lo = t->data[0], hi = t->data[0];
  for (size_t i = 0; i < t->numel; i++) {
    assert_true(t->data[i] == floorf(t->data[i]));
    lo = fminf(lo, t->data[i]);
    hi = fmaxf(hi, t->data[i]);
  }
  if (lo < 0 || hi > 34) fail_msg("label/0 values span [%g, %g], expected within 0..34", lo, hi);
  assert_true(hi > lo); /* a real label map has several classes */
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_reference_weights_shapes),
    cmocka_unit_test(test_reference_io_label),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
