/* Layer pixels <-> tensors: palette mapping, output rounding, the changed
 * rectangle, and the model checks the plug-in relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "sige-app/palette.h"
#include "random_weights.h"
#include "sige-layer-io.h"
#include "sige-model-cache.h"
#include "sige/error.h"

static void test_labels_rgb(void **state) {
  (void)state;
  const sige_palette *p = sige_palette_cityscapes();
  /* road (7), sky (23), and a colour one off sky */
  guint8 px[4 * 3];
  memcpy(px, p->entries[7].rgb, 3);
  memcpy(px + 3, p->entries[23].rgb, 3);
  memcpy(px + 6, p->entries[23].rgb, 3);
  memcpy(px + 9, p->entries[23].rgb, 3);
  px[11] ^= 1;
  sige_pixels in = {px, 2, 2, 3};
  int64_t nearest = -1;
  g_autofree int32_t *l = sige_labels_from_pixels(&in, 35, &nearest, NULL);
  assert_non_null(l);
  assert_int_equal(l[0], 7);
  assert_int_equal(l[1], 23);
  assert_int_equal(l[3], 23);
  assert_int_equal(nearest, 1);
}

static void test_labels_rgba_and_gray(void **state) {
  (void)state;
  const sige_palette *p = sige_palette_cityscapes();
  guint8 px[2 * 4] = {0};
  memcpy(px, p->entries[26].rgb, 3);
  px[3] = 0; /* alpha does not matter */
  memcpy(px + 4, p->entries[11].rgb, 3);
  px[7] = 255;
  sige_pixels in = {px, 2, 1, 4};
  int64_t nearest = -1;
  g_autofree int32_t *l = sige_labels_from_pixels(&in, 35, &nearest, NULL);
  assert_int_equal(l[0], 26);
  assert_int_equal(l[1], 11);
  assert_int_equal(nearest, 0);
  guint8 gray[3] = {0, 5, 34};
  sige_pixels g = {gray, 3, 1, 1};
  g_autofree int32_t *lg = sige_labels_from_pixels(&g, 35, NULL, NULL);
  assert_int_equal(lg[2], 34);
  gray[2] = 40;
  GError *err = NULL;
  assert_null(sige_labels_from_pixels(&g, 35, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_FORMAT));
  assert_non_null(strstr(err->message, "(2, 0)"));
  g_error_free(err);
}

static void test_output_rounding(void **state) {
  (void)state;
  g_autoptr(sige_tensor) t = sige_tensor_new4(1, 3, 2, 3, NULL);
  const float vals[6] = {-1.5f, -1.0f, 0.0f, 0.00392f, 1.0f, 2.0f};
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 6; i++) t->data[c * 6 + i] = vals[i];
  guint8 out[6 * 4];
  assert_true(sige_pixels_from_output(t, (sige_rect){0, 0, 3, 2}, 4, out, NULL));
  for (int i = 0; i < 6; i++) {
    float v = (vals[i] + 1.0f) * 127.5f;
    v = v < 0 ? 0 : v > 255 ? 255 : v;
    assert_int_equal(out[i * 4], (int)lrintf(v));
    assert_int_equal(out[i * 4 + 3], 255);
  }
  /* a sub-rectangle, gray */
  guint8 g[2];
  assert_true(sige_pixels_from_output(t, (sige_rect){1, 1, 2, 1}, 1, g, NULL));
  assert_int_equal(g[0], out[4 * 4]);
  assert_false(sige_pixels_from_output(t, (sige_rect){2, 1, 2, 1}, 3, g, NULL));
}

static void test_diff_rect(void **state) {
  (void)state;
  guint8 a[5 * 4 * 3] = {0}, b[5 * 4 * 3] = {0};
  sige_pixels pa = {a, 5, 4, 3}, pb = {b, 5, 4, 3};
  assert_int_equal(sige_pixels_diff_rect(&pa, &pb).width, 0);
  b[(1 * 5 + 3) * 3 + 2] = 9;
  b[(2 * 5 + 1) * 3] = 1;
  sige_rect r = sige_pixels_diff_rect(&pa, &pb);
  assert_int_equal(r.x, 1);
  assert_int_equal(r.y, 1);
  assert_int_equal(r.width, 3);
  assert_int_equal(r.height, 2);
}

