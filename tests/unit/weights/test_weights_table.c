/* The name -> tensor table: insert, replace, lookups, sorted names, require. */
#include <string.h>

#include "sige/error.h"
#include "sige/weights.h"
#include "test_util.h"

static sige_tensor *vec(int64_t n, float fill) {
  sige_tensor *t = sige_tensor_new(1, &n, NULL);
  assert_non_null(t);
  for (size_t i = 0; i < t->numel; i++) t->data[i] = fill;
  return t;
}

static void test_insert_get_contains(void **state) {
  (void)state;
  g_autoptr(sige_weights) w = sige_weights_new();
  assert_null(sige_weights_path(w));
  assert_null(sige_weights_get(w, "a"));
  assert_false(sige_weights_contains(w, "a"));
  sige_weights_insert(w, "a", vec(3, 1.0f));
  assert_true(sige_weights_contains(w, "a"));
  assert_int_equal(sige_weights_get(w, "a")->numel, 3);
  assert_int_equal(sige_weights_dtype(w, "a"), SIGE_DTYPE_F32);
  /* Replacing frees the old tensor (ASan checks) and keeps one name. */
  sige_weights_insert(w, "a", vec(5, 2.0f));
  assert_int_equal(sige_weights_get(w, "a")->numel, 5);
  assert_true(sige_weights_get(w, "a")->data[4] == 2.0f);
  guint n = 0;
  sige_weights_names(w, &n);
  assert_int_equal(n, 1);
}

static void test_names_sorted(void **state) {
  (void)state;
  g_autoptr(sige_weights) w = sige_weights_new();
  const char *in[] = {"m.b", "a", "z.0", "m.a", "B", "m"};
  for (guint i = 0; i < G_N_ELEMENTS(in); i++) sige_weights_insert(w, in[i], vec(1, (float)i));
  guint n = 0;
  const char *const *names = sige_weights_names(w, &n);
  assert_int_equal(n, G_N_ELEMENTS(in));
  const char *want[] = {"B", "a", "m", "m.a", "m.b", "z.0"};
  for (guint i = 0; i < n; i++) assert_string_equal(names[i], want[i]);
  assert_null(names[n]);
  sige_weights_names(w, NULL); /* n is optional */
}

static void test_require(void **state) {
  (void)state;
  g_autoptr(sige_weights) w = sige_weights_new();
  int64_t s[4] = {2, 3, 4, 5};
  sige_weights_insert(w, "conv.weight", sige_tensor_new(4, s, NULL));

  g_autoptr(GError) err = NULL;
  const int64_t ok[4] = {2, -1, 4, 5};
  assert_non_null(sige_weights_require(w, "conv.weight", 4, ok, &err));
  assert_null(err);
  assert_non_null(sige_weights_require(w, "conv.weight", 0, NULL, &err));
  assert_non_null(sige_weights_require(w, "conv.weight", 4, NULL, &err));
  assert_null(err);

  assert_null(sige_weights_require(w, "conv.bias", 1, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_MISSING));
  assert_non_null(strstr(err->message, "'conv.bias'"));
  g_clear_error(&err);

  const int64_t bad[4] = {2, 3, 4, 6};
  assert_null(sige_weights_require(w, "conv.weight", 4, bad, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  assert_non_null(strstr(err->message, "'conv.weight'"));
  assert_non_null(strstr(err->message, "[2, 3, 4, 5]"));
  assert_non_null(strstr(err->message, "[2, 3, 4, 6]"));
  g_clear_error(&err);

  const int64_t rank[2] = {2, -1};
  assert_null(sige_weights_require(w, "conv.weight", 2, rank, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  assert_non_null(strstr(err->message, "[2, *]"));
}

static void test_dtype_table(void **state) {
  (void)state;
  assert_string_equal(sige_dtype_name(SIGE_DTYPE_F32), "F32");
  assert_string_equal(sige_dtype_name(SIGE_DTYPE_BF16), "BF16");
  assert_string_equal(sige_dtype_name(SIGE_DTYPE_BOOL), "BOOL");
  assert_int_equal(sige_dtype_size(SIGE_DTYPE_F16), 2);
  assert_int_equal(sige_dtype_size(SIGE_DTYPE_F64), 8);
  assert_int_equal(sige_dtype_size(SIGE_DTYPE_I64), 8);
  assert_int_equal(sige_dtype_size(SIGE_DTYPE_I32), 4);
  assert_int_equal(sige_dtype_size(SIGE_DTYPE_U8), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_insert_get_contains),
    cmocka_unit_test(test_names_sorted),
    cmocka_unit_test(test_require),
    cmocka_unit_test(test_dtype_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
