/* Safetensors writer: exact F32/F16 round trips, the header layout, and
 * failures that leave nothing behind. */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "sige/error.h"
#include "sige/weights.h"
#include "test_util.h"

typedef struct {
  char *dir;
} fixture;

static void remove_tree(const char *path) {
  if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
    GDir *d = g_dir_open(path, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d))) {
      g_autofree char *p = g_build_filename(path, n, NULL);
      remove_tree(p);
    }
    if (d) g_dir_close(d);
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  f->dir = g_dir_make_tmp("sige-st-write-XXXXXX", NULL);
  assert_non_null(f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  remove_tree(f->dir);
  g_free(f->dir);
  g_free(f);
  return 0;
}

static guint count_entries(const char *dir) {
  GDir *d = g_dir_open(dir, 0, NULL);
  assert_non_null(d);
  guint n = 0;
  while (g_dir_read_name(d)) n++;
  g_dir_close(d);
  return n;
}

/* Inserted out of order on purpose: the file must come out sorted.  When
 * `f16_exact`, values are k/64 with |k| < 2048, exactly representable in F16. */
static sige_weights *make_weights(gboolean f16_exact) {
  sige_test_rng rng = sige_test_rng_new(42);
  sige_weights *w = sige_weights_new();
  const struct {
    const char *name;
    int ndim;
    int64_t shape[4];
  } specs[] = {
    {"z.conv.weight", 4, {4, 3, 3, 3}},
    {"a.bias", 1, {7}},
    {"m.linear", 2, {5, 9}},
    {"empty", 2, {0, 3}},
    {"m.cube", 3, {2, 3, 4}},
  };
  for (guint s = 0; s < G_N_ELEMENTS(specs); s++) {
    sige_tensor *t = sige_tensor_new(specs[s].ndim, specs[s].shape, NULL);
    assert_non_null(t);
    for (size_t i = 0; i < t->numel; i++) {
      if (f16_exact)
        t->data[i] = (float)((int)(sige_test_rng_next(&rng) % 4095) - 2047) / 64.0f;
      else
        t->data[i] = sige_test_rng_uniform(&rng, -1e6f, 1e6f) * (i % 7 == 0 ? 1e-30f : 1.0f);
    }
    sige_weights_insert(w, specs[s].name, t);
  }
  return w;
}

static void assert_same(const sige_weights *a, const sige_weights *b, sige_dtype dtype) {
  guint na = 0, nb = 0;
  const char *const *names_a = sige_weights_names(a, &na);
  const char *const *names_b = sige_weights_names(b, &nb);
  assert_int_equal(na, nb);
  for (guint i = 0; i < na; i++) {
    assert_string_equal(names_a[i], names_b[i]);
    const sige_tensor *x = sige_weights_get(a, names_a[i]);
    const sige_tensor *y = sige_weights_get(b, names_b[i]);
    assert_true(sige_tensor_same_shape(x, y));
    assert_int_equal(x->numel, y->numel);
    if (x->numel) assert_memory_equal(x->data, y->data, x->numel * sizeof(float));
    assert_int_equal(sige_weights_dtype(b, names_b[i]), dtype);
  }
}

static void test_roundtrip_f32(void **state) {
  const fixture *f = *state;
  g_autoptr(sige_weights) w = make_weights(FALSE);
  /* Special values survive F32 bit for bit. */
  int64_t four = 4;
  sige_tensor *sp = sige_tensor_new(1, &four, NULL);
  sp->data[0] = INFINITY, sp->data[1] = -0.0f, sp->data[2] = 1e-45f, sp->data[3] = -INFINITY;
  sige_weights_insert(w, "special", sp);
  g_autoptr(GHashTable) meta = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(meta, "format", "pt");
  g_hash_table_insert(meta, "note", "caf\xc3\xa9 \"quoted\"");

  g_autofree char *path = g_build_filename(f->dir, "rt32.safetensors", NULL);
  g_autoptr(GError) err = NULL;
  assert_true(sige_weights_save_safetensors(w, path, SIGE_DTYPE_F32, meta, &err));
  assert_null(err);
  g_autoptr(sige_weights) r = sige_weights_load_safetensors(path, &err);
  if (!r) fail_msg("%s", err->message);
  assert_same(w, r, SIGE_DTYPE_F32);
  assert_string_equal(sige_weights_metadata(r, "format"), "pt");
  assert_string_equal(sige_weights_metadata(r, "note"), "caf\xc3\xa9 \"quoted\"");
  assert_int_equal(count_entries(f->dir), 1); /* no temporary left behind */

  /* Overwriting an existing file goes through the same rename. */
  assert_true(sige_weights_save_safetensors(r, path, SIGE_DTYPE_F32, NULL, &err));
  g_autoptr(sige_weights) r2 = sige_weights_load_safetensors(path, &err);
  assert_non_null(r2);
  assert_same(w, r2, SIGE_DTYPE_F32);
  assert_null(sige_weights_metadata(r2, "format"));
  assert_int_equal(count_entries(f->dir), 1);
}

