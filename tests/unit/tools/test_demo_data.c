/* sige-make-demo-data: runs twice give identical bytes, the label maps use
 * only palette colours and match the committed ones, the edit is small, and
 * the weights have the SPADE layout the model loader expects. */
#include "test_util.h"

#include <glib/gstdio.h>
#include <string.h>

#include "sige-app/palette.h"
#include "sige-app/png_io.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/weights.h"

static const char *generator;
static char *out_a, *out_b;

static const char *const files[] = {"examples/street_labels.png", "examples/street_labels_edit.png",
                                    "models/gaugan-demo.safetensors", "palettes/Cityscapes.gpl"};

static void remove_tree(const char *dir) {
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name(d))) {
    g_autofree char *p = g_build_filename(dir, name, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_DIR))
      remove_tree(p);
    else
      g_unlink(p);
  }
  if (d) g_dir_close(d);
  g_rmdir(dir);
}

static void run_generator(const char *out) {
  const char *argv[] = {generator, out, NULL};
  int status = -1;
  GError *err = NULL;
  g_autofree char *err_text = NULL;
  gboolean ok = g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                             NULL, &err_text, &status, &err);
  if (!ok) fail_msg("cannot run %s: %s", generator, err->message);
  if (!g_spawn_check_wait_status(status, NULL)) fail_msg("%s failed: %s", generator, err_text);
}

static int setup(void **state) {
  (void)state;
  out_a = g_dir_make_tmp("sige-demo-a-XXXXXX", NULL);
  out_b = g_dir_make_tmp("sige-demo-b-XXXXXX", NULL);
  return out_a && out_b ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  remove_tree(out_a);
  remove_tree(out_b);
  g_free(out_a);
  g_free(out_b);
  return 0;
}

static void test_deterministic(void **state) {
  (void)state;
  run_generator(out_a);
  run_generator(out_b);
  for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *pa = g_build_filename(out_a, files[i], NULL);
    g_autofree char *pb = g_build_filename(out_b, files[i], NULL);
    g_autofree char *a = NULL, *b = NULL;
    gsize la = 0, lb = 0;
    assert_true(g_file_get_contents(pa, &a, &la, NULL));
    assert_true(g_file_get_contents(pb, &b, &lb, NULL));
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
  }
}

static int32_t *read_labels(const char *path) {
  guint8 *px = NULL;
  int w, h, c;
  GError *err = NULL;
  if (!sige_png_read(path, 3, &px, &w, &h, &c, &err)) fail_msg("%s", err->message);
  assert_int_equal(w, 512);
  assert_int_equal(h, 256);
  int32_t *labels = g_new(int32_t, (size_t)w * h);
  int64_t nearest = -1;
  sige_labels_from_rgb(px, w, h, labels, &nearest);
  assert_int_equal(nearest, 0); /* only exact palette colours */
  g_free(px);
  return labels;
}

static void test_label_maps(void **state) {
  (void)state;
  g_autofree char *pa = g_build_filename(out_a, files[0], NULL);
  g_autofree char *pe = g_build_filename(out_a, files[1], NULL);
  g_autofree int32_t *scene = read_labels(pa);
  g_autofree int32_t *edit = read_labels(pe);
  const size_t n = 512 * 256;
  size_t changed = 0;
  int counts[SIGE_CITYSCAPES_NUM_IDS] = {0};
  for (size_t i = 0; i < n; i++) {
    changed += scene[i] != edit[i];
    counts[scene[i]]++;
  }
  assert_true(changed >= n / 100 && changed <= n / 50);
  /* the classes a street scene needs are all there */
  const int needed[] = {7, 8, 11, 17, 21, 23, 24, 26};
  for (size_t i = 0; i < G_N_ELEMENTS(needed); i++) assert_true(counts[needed[i]] > 50);
  assert_int_equal(scene[0], 23); /* sky in the top-left corner... */
  assert_int_equal(scene[n - 512 * 1 + 256], 7); /* ...road at the bottom centre */

  /* the committed files hold the same pixels (compared decoded: zlib
   * versions may compress differently) */
  for (int k = 0; k < 2; k++) {
    g_autofree char *committed = g_build_filename(SIGE_SOURCE_DIR, "data", files[k], NULL);
    g_autofree int32_t *c = read_labels(committed);
    assert_memory_equal(c, k == 0 ? scene : edit, n * sizeof(int32_t));
  }
}

static void test_weights(void **state) {
  (void)state;
  g_autofree char *path = g_build_filename(out_a, files[2], NULL);
  GError *err = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(path, &err);
  if (!w) fail_msg("%s", err->message);
  assert_string_equal(sige_weights_metadata(w, "sige.model"), "spade-generator");
  assert_non_null(sige_weights_metadata(w, "sige.note"));
  guint n = 0;
  sige_weights_names(w, &n);
  /* fc, conv_img: 2 each; a block: 4 conv tensors + 8 per norm, 2 norms, and
   * with a learned shortcut conv_s + a third norm */
  assert_int_equal(n, 2 + 2 + 3 * (4 + 16) + 4 * (5 + 24));
  assert_int_equal(sige_weights_dtype(w, "fc.weight"), SIGE_DTYPE_F16);
  const int64_t fc[4] = {256, 36, 3, 3}, up0s[4] = {128, 256, 1, 1}, img[4] = {3, 16, 3, 3};
  const int64_t shared[4] = {32, 36, 3, 3}, beta[4] = {16, 32, 3, 3}, var[1] = {32};
  assert_non_null(sige_weights_require(w, "fc.weight", 4, fc, NULL));
  assert_non_null(sige_weights_require(w, "up_0.conv_s.weight", 4, up0s, NULL));
  assert_false(sige_weights_contains(w, "up_0.conv_s.bias"));
  assert_false(sige_weights_contains(w, "head_0.conv_s.weight"));
  assert_non_null(sige_weights_require(w, "conv_img.weight", 4, img, NULL));
  assert_non_null(sige_weights_require(w, "up_3.norm_s.mlp_shared.0.weight", 4, shared, NULL));
  assert_non_null(sige_weights_require(w, "up_3.norm_1.mlp_beta.weight", 4, beta, NULL));
  const sige_tensor *v = sige_weights_require(w, "up_3.norm_0.param_free_norm.running_var", 1,
                                              var, NULL);
  assert_non_null(v);
  assert_true(v->data[0] == 1.0f);
  /* the engine accepts the file as a SPADE generator */
  g_autoptr(sige_model) m = sige_model_load(path, &err);
  if (!m) fail_msg("%s", err->message);
  const sige_spade_config *cfg = sige_model_spade_config(m);
  assert_non_null(cfg);
  assert_int_equal(cfg->ngf, 16);
  assert_int_equal(cfg->label_nc, 35);
  assert_int_equal(cfg->num_upsampling_layers, 6);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PATH-TO-sige-make-demo-data\n", argv[0]);
    return 2;
  }
  generator = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_label_maps),
      cmocka_unit_test(test_weights),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
