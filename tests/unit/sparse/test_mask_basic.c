/* Masks, geometry, reduce_mask, nearest indices and the pyramid on small
 * hand-made inputs with hand-derived expectations. */
#include "sparse_test_util.h"


static void test_cross_dilate(void **state) {
  (void)state;
  static const char *const in[] = {
      "......#", ".......", ".......", "...#...", ".......", ".......", ".......",
  };
  /* a cross of arm 2 around each pixel, clipped at the border; no box growth
   * such as (1, 5), which an iterated dilation would produce */
  static const char *const want[] = {
      "....###", "...#..#", "...#..#", ".#####.", "...#...", "...#...", ".......",
  };
  g_autoptr(sige_mask) m = sp_mask_from_rows(7, 7, in);
  g_autoptr(sige_mask) e = sp_mask_from_rows(7, 7, want);
  g_autoptr(sige_mask) d = sige_mask_cross_dilate(m, 2);
  sp_assert_mask_equal(d, e, "cross_dilate radius 2");
  assert_int_equal(sige_mask_count(d), 14);

  g_autoptr(sige_mask) d0 = sige_mask_cross_dilate(m, 0);
  sp_assert_mask_equal(d0, m, "cross_dilate radius 0");
  assert_ptr_not_equal(d0->data, m->data);

  /* radius beyond the mask: whole row and column, nothing else */
  static const char *const in2[] = {"....", ".#..", "...."};
  static const char *const want2[] = {".#..", "####", ".#.."};
  g_autoptr(sige_mask) m2 = sp_mask_from_rows(3, 4, in2);
  g_autoptr(sige_mask) e2 = sp_mask_from_rows(3, 4, want2);
  g_autoptr(sige_mask) d2 = sige_mask_cross_dilate(m2, 10);
  sp_assert_mask_equal(d2, e2, "cross_dilate radius 10");
}

static void test_from_diff(void **state) {
  (void)state;
  g_autoptr(sige_tensor) a = sp_new4(1, 2, 2, 3);
  g_autoptr(sige_tensor) b = sp_new4(1, 2, 2, 3);
  sige_test_rng r = sige_test_rng_new(7);
  sp_fill(a, &r, -1.0f, 1.0f);
  memcpy(b->data, a->data, a->numel * sizeof(float));
  a->data[sp_at(a, 0, 0, 0, 0)] = 0.0f;
  b->data[sp_at(b, 0, 0, 0, 0)] = 0.02f;  /* channel 0, above eps */
  a->data[sp_at(a, 0, 1, 0, 1)] = 0.5f;
  b->data[sp_at(b, 0, 1, 0, 1)] = 0.0f;   /* channel 1, negative difference */
  a->data[sp_at(a, 0, 1, 1, 2)] = 0.0f;
  b->data[sp_at(b, 0, 1, 1, 2)] = 0.005f; /* below eps */
  a->data[sp_at(a, 0, 0, 1, 0)] = 0.0f;
  b->data[sp_at(b, 0, 0, 1, 0)] = 0.25f;  /* equal to eps (0.25): strict > */
  g_autoptr(sige_mask) m = sige_mask_from_diff(a, b, 0.01f);
  static const char *const want[] = {"##.", "#.."};
  g_autoptr(sige_mask) e = sp_mask_from_rows(2, 3, want);
  sp_assert_mask_equal(m, e, "from_diff eps 0.01");
  g_autoptr(sige_mask) m2 = sige_mask_from_diff(a, b, 0.25f);
  static const char *const want2[] = {".#.", "..."};
  g_autoptr(sige_mask) e2 = sp_mask_from_rows(2, 3, want2);
  sp_assert_mask_equal(m2, e2, "from_diff eps 0.25");
}

static void check_geometry(int k, int s, int off, int req, int block, int bstride, int out) {
  sige_block_geometry g;
  sige_block_geometry_init(&g, k, s, off, req);
  assert_int_equal(g.kernel, k);
  assert_int_equal(g.stride, s);
  assert_int_equal(g.offset, off);
  assert_int_equal(g.block, block);
  assert_int_equal(g.block_stride, bstride);
  assert_int_equal(g.out_block, out);
}

