/* The plug-in's own glue around the app layer: the changed rectangle, the
 * model cache, and which setting changes void a session's caches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "random_weights.h"
#include "sige-layer-io.h"
#include "sige-model-cache.h"
#include "sige/error.h"

static void test_diff_rect(void **state) {
  (void)state;
  guint8 a[5 * 4 * 3] = {0}, b[5 * 4 * 3] = {0};
  sige_pixels pa = {a, 5, 4, 3, 8}, pb = {b, 5, 4, 3, 8};
  assert_int_equal(sige_pixels_diff_rect(&pa, &pb).width, 0);
  b[(1 * 5 + 3) * 3 + 2] = 9;
  b[(2 * 5 + 1) * 3] = 1;
  sige_rect r = sige_pixels_diff_rect(&pa, &pb);
  assert_int_equal(r.x, 1);
  assert_int_equal(r.y, 1);
  assert_int_equal(r.width, 3);
  assert_int_equal(r.height, 2);
}

static void test_model_cache(void **state) {
  (void)state;
  GError *err = NULL;
  sige_model_ref *r = sige_model_cache_get(SIGE_SOURCE_DIR "/data/models/gaugan-demo.safetensors", &err);
  assert_non_null(r);
  const sige_model *m = sige_model_ref_model(r);
  assert_int_equal(sige_model_input_kind(m, NULL), SIGE_INPUT_LABELS);
  /* the cache shares a loaded model */
  sige_model_ref *r2 = sige_model_cache_get(SIGE_SOURCE_DIR "/data/models/gaugan-demo.safetensors", NULL);
  assert_ptr_equal(r, r2);
  sige_model_ref_unref(r2);
  g_autofree char *desc = sige_model_describe(m);
  assert_non_null(strstr(desc, "GauGAN"));
  sige_model_ref_unref(r);
}
static sige_model *tiny_ddpm(void) {
  GError *e = NULL;
  sige_model *m = sige_tiny_ddpm_model(1, &e);
  if (!m) fail_msg("%s", e->message);
  return m;
}

static void test_options_change(void **state) {
  (void)state;
  g_autoptr(sige_model) m = tiny_ddpm();
  sige_edit_params p;
  sige_edit_params_init(&p);
  p.seed = 5;
  sige_session_options o, o2;
  assert_true(sige_edit_session_options(m, &p, &o, NULL));
  p.steps = 3, p.strength = 0.2, p.sampler = SIGE_SAMPLER_DDIM;
  assert_true(sige_edit_session_options(m, &p, &o2, NULL));
  g_autofree char *none = sige_plugin_options_change(&o2, &o2);
  assert_null(none);
  g_autofree char *all = sige_plugin_options_change(&o, &o2);
  assert_string_equal(all, "steps, strength, sampler");
  sige_session_options o3 = o2;
  o3.seed = 6;
  o3.fp16_caches = TRUE;
  g_autofree char *two = sige_plugin_options_change(&o2, &o3);
  assert_string_equal(two, "seed, cache precision");
  o3 = o2;
  o3.device = SIGE_DEVICE_CUDA;
  g_autofree char *dev = sige_plugin_options_change(&o2, &o3);
  assert_string_equal(dev, "device");
  /* a label-map model after an image model: the kind */
  sige_session_options ol;
  sige_session_options_init(&ol);
  ol.device = o2.device;
  g_autofree char *kind = sige_plugin_options_change(&o2, &ol);
  assert_string_equal(kind, "model kind");
}

static void test_corrupt_model(void **state) {
  (void)state;
  g_autofree char *path = g_build_filename(g_get_tmp_dir(), "sige-corrupt-XXXXXX.safetensors", NULL);
  int fd = g_mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "\x10\0\0\0\0\0\0\0{not json", 17), 17);
  close(fd);
  GError *err = NULL;
  assert_null(sige_model_cache_get(path, &err));
  assert_non_null(err);
  g_error_free(err);
  g_unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_diff_rect),
      cmocka_unit_test(test_model_cache),
      cmocka_unit_test(test_corrupt_model),
      cmocka_unit_test(test_options_change),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
