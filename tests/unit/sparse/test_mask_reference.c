/* The mask pyramid and the active blocks of every gather geometry against the
 * reference vectors produced by the published implementation: all must match
 * exactly (counts, values and order). */
#include "sparse_test_util.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

#include "sige/weights.h"

typedef struct {
  int min_h, min_w, dilation, edits;
  float threshold;
  int block_normal, block_instance;
  double diff_eps;
  int dilate_radius;
} case_params;

static int int_member(JsonObject *o, const char *a, const char *b, const char *file) {
  const char *name = json_object_has_member(o, a) ? a : b;
  if (!name || !json_object_has_member(o, name))
    fail_msg("%s: \"sige\" has neither %s nor %s", file, a, b ? b : "(none)");
  return (int)json_object_get_int_member(o, name);
}

static case_params read_case(const char *dir) {
  g_autofree char *file = g_build_filename(dir, "case.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new();
  GError *err = NULL;
  if (!json_parser_load_from_file(parser, file, &err)) fail_msg("%s: %s", file, err->message);
  JsonObject *root = json_node_get_object(json_parser_get_root(parser));
  if (!root || !json_object_has_member(root, "sige")) fail_msg("%s: no \"sige\" object", file);
  JsonObject *s = json_object_get_object_member(root, "sige");
  case_params p = {0};
  JsonNode *mr = json_object_get_member(s, "downsample_min_res");
  if (!mr) fail_msg("%s: no sige.downsample_min_res", file);
  if (JSON_NODE_HOLDS_ARRAY(mr)) {
    JsonArray *a = json_node_get_array(mr);
    assert_int_equal(json_array_get_length(a), 2);
    p.min_h = (int)json_array_get_int_element(a, 0);
    p.min_w = (int)json_array_get_int_element(a, 1);
  } else {
    p.min_h = p.min_w = (int)json_node_get_int(mr);
  }
  p.dilation = int_member(s, "downsample_dilation", NULL, file);
  p.threshold = (float)json_object_get_double_member(s, "downsample_threshold");
  p.block_normal = int_member(s, "block_size_normal", "main_block_size", file);
  p.block_instance = int_member(s, "block_size_instance", "shortcut_block_size", file);
  p.diff_eps = json_object_get_double_member(s, "diff_eps");
  p.dilate_radius = int_member(s, "mask_dilate_radius", NULL, file);
  p.edits = json_object_has_member(root, "edits") ? (int)json_object_get_int_member(root, "edits")
                                                   : 0;
  return p;
}

static sige_mask *mask_of(const sige_weights *w, const char *name) {
  const sige_tensor *t = sige_weights_get(w, name);
  if (!t) fail_msg("%s: tensor %s is missing", sige_weights_path(w), name);
  assert_int_equal(t->ndim, 2);
  sige_mask *m = sige_mask_new((int)t->shape[0], (int)t->shape[1]);
  for (size_t i = 0; i < t->numel; i++) {
    if (t->data[i] != 0.0f && t->data[i] != 1.0f)
      fail_msg("%s: %s[%zu] = %g is not 0/1", sige_weights_path(w), name, i, t->data[i]);
    m->data[i] = t->data[i] != 0.0f;
  }
  return m;
}

/* "" for single-edit cases, "/k" otherwise */
static void check_edit(const char *cname, const sige_weights *io, const case_params *p,
                       const char *suffix) {
  g_autofree char *diff_name = g_strdup_printf("diff_mask%s", suffix);
  g_autoptr(sige_mask) diff = mask_of(io, diff_name);
  g_autoptr(sige_mask_pyramid) pyr =
      sige_mask_pyramid_new(diff, p->min_h, p->min_w, p->dilation, p->threshold);

  /* every reference level, and no other */
  guint n_names = 0;
  const char *const *names = sige_weights_names(io, &n_names);
  int n_levels = 0;
  for (guint i = 0; i < n_names; i++) {
    int h, w, used = 0;
    if (!p->edits) {
      if (sscanf(names[i], "mask/%dx%d%n", &h, &w, &used) != 2 || names[i][used]) continue;
    } else {
      int k;
      if (sscanf(names[i], "mask/%d/%dx%d%n", &k, &h, &w, &used) != 3 || names[i][used]) continue;
      char ks[16];
      snprintf(ks, sizeof ks, "/%d", k);
      if (g_strcmp0(ks, suffix) != 0) continue;
    }
    const sige_mask *got = sige_mask_pyramid_get(pyr, h, w);
    if (!got) fail_msg("%s: the pyramid has no level %dx%d (%s)", cname, h, w, names[i]);
    g_autoptr(sige_mask) want = mask_of(io, names[i]);
    g_autofree char *what = g_strdup_printf("%s %s", cname, names[i]);
    sp_assert_mask_equal(got, want, what);
    n_levels++;
  }
  if (n_levels == 0) fail_msg("%s: no mask%s/HxW tensors in io.safetensors", cname, suffix);
  assert_int_equal(sige_mask_pyramid_levels(pyr), n_levels);

  int n_keys = 0;
  for (guint i = 0; i < n_names; i++) {
    int h, w, bh, bw, sh, sw, oh, ow, used = 0;
    if (sscanf(names[i], "active_indices/%dx%d/b%dx%d/s%dx%d/o%dx%d%n", &h, &w, &bh, &bw, &sh,
               &sw, &oh, &ow, &used) != 8)
      continue;
    if (g_strcmp0(names[i] + used, suffix) != 0) continue;
    assert_int_equal(bh, bw);
    assert_int_equal(sh, sw);
    assert_int_equal(oh, ow);
    /* the convolution behind each geometry of the published models */
    int kernel, stride, req;
    if (oh == 1) {
      kernel = 3, stride = 1, req = p->block_normal;         /* 3x3, padding 1 */
    } else if (bh == p->block_instance) {
      kernel = 1, stride = 1, req = p->block_instance;       /* 1x1 shortcut */
    } else {
      kernel = 3, stride = 2, req = p->block_normal;         /* stride-2 downsample */
    }
    sige_block_geometry g;
    sige_block_geometry_init(&g, kernel, stride, oh, req);
    if (g.block != bh || g.block_stride != sh)
      fail_msg("%s %s: geometry k%d s%d gives block %d stride %d", cname, names[i], kernel,
               stride, g.block, g.block_stride);
    const sige_mask *m = sige_mask_pyramid_get(pyr, h, w);
    if (!m) fail_msg("%s %s: no pyramid level %dx%d", cname, names[i], h, w);
    g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
    const sige_tensor *want = sige_weights_get(io, names[i]);
    assert_int_equal(want->ndim, 2);
    if (ab->n != (int)want->shape[0])
      fail_msg("%s %s: %d active blocks, expected %d", cname, names[i], ab->n,
               (int)want->shape[0]);
    for (int b = 0; b < 2 * ab->n; b++)
      if ((float)ab->corners[b] != want->data[b])
        fail_msg("%s %s: block %d coordinate %d is %d, expected %g", cname, names[i], b / 2,
                 b % 2, ab->corners[b], want->data[b]);
    n_keys++;
  }
  if (n_keys == 0) fail_msg("%s: no active_indices%s tensors", cname, suffix);
}

static void check_case(const char *cname) {
  const char *ref = sige_test_reference_dir();
  g_autofree char *dir = g_build_filename(ref, cname, NULL);
  if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) fail_msg("reference case %s is missing", dir);
  case_params p = read_case(dir);
  g_autofree char *io_path = g_build_filename(dir, "io.safetensors", NULL);
  GError *err = NULL;
  g_autoptr(sige_weights) io = sige_weights_load_safetensors(io_path, &err);
  if (!io) fail_msg("%s: %s", io_path, err->message);
  if (p.edits == 0) {
    check_edit(cname, io, &p, "");
  } else {
    for (int k = 1; k <= p.edits; k++) {
      g_autofree char *suffix = g_strdup_printf("/%d", k);
      check_edit(cname, io, &p, suffix);
    }
  }
}

