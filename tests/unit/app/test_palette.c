/* The Cityscapes palette: the table, colour <-> id conversions and the
 * shipped GIMP palette file. */
#include "test_util.h"

#include <stdio.h>
#include <string.h>

#include "sige-app/palette.h"
#include "sige/error.h"

static void test_table(void **state) {
  (void)state;
  const sige_palette *p = sige_palette_cityscapes();
  assert_int_equal(p->n, 34);
  assert_string_equal(p->entries[7].name, "road");
  assert_memory_equal(p->entries[7].rgb, ((guint8[]){128, 64, 128}), 3);
  assert_string_equal(p->entries[26].name, "car");
  assert_memory_equal(p->entries[26].rgb, ((guint8[]){0, 0, 142}), 3);
  assert_string_equal(p->entries[33].name, "bicycle");
  assert_memory_equal(p->entries[33].rgb, ((guint8[]){119, 11, 32}), 3);
}

static void test_exact(void **state) {
  (void)state;
  assert_int_equal(sige_palette_lookup_exact((guint8[]){0, 0, 0}), 0);
  assert_int_equal(sige_palette_lookup_exact((guint8[]){153, 153, 153}), 17);
  assert_int_equal(sige_palette_lookup_exact((guint8[]){70, 130, 180}), 23);
  assert_int_equal(sige_palette_lookup_exact((guint8[]){0, 0, 143}), -1);
  const sige_palette *p = sige_palette_cityscapes();
  for (int i = 0; i < p->n; i++) {
    const int id = sige_palette_lookup_exact(p->entries[i].rgb);
    assert_true(id >= 0 && id <= i);
    assert_memory_equal(p->entries[id].rgb, p->entries[i].rgb, 3);
  }
}

static void test_from_rgb_nearest(void **state) {
  (void)state;
  /* exact road, road, a near-car, the same near-car again, near-black,
   * exact sky */
  const guint8 rgb[] = {128, 64, 128, 128, 64, 128, 3, 1, 140, 3, 1, 140, 2, 2, 2, 70, 130, 180};
  int32_t labels[6];
  int64_t nearest = -1;
  sige_labels_from_rgb(rgb, 3, 2, labels, &nearest);
  const int32_t want[6] = {7, 7, 26, 26, 0, 23};
  assert_memory_equal(labels, want, sizeof want);
  assert_int_equal(nearest, 3);
  sige_labels_from_rgb(rgb, 3, 2, labels, NULL); /* n_nearest is optional */
  assert_memory_equal(labels, want, sizeof want);
}

static void test_round_trip_unique_ids(void **state) {
  (void)state;
  const sige_palette *p = sige_palette_cityscapes();
  int32_t ids[34];
  int n = 0;
  for (int i = 0; i < p->n; i++) {
    gboolean unique = TRUE;
    for (int j = 0; j < p->n; j++)
      if (j != i && memcmp(p->entries[i].rgb, p->entries[j].rgb, 3) == 0) unique = FALSE;
    if (unique) ids[n++] = i;
  }
  assert_int_equal(n, 34 - 5 - 2); /* 0..4 share black, 17/18 share grey */
  guint8 rgb[34 * 3];
  int32_t back[34];
  int64_t nearest = -1;
  assert_true(sige_labels_to_rgb(ids, n, 1, rgb, NULL));
  sige_labels_from_rgb(rgb, n, 1, back, &nearest);
  assert_int_equal(nearest, 0);
  assert_memory_equal(back, ids, (size_t)n * sizeof ids[0]);
}

static void test_invalid_ids(void **state) {
  (void)state;
  const int32_t labels[4] = {7, 7, 7, 34};
  guint8 rgb[12];
  GError *err = NULL;
  assert_false(sige_labels_to_rgb(labels, 2, 2, rgb, &err));
  assert_int_equal(err->code, SIGE_ERROR_INVALID);
  assert_non_null(strstr(err->message, "(1, 1)"));
  g_clear_error(&err);
  const guint8 index[4] = {0, 33, 200, 1};
  int32_t out[4];
  assert_false(sige_labels_from_index(index, 2, 2, out, "map.png", &err));
  assert_int_equal(err->code, SIGE_ERROR_FORMAT);
  assert_non_null(strstr(err->message, "map.png"));
  assert_non_null(strstr(err->message, "(0, 1)"));
  g_clear_error(&err);
  const guint8 ok[2] = {33, 0};
  assert_true(sige_labels_from_index(ok, 2, 1, out, NULL, NULL));
  assert_int_equal(out[0], 33);
}

/* data/palettes/Cityscapes.gpl must list exactly the C table. */
static void test_gpl_file(void **state) {
  (void)state;
  g_autofree char *path =
      g_build_filename(SIGE_SOURCE_DIR, "data", "palettes", "Cityscapes.gpl", NULL);
  g_autofree char *text = NULL;
  assert_true(g_file_get_contents(path, &text, NULL, NULL));
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  assert_true(g_strv_length(lines) >= 4);
  assert_string_equal(lines[0], "GIMP Palette");
  assert_string_equal(lines[1], "Name: Cityscapes");
  assert_string_equal(lines[2], "Columns: 8");
  assert_string_equal(lines[3], "#");
  const sige_palette *p = sige_palette_cityscapes();
  int id = 0;
  for (guint i = 4; lines[i]; i++) {
    if (!*lines[i]) continue;
    int r, g, b, n = 0;
    assert_int_equal(sscanf(lines[i], "%d %d %d%n", &r, &g, &b, &n), 3);
    assert_true(id < p->n);
    assert_int_equal(lines[i][n], '\t');
    g_autofree char *name = g_strdup_printf("%d %s", id, p->entries[id].name);
    assert_string_equal(lines[i] + n + 1, name);
    assert_int_equal(r, p->entries[id].rgb[0]);
    assert_int_equal(g, p->entries[id].rgb[1]);
    assert_int_equal(b, p->entries[id].rgb[2]);
    id++;
  }
  assert_int_equal(id, p->n);
  /* and the generator's text is that file */
  g_autofree char *gen = sige_palette_to_gpl(p);
  assert_string_equal(gen, text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_exact),
      cmocka_unit_test(test_from_rgb_nearest),
      cmocka_unit_test(test_round_trip_unique_ids),
      cmocka_unit_test(test_invalid_ids),
      cmocka_unit_test(test_gpl_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