static void test_geometry(void **state) {
  (void)state;
  check_geometry(3, 1, 1, 6, 6, 4, 4);
  check_geometry(1, 1, 0, 4, 4, 4, 4);
  check_geometry(3, 2, 0, 6, 5, 4, 2);
  check_geometry(3, 1, 1, 2, 3, 1, 1); /* requested below the kernel */
  check_geometry(3, 2, 1, 8, 7, 6, 3);
}

static void check_corners(const sige_active_blocks *ab, int n, const int *want) {
  assert_int_equal(ab->n, n);
  for (int i = 0; i < 2 * n; i++)
    if (ab->corners[i] != want[i])
      fail_msg("corner %d.%d: got %d, expected %d", i / 2, i % 2, ab->corners[i], want[i]);
}

static void test_reduce_mask(void **state) {
  (void)state;
  g_autoptr(sige_mask) m = sige_mask_new(9, 10);
  m->data[0] = 1;               /* (0, 0) */
  m->data[8 * 10 + 9] = 1;      /* (8, 9) */
  sige_block_geometry g3, g1, g2;
  sige_block_geometry_init(&g3, 3, 1, 1, 6);
  sige_block_geometry_init(&g1, 1, 1, 0, 4);
  sige_block_geometry_init(&g2, 3, 2, 0, 6);
  {
    /* windows of rows/cols [4i - 1, 4i + 5): (8, 9) lies in block rows 1 and
     * 2 but only in block column 2 */
    g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g3);
    const int want[] = {-1, -1, 3, 7, 7, 7};
    check_corners(ab, 3, want);
  }
  {
    g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g1);
    const int want[] = {0, 0, 8, 8};
    check_corners(ab, 2, want);
  }
  {
    /* windows [4i, 4i + 5): row 8 lies in blocks 1 and 2, column 9 in 2 */
    g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g2);
    const int want[] = {0, 0, 4, 8, 8, 8};
    check_corners(ab, 3, want);
  }
  {
    g_autoptr(sige_mask) full = sige_mask_new(9, 10);
    memset(full->data, 1, 90);
    g_autoptr(sige_active_blocks) ab = sige_reduce_mask(full, &g3);
    /* (9 + 1) / 4 + 1 = 3 rows, (10 + 1) / 4 + 1 = 3 columns */
    assert_int_equal(ab->n, 9);
    assert_int_equal(ab->corners[2 * 8], 7);
    assert_int_equal(ab->corners[2 * 8 + 1], 7);
    g_autoptr(sige_mask) empty = sige_mask_new(9, 10);
    g_autoptr(sige_active_blocks) ab0 = sige_reduce_mask(empty, &g3);
    assert_int_equal(ab0->n, 0);
  }
}

static void check_nearest(int src, int dst, const int *want) {
  int got[64];
  sige_nearest_indices(src, dst, got);
  for (int i = 0; i < dst; i++)
    if (got[i] != want[i]) fail_msg("nearest %d -> %d [%d]: got %d, expected %d", src, dst, i,
                                    got[i], want[i]);
}

static void test_nearest_indices(void **state) {
  (void)state;
  const int a[] = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6};
  check_nearest(7, 13, a);
  const int b[] = {0, 2, 5};
  check_nearest(8, 3, b);
  const int c[] = {0, 0, 1, 1, 2, 2, 3, 3};
  check_nearest(4, 8, c);
  const int d[] = {0, 1, 2, 3, 4};
  check_nearest(5, 5, d);
}