static void test_roundtrip_f16(void **state) {
  const fixture *f = *state;
  g_autoptr(sige_weights) w = make_weights(TRUE);
  g_autofree char *path = g_build_filename(f->dir, "rt16.safetensors", NULL);
  g_autoptr(GError) err = NULL;
  assert_true(sige_weights_save_safetensors(w, path, SIGE_DTYPE_F16, NULL, &err));
  g_autoptr(sige_weights) r = sige_weights_load_safetensors(path, &err);
  if (!r) fail_msg("%s", err->message);
  assert_same(w, r, SIGE_DTYPE_F16);
}

/* The bytes on disk: length field, padded header, sorted contiguous entries. */
static void test_header_layout(void **state) {
  const fixture *f = *state;
  g_autoptr(sige_weights) w = make_weights(TRUE);
  g_autofree char *path = g_build_filename(f->dir, "layout.safetensors", NULL);
  assert_true(sige_weights_save_safetensors(w, path, SIGE_DTYPE_F16, NULL, NULL));

  g_autofree char *bytes = NULL;
  gsize size = 0;
  assert_true(g_file_get_contents(path, &bytes, &size, NULL));
  guint64 hlen;
  memcpy(&hlen, bytes, 8);
  hlen = GUINT64_FROM_LE(hlen);
  assert_int_equal(hlen % 8, 0);
  assert_true(8 + hlen <= size);

  g_autoptr(JsonParser) p = json_parser_new();
  assert_true(json_parser_load_from_data(p, bytes + 8, (gssize)hlen, NULL));
  JsonObject *root = json_node_get_object(json_parser_get_root(p));
  assert_false(json_object_has_member(root, "__metadata__"));
  g_autoptr(GList) members = json_object_get_members(root);
  gint64 pos = 0;
  const char *prev = NULL;
  guint count = 0;
  for (GList *l = members; l; l = l->next, count++) {
    const char *name = l->data;
    if (prev) assert_true(strcmp(prev, name) < 0);
    prev = name;
    JsonObject *e = json_object_get_object_member(root, name);
    assert_string_equal(json_object_get_string_member(e, "dtype"), "F16");
    JsonArray *off = json_object_get_array_member(e, "data_offsets");
    assert_int_equal(json_array_get_int_element(off, 0), pos);
    pos = json_array_get_int_element(off, 1);
    const sige_tensor *t = sige_weights_get(w, name);
    assert_int_equal(pos - json_array_get_int_element(off, 0), (gint64)t->numel * 2);
    assert_int_equal(json_array_get_length(json_object_get_array_member(e, "shape")), t->ndim);
  }
  assert_int_equal(count, 5);
  assert_int_equal((gint64)size, 8 + (gint64)hlen + pos);
}

static void test_write_failures(void **state) {
  const fixture *f = *state;
  g_autoptr(sige_weights) w = make_weights(TRUE);
  g_autoptr(GError) err = NULL;

  g_autofree char *missing = g_build_filename(f->dir, "no", "such", "w.safetensors", NULL);
  assert_false(sige_weights_save_safetensors(w, missing, SIGE_DTYPE_F32, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_IO));
  assert_non_null(strstr(err->message, "w.safetensors"));
  g_clear_error(&err);

  /* Renaming onto a folder fails after the data was written: the temporary
   * must go and the folder stay as it was. */
  g_autofree char *folder = g_build_filename(f->dir, "taken.safetensors", NULL);
  assert_int_equal(g_mkdir(folder, 0755), 0);
  assert_false(sige_weights_save_safetensors(w, folder, SIGE_DTYPE_F32, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_IO));
  assert_non_null(strstr(err->message, "taken.safetensors"));
  g_clear_error(&err);
  assert_int_equal(count_entries(f->dir), 1);
  assert_true(g_file_test(folder, G_FILE_TEST_IS_DIR));

  g_autofree char *path = g_build_filename(f->dir, "w.safetensors", NULL);
  assert_false(sige_weights_save_safetensors(w, path, SIGE_DTYPE_BF16, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_INVALID));
  g_clear_error(&err);

  int64_t one = 1;
  sige_weights_insert(w, "__metadata__", sige_tensor_new(1, &one, NULL));
  assert_false(sige_weights_save_safetensors(w, path, SIGE_DTYPE_F32, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_INVALID));
  assert_non_null(strstr(err->message, "__metadata__"));
  assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
  assert_int_equal(count_entries(f->dir), 1);
}

static void test_empty_table(void **state) {
  const fixture *f = *state;
  g_autoptr(sige_weights) w = sige_weights_new();
  g_autofree char *path = g_build_filename(f->dir, "empty.safetensors", NULL);
  g_autoptr(GError) err = NULL;
  assert_true(sige_weights_save_safetensors(w, path, SIGE_DTYPE_F32, NULL, &err));
  g_autoptr(sige_weights) r = sige_weights_load_safetensors(path, &err);
  if (!r) fail_msg("%s", err->message);
  guint n = 1;
  sige_weights_names(r, &n);
  assert_int_equal(n, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_roundtrip_f32, setup, teardown),
    cmocka_unit_test_setup_teardown(test_roundtrip_f16, setup, teardown),
    cmocka_unit_test_setup_teardown(test_header_layout, setup, teardown),
    cmocka_unit_test_setup_teardown(test_write_failures, setup, teardown),
    cmocka_unit_test_setup_teardown(test_empty_table, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