/* The DDPM difference mask from the images: any channel differs by more than
 * diff_eps, then the cross dilation. */
static void check_diff_mask(const char *cname, const char *a_name, const char *b_name) {
  const char *ref = sige_test_reference_dir();
  g_autofree char *dir = g_build_filename(ref, cname, NULL);
  case_params p = read_case(dir);
  g_autofree char *io_path = g_build_filename(dir, "io.safetensors", NULL);
  GError *err = NULL;
  g_autoptr(sige_weights) io = sige_weights_load_safetensors(io_path, &err);
  if (!io) fail_msg("%s: %s", io_path, err->message);
  const sige_tensor *a = sige_weights_get(io, a_name), *b = sige_weights_get(io, b_name);
  if (!a || !b) fail_msg("%s: %s or %s is missing", io_path, a_name, b_name);
  g_autoptr(sige_mask) raw = sige_mask_from_diff(a, b, (float)p.diff_eps);
  g_autoptr(sige_mask) got = sige_mask_cross_dilate(raw, p.dilate_radius);
  g_autoptr(sige_mask) want = mask_of(io, "diff_mask");
  g_autofree char *what = g_strdup_printf("%s diff_mask", cname);
  sp_assert_mask_equal(got, want, what);
}

static void test_gaugan(void **s) { (void)s; check_case("gaugan-cityscapes-tiny"); }
static void test_gancomp(void **s) { (void)s; check_case("gancomp-cityscapes-tiny"); }
static void test_ddpm(void **s) { (void)s; check_case("ddpm-church-tiny"); }
static void test_ddpm_dpmsolver(void **s) { (void)s; check_case("ddpm-church-tiny-dpmsolver"); }
static void test_pd(void **s) { (void)s; check_case("pd-church128-tiny"); }
static void test_ddpm_diff(void **s) {
  (void)s;
  check_diff_mask("ddpm-church-tiny", "x0_orig", "x0_edit");
  check_diff_mask("ddpm-church-tiny-dpmsolver", "x0_orig", "x0_edit");
  check_diff_mask("pd-church128-tiny", "x0_orig", "x0_edit");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gaugan),         cmocka_unit_test(test_gancomp),
      cmocka_unit_test(test_ddpm),           cmocka_unit_test(test_ddpm_dpmsolver),
      cmocka_unit_test(test_pd),             cmocka_unit_test(test_ddpm_diff),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
