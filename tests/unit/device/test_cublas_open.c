/* cuBLAS opened on demand (gpu/cublas_loader.h), in a CUDA build, GPU or
 * not:
 * - a process that makes a context, probes for a CUDA device and runs a
 *   CPU session's worth of setup has not mapped cuBLAS (it cost 216 MB of
 *   resident memory when linked);
 * - this build's cuBLAS opens and every function the backend calls
 *   resolves (the _v2 names of cublas_v2.h included);
 * - paths that do not serve give a device error naming each of them. */
#include "test_util.h"

#include <string.h>

#include "cublas_loader.h"
#include "sige/context.h"
#include "sige/device.h"
#include "sige/error.h"

static gboolean cublas_mapped(void) {
  g_autofree gchar *maps = NULL;
  if (!g_file_get_contents("/proc/self/maps", &maps, NULL, NULL)) fail_msg("cannot read /proc/self/maps");
  return strstr(maps, "libcublas") != NULL;
}

static void test_not_loaded_at_start(void **state) {
  (void)state;
  sige_ctx *ctx = sige_ctx_new(1);
  GError *error = NULL;
  /* where there is no GPU the probe fails; either way it only uses cudart */
  (void)sige_cuda_probe(NULL, &error);
  g_clear_error(&error);
  sige_ctx_free(ctx);
  assert_false(cublas_mapped());
}

static void test_opens(void **state) {
  (void)state;
  sige_cublas lib;
  GError *error = NULL;
  if (!sige_cublas_open(&lib, NULL, &error)) fail_msg("%s", error->message);
  assert_non_null(lib.create);
  assert_non_null(lib.destroy);
  assert_non_null(lib.set_stream);
  assert_non_null(lib.sgemm);
  assert_non_null(lib.sgemm_strided_batched);
  /* a call into the library ("success" in cuBLAS 13) */
  const char *ok = lib.status_string(CUBLAS_STATUS_SUCCESS);
  assert_true(ok && *ok);
  assert_true(cublas_mapped());
  sige_cublas_close(&lib);
  assert_null(lib.module);
}

static void test_bad_paths(void **state) {
  (void)state;
  const char *const paths[] = {"/nonexistent/libcublas.so.99", "libc.so.6", NULL};
  sige_cublas lib;
  GError *error = NULL;
  assert_false(sige_cublas_open(&lib, paths, &error));
  assert_non_null(error);
  assert_true(g_error_matches(error, SIGE_ERROR, SIGE_ERROR_DEVICE));
  assert_non_null(strstr(error->message, "/nonexistent/libcublas.so.99"));
  assert_non_null(strstr(error->message, "libc.so.6 has no cublasCreate_v2"));
  assert_null(lib.module);
  g_error_free(error);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_not_loaded_at_start),
      cmocka_unit_test(test_opens),
      cmocka_unit_test(test_bad_paths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