static void test_pyramid_small(void **state) {
  (void)state;
  /* a 2x2 square: 8x8 keeps it, 4x4 averages it into one full cell, 2x2
   * sees 0.25 there, which the max - 1e-3 rule still keeps */
  g_autoptr(sige_mask) m = sige_mask_new(8, 8);
  m->data[2 * 8 + 2] = m->data[2 * 8 + 3] = m->data[3 * 8 + 2] = m->data[3 * 8 + 3] = 1;
  g_autoptr(sige_mask_pyramid) p = sige_mask_pyramid_new(m, 2, 2, 0, 0.3f);
  assert_int_equal(sige_mask_pyramid_levels(p), 3);
  sp_assert_mask_equal(sige_mask_pyramid_level(p, 0), m, "level 8x8");
  static const char *const l1[] = {"....", ".#..", "....", "...."};
  g_autoptr(sige_mask) e1 = sp_mask_from_rows(4, 4, l1);
  sp_assert_mask_equal(sige_mask_pyramid_get(p, 4, 4), e1, "level 4x4");
  static const char *const l2[] = {"#.", ".."};
  g_autoptr(sige_mask) e2 = sp_mask_from_rows(2, 2, l2);
  sp_assert_mask_equal(sige_mask_pyramid_get(p, 2, 2), e2, "level 2x2");
  assert_null(sige_mask_pyramid_get(p, 1, 1));

  /* dilation applies at every level, the full resolution included */
  g_autoptr(sige_mask_pyramid) pd = sige_mask_pyramid_new(m, 2, 2, 1, 0.3f);
  g_autoptr(sige_mask) m_d = sige_mask_cross_dilate(m, 1);
  sp_assert_mask_equal(sige_mask_pyramid_level(pd, 0), m_d, "dilated level 8x8");
  static const char *const l1d[] = {".#..", "###.", ".#..", "...."};
  g_autoptr(sige_mask) e1d = sp_mask_from_rows(4, 4, l1d);
  sp_assert_mask_equal(sige_mask_pyramid_level(pd, 1), e1d, "dilated level 4x4");

  /* stop only when both sides are below the minimum */
  g_autoptr(sige_mask) r = sige_mask_new(8, 4);
  r->data[0] = 1;
  g_autoptr(sige_mask_pyramid) pr = sige_mask_pyramid_new(r, 2, 4, 0, 0.3f);
  assert_int_equal(sige_mask_pyramid_levels(pr), 3);
  assert_int_equal(sige_mask_pyramid_level(pr, 2)->h, 2);
  assert_int_equal(sige_mask_pyramid_level(pr, 2)->w, 1);

  /* the quirk of downsample_mask: an empty mask gives all-true levels */
  g_autoptr(sige_mask) z = sige_mask_new(8, 8);
  g_autoptr(sige_mask_pyramid) pz = sige_mask_pyramid_new(z, 2, 2, 0, 0.3f);
  for (int i = 0; i < sige_mask_pyramid_levels(pz); i++) {
    const sige_mask *l = sige_mask_pyramid_level(pz, i);
    assert_int_equal(sige_mask_count(l), (int64_t)l->h * l->w);
  }
}

/* The session's variant: the same mask over several threads, and the rows
 * where the inputs differ at all (below the threshold too). */
static void test_from_diff_rows(void **state) {
  (void)state;
  g_autoptr(sige_tensor) a = sige_tensor_new4(1, 3, 9, 11, NULL);
  for (size_t i = 0; i < a->numel; i++) a->data[i] = (float)(i % 7) * 0.25f;
  g_autoptr(sige_tensor) b = sige_tensor_dup(a, NULL);
  int r0 = -1, r1 = -1;
  g_autoptr(sige_mask) same = sige_mask_from_diff_rows(a, b, 0.01f, 3, &r0, &r1);
  assert_int_equal(sige_mask_count(same), 0);
  assert_int_equal(r0, r1);
  b->data[(size_t)1 * 99 + 2 * 11 + 4] += 0.001f; /* channel 1, row 2: below eps */
  b->data[(size_t)2 * 99 + 5 * 11 + 7] += 1.0f;   /* channel 2, row 5 */
  g_autoptr(sige_mask) want = sige_mask_from_diff(a, b, 0.01f);
  for (int threads = 1; threads <= 3; threads++) {
    g_autoptr(sige_mask) m = sige_mask_from_diff_rows(a, b, 0.01f, threads, &r0, &r1);
    sp_assert_mask_equal(m, want, "from_diff_rows");
    assert_int_equal(r0, 2);
    assert_int_equal(r1, 6);
    /* the rows alone (what a masked regenerate copies), from the same scan */
    int d0 = -1, d1 = -1;
    sige_diff_rows(a, b, threads, &d0, &d1);
    assert_int_equal(d0, 2);
    assert_int_equal(d1, 6);
  }
  assert_int_equal(sige_mask_count(want), 1);
  int d0 = -1, d1 = -1;
  sige_diff_rows(a, a, 2, &d0, &d1);
  assert_int_equal(d0, d1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_from_diff_rows),
      cmocka_unit_test(test_cross_dilate),   cmocka_unit_test(test_from_diff),
      cmocka_unit_test(test_geometry),       cmocka_unit_test(test_reduce_mask),
      cmocka_unit_test(test_nearest_indices), cmocka_unit_test(test_pyramid_small),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