static void test_model_checks(void **state) {
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
  /* wrong size: an error naming both sizes */
  int64_t s[4];
  sige_model_input_shape(m, s);
  g_autofree guint8 *px = g_malloc0((size_t)(s[3] + 1) * s[2] * 3);
  sige_pixels bad = {px, (int)s[3] + 1, (int)s[2], 3};
  assert_null(sige_model_input_from_pixels(m, &bad, NULL, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  g_clear_error(&err);
  sige_pixels good = {px, (int)s[3], (int)s[2], 3};
  sige_input_report rep = {0, 0};
  g_autoptr(sige_tensor) in = sige_model_input_from_pixels(m, &good, NULL, &rep, &err);
  assert_non_null(in);
  assert_int_equal(SIGE_W(in), s[3]);
  assert_int_equal(rep.n_nearest, 0); /* black is an exact colour (unlabeled) */
  sige_model_ref_unref(r);
}

static void test_image_pixels(void **state) {
  (void)state;
  /* RGBA: alpha ignored; the CLI's v / 127.5 - 1 */
  guint8 rgba[2 * 4] = {0, 255, 128, 7, 10, 20, 30, 0};
  sige_pixels in = {rgba, 2, 1, 4};
  g_autoptr(sige_tensor) t = sige_image_from_pixels(&in, NULL);
  assert_non_null(t);
  assert_int_equal(SIGE_C(t), 3);
  assert_int_equal(SIGE_W(t), 2);
  assert_float_equal(t->data[0], -1.0f, 0);
  assert_float_equal(t->data[2], 1.0f, 0);     /* G of pixel 0 */
  assert_float_equal(t->data[4], 128 / 127.5f - 1.0f, 0);
  assert_float_equal(t->data[5], 30 / 127.5f - 1.0f, 0);
  /* gray (+ alpha): replicated into the three channels */
  guint8 ga[2 * 2] = {51, 0, 204, 255};
  sige_pixels g = {ga, 2, 1, 2};
  g_autoptr(sige_tensor) tg = sige_image_from_pixels(&g, NULL);
  for (int c = 0; c < 3; c++) {
    assert_float_equal(tg->data[c * 2], 51 / 127.5f - 1.0f, 0);
    assert_float_equal(tg->data[c * 2 + 1], 204 / 127.5f - 1.0f, 0);
  }
  /* and back: the output rounding gives the pixels again */
  guint8 back[2 * 3];
  assert_true(sige_pixels_from_output(t, (sige_rect){0, 0, 2, 1}, 3, back, NULL));
  const guint8 want[6] = {0, 255, 128, 10, 20, 30};
  assert_memory_equal(back, want, 6);
}

/* A DDPM UNet small enough to build in a unit test (random weights). */
static sige_model *tiny_ddpm(void) {
  sige_ddpm_config c;
  sige_ddpm_config_init(&c);
  c.ch = 32;
  c.n_ch_mult = 2;
  c.ch_mult[0] = 1, c.ch_mult[1] = 1;
  c.num_res_blocks = 1;
  c.n_attn_resolutions = 0;
  c.image_size = 32;
  g_autoptr(sige_weights) w = sige_random_ddpm_weights(&c, 1, NULL);
  assert_non_null(w);
  sige_model *m = sige_model_new_ddpm(&c, w, NULL);
  assert_non_null(m);
  return m;
}

static void test_ddpm_input(void **state) {
  (void)state;
  g_autoptr(sige_model) m = tiny_ddpm();
  assert_int_equal(sige_model_input_kind(m, NULL), SIGE_INPUT_IMAGE);
  GError *err = NULL;
  /* the input: the layer's pixels, at the model's size only */
  g_autofree guint8 *px = g_malloc0(33 * 32 * 3);
  sige_pixels bad = {px, 33, 32, 3};
  assert_null(sige_model_input_from_pixels(m, &bad, NULL, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  assert_non_null(strstr(err->message, "33 x 32"));
  assert_non_null(strstr(err->message, "32 x 32"));
  g_clear_error(&err);
  sige_pixels good = {px, 32, 32, 1};
  g_autoptr(sige_tensor) in = sige_model_input_from_pixels(m, &good, NULL, NULL, &err);
  assert_non_null(in);
  assert_int_equal(SIGE_C(in), 3);
  assert_float_equal(in->data[0], -1.0f, 0);
}

/* Every setting the per-step caches depend on voids the snapshot; the
 * options come from the app layer's rules. */
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
      cmocka_unit_test(test_labels_rgb),      cmocka_unit_test(test_labels_rgba_and_gray),
      cmocka_unit_test(test_output_rounding), cmocka_unit_test(test_diff_rect),
      cmocka_unit_test(test_model_checks),    cmocka_unit_test(test_corrupt_model),
      cmocka_unit_test(test_image_pixels),    cmocka_unit_test(test_ddpm_input),
      cmocka_unit_test(test_options_change),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
