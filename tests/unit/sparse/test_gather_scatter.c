/* gather -> convolution on the block batch -> scatter reproduces the dense
 * convolution wherever blocks are active, for the three geometries of the
 * published models, and leaves every other cached value untouched. */
#include <float.h>

#include "sparse_test_util.h"

#define C_IN 5
#define C_OUT 4
#define H 13
#define W 11
#define TOL 1e-5

typedef struct {
  sige_ctx *ctx;
  sige_tensor *x, *w3, *w1, *bias;
  float scale[C_IN], shift[C_IN];
} fixture;

static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  sige_test_rng r = sige_test_rng_new(42);
  f->ctx = sige_ctx_new(0);
  f->x = sp_new4(1, C_IN, H, W);
  f->w3 = sp_new4(C_OUT, C_IN, 3, 3);
  f->w1 = sp_new4(C_OUT, C_IN, 1, 1);
  const int64_t bshape[1] = {C_OUT};
  f->bias = sige_tensor_new(1, bshape, NULL);
  sp_fill(f->x, &r, -2.0f, 2.0f);
  sp_fill(f->w3, &r, -0.5f, 0.5f);
  sp_fill(f->w1, &r, -0.5f, 0.5f);
  sp_fill(f->bias, &r, -0.5f, 0.5f);
  for (int c = 0; c < C_IN; c++) {
    f->scale[c] = sige_test_rng_uniform(&r, 0.5f, 1.5f);
    f->shift[c] = sige_test_rng_uniform(&r, -0.5f, 0.5f);
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  sige_tensor_free(f->x);
  sige_tensor_free(f->w3);
  sige_tensor_free(f->w1);
  sige_tensor_free(f->bias);
  sige_ctx_free(f->ctx);
  g_free(f);
  return 0;
}

/* A pseudo-random sparse mask: a few isolated pixels, one near each border. */
static sige_mask *sparse_mask(int h, int w) {
  sige_mask *m = sige_mask_new(h, w);
  m->data[0 * w + 5] = 1;
  m->data[6 * w + 0] = 1;
  m->data[(h - 1) * w + (w - 1)] = 1;
  m->data[7 * w + 6] = 1;
  return m;
}

/* The output pixels the blocks cover, computed from the corners by hand. */
static guint8 *coverage(const sige_block_geometry *g, const sige_active_blocks *ab, int h, int w) {
  guint8 *cov = g_new0(guint8, (gsize)h * w);
  for (int b = 0; b < ab->n; b++) {
    const int r = (ab->corners[2 * b] + g->offset) / g->stride;
    const int c = (ab->corners[2 * b + 1] + g->offset) / g->stride;
    for (int i = r; i < r + g->out_block; i++)
      for (int j = c; j < c + g->out_block; j++)
        if (i >= 0 && i < h && j >= 0 && j < w) cov[(size_t)i * w + j] = 1;
  }
  return cov;
}

/* Within covered pixels got == want (tol), elsewhere got == sentinel
 * exactly. Returns the number of covered pixels per channel. */
static int check_output(const sige_tensor *got, const sige_tensor *want, const guint8 *cov,
                        float sentinel, const char *what) {
  const int h = SIGE_H(got), w = SIGE_W(got);
  int n = 0;
  for (int c = 0; c < SIGE_C(got); c++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        const float g = got->data[sp_at(got, 0, c, y, x)];
        if (cov && !cov[(size_t)y * w + x]) {
          if (g != sentinel) fail_msg("%s: (%d,%d,%d) = %g outside the blocks", what, c, y, x, g);
          continue;
        }
        const float e = want->data[sp_at(want, 0, c, y, x)];
        if (!(fabs((double)g - (double)e) <= TOL))
          fail_msg("%s: (%d,%d,%d) = %.9g, expected %.9g", what, c, y, x, g, e);
        n += c == 0;
      }
  return n;
}

/* gather + conv + scatter for geometry g on x (optionally transformed). */
static sige_tensor *sparse_conv(fixture *f, const sige_tensor *x, const sige_mask *m,
                                const sige_block_geometry *g, const sige_tensor *wt,
                                gboolean transform, int oh, int ow, float sentinel,
                                sige_active_blocks **ab_out) {
  sige_active_blocks *ab = sige_reduce_mask(m, g);
  g_autoptr(sige_tensor) blocks = sp_new_blocks(ab->n, C_IN, g->block);
  sige_gather(f->ctx, x, NULL, g, ab, transform ? f->scale : NULL, transform ? f->shift : NULL,
              transform ? SIGE_ACT_SWISH : SIGE_ACT_NONE, blocks);
  g_autoptr(sige_tensor) outb = sp_new_blocks(ab->n, C_OUT, g->out_block);
  sp_block_conv(f->ctx, blocks, wt, f->bias, g->stride, outb);
  sige_tensor *cache = sp_new4(1, C_OUT, oh, ow);
  sp_fill_value(cache, sentinel);
  sige_scatter(f->ctx, outb, g, ab, NULL, NULL, cache);
  *ab_out = ab;
  return cache;
}

static sige_tensor *transformed(const fixture *f) {
  sige_tensor *t = sp_new4(1, C_IN, H, W);
  for (int c = 0; c < C_IN; c++)
    for (int i = 0; i < H * W; i++) {
      const size_t at = (size_t)c * H * W + i;
      t->data[at] = sige_act_apply(SIGE_ACT_SWISH, f->x->data[at] * f->scale[c] + f->shift[c]);
    }
  return t;
}

static void test_dense_equivalence(void **state) {
  fixture *f = *state;
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  g_autoptr(sige_mask) ones = sige_mask_new(H, W);
  memset(ones->data, 1, H * W);
  for (int tr = 0; tr < 2; tr++) {
    g_autoptr(sige_tensor) xin = tr ? transformed(f) : sige_tensor_dup(f->x, NULL);
    g_autoptr(sige_tensor) dense = sp_new4(1, C_OUT, H, W);
    sp_naive_conv(xin, f->w3, f->bias, 1, 1, 1, dense);
    sige_active_blocks *ab = NULL;
    g_autoptr(sige_tensor) got = sparse_conv(f, f->x, ones, &g, f->w3, tr, H, W, 0.0f, &ab);
    assert_int_equal(ab->n, 4 * 3);
    check_output(got, dense, NULL, 0.0f, tr ? "all blocks, swish" : "all blocks");
    sige_active_blocks_free(ab);
  }
}

static void test_sparse_mask(void **state) {
  fixture *f = *state;
  const float sentinel = -12345.0f;
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  g_autoptr(sige_mask) m = sparse_mask(H, W);
  g_autoptr(sige_tensor) xin = transformed(f);
  g_autoptr(sige_tensor) dense = sp_new4(1, C_OUT, H, W);
  sp_naive_conv(xin, f->w3, f->bias, 1, 1, 1, dense);
  sige_active_blocks *ab = NULL;
  g_autoptr(sige_tensor) got = sparse_conv(f, f->x, m, &g, f->w3, TRUE, H, W, sentinel, &ab);
  g_autofree guint8 *cov = coverage(&g, ab, H, W);
  const int n = check_output(got, dense, cov, sentinel, "sparse 3x3");
  assert_true(n > 0 && n < H * W);
  /* every output whose 3x3 window sees a changed pixel is recomputed */
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      if (!m->data[y * W + x]) continue;
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
          const int yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
          if (!cov[yy * W + xx]) fail_msg("output (%d,%d) depends on (%d,%d) but is not covered",
                                          yy, xx, y, x);
        }
    }
  sige_active_blocks_free(ab);
}

static void test_pointwise_geometry(void **state) {
  fixture *f = *state;
  const float sentinel = 777.0f;
  sige_block_geometry g;
  sige_block_geometry_init(&g, 1, 1, 0, 4);
  g_autoptr(sige_mask) m = sparse_mask(H, W);
  g_autoptr(sige_tensor) dense = sp_new4(1, C_OUT, H, W);
  sp_naive_conv(f->x, f->w1, f->bias, 1, 0, 0, dense);
  sige_active_blocks *ab = NULL;
  g_autoptr(sige_tensor) got = sparse_conv(f, f->x, m, &g, f->w1, FALSE, H, W, sentinel, &ab);
  g_autofree guint8 *cov = coverage(&g, ab, H, W);
  for (int i = 0; i < H * W; i++)
    if (m->data[i]) assert_true(cov[i]);
  check_output(got, dense, cov, sentinel, "sparse 1x1");
  sige_active_blocks_free(ab);

  g_autoptr(sige_mask) ones = sige_mask_new(H, W);
  memset(ones->data, 1, H * W);
  g_autoptr(sige_tensor) all = sparse_conv(f, f->x, ones, &g, f->w1, FALSE, H, W, sentinel, &ab);
  check_output(all, dense, NULL, sentinel, "all blocks 1x1");
  sige_active_blocks_free(ab);
}

static void test_stride2_geometry(void **state) {
  fixture *f = *state;
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 2, 0, 6);
  assert_int_equal(g.block, 5);
  assert_int_equal(g.out_block, 2);
  /* the DDPM downsample: pad (left 0, right 1, top 0, bottom 1), 3x3 s2 */
  const int oh = (H + 1 - 3) / 2 + 1, ow = (W + 1 - 3) / 2 + 1;
  g_autoptr(sige_tensor) dense = sp_new4(1, C_OUT, oh, ow);
  sp_naive_conv(f->x, f->w3, f->bias, 2, 0, 0, dense);
  g_autoptr(sige_mask) ones = sige_mask_new(H, W);
  memset(ones->data, 1, H * W);
  sige_active_blocks *ab = NULL;
  g_autoptr(sige_tensor) all = sparse_conv(f, f->x, ones, &g, f->w3, FALSE, oh, ow, -1.0f, &ab);
  check_output(all, dense, NULL, -1.0f, "all blocks 3x3 s2");
  sige_active_blocks_free(ab);

  g_autoptr(sige_mask) m = sparse_mask(H, W);
  g_autoptr(sige_tensor) got = sparse_conv(f, f->x, m, &g, f->w3, FALSE, oh, ow, -1.0f, &ab);
  g_autofree guint8 *cov = coverage(&g, ab, oh, ow);
  const int n = check_output(got, dense, cov, -1.0f, "sparse 3x3 s2");
  assert_true(n > 0 && n < oh * ow);
  sige_active_blocks_free(ab);
}

static void test_resample_map(void **state) {
  fixture *f = *state;
  /* x is the nearest upsampling of a 7x6 tensor to 13x11 */
  g_autoptr(sige_tensor) small = sp_new4(1, C_IN, 7, 6);
  sige_test_rng r = sige_test_rng_new(5);
  sp_fill(small, &r, -1.0f, 1.0f);
  g_autoptr(sige_tensor) big = sp_new4(1, C_IN, H, W);
  sige_resize_nearest(f->ctx, small, big);
  int rows[H], cols[W];
  sige_nearest_indices(7, H, rows);
  sige_nearest_indices(6, W, cols);
  const sige_resample_map map = {H, W, rows, cols};
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  g_autoptr(sige_mask) m = sparse_mask(H, W);
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
  g_autoptr(sige_tensor) a = sp_new_blocks(ab->n, C_IN, g.block);
  g_autoptr(sige_tensor) b = sp_new_blocks(ab->n, C_IN, g.block);
  for (int tr = 0; tr < 2; tr++) {
    sp_fill_value(a, 99.0f);
    sp_fill_value(b, -99.0f);
    sige_gather(f->ctx, small, &map, &g, ab, tr ? f->scale : NULL, tr ? f->shift : NULL,
                tr ? SIGE_ACT_SWISH : SIGE_ACT_NONE, a);
    sige_gather(f->ctx, big, NULL, &g, ab, tr ? f->scale : NULL, tr ? f->shift : NULL,
                tr ? SIGE_ACT_SWISH : SIGE_ACT_NONE, b);
    assert_memory_equal(a->data, b->data, a->numel * sizeof(float));
  }

  /* the residual of a scatter read through the same map */
  g_autoptr(sige_tensor) blocks = sp_new_blocks(ab->n, C_IN, g.out_block);
  sp_fill(blocks, &r, -1.0f, 1.0f);
  g_autoptr(sige_tensor) d1 = sp_new4(1, C_IN, H, W);
  g_autoptr(sige_tensor) d2 = sp_new4(1, C_IN, H, W);
  sige_scatter(f->ctx, blocks, &g, ab, small, &map, d1);
  sige_scatter(f->ctx, blocks, &g, ab, big, NULL, d2);
  assert_memory_equal(d1->data, d2->data, d1->numel * sizeof(float));
}

static void test_scatter_residual(void **state) {
  fixture *f = *state;
  sige_test_rng r = sige_test_rng_new(11);
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  g_autoptr(sige_mask) m = sparse_mask(H, W);
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
  g_autoptr(sige_tensor) blocks = sp_new_blocks(ab->n, C_OUT, g.out_block);
  sp_fill(blocks, &r, -1.0f, 1.0f);
  g_autoptr(sige_tensor) res = sp_new4(1, C_OUT, H, W);
  sp_fill(res, &r, -1.0f, 1.0f);
  g_autoptr(sige_tensor) dst = sp_new4(1, C_OUT, H, W);
  sp_fill_value(dst, 5.0f);
  sige_scatter(f->ctx, blocks, &g, ab, res, NULL, dst);
  /* by hand: each block's o x o tile at (corner + 1), clipped */
  g_autoptr(sige_tensor) want = sp_new4(1, C_OUT, H, W);
  sp_fill_value(want, 5.0f);
  const int o = g.out_block;
  for (int b = 0; b < ab->n; b++)
    for (int c = 0; c < C_OUT; c++)
      for (int i = 0; i < o; i++)
        for (int j = 0; j < o; j++) {
          const int y = ab->corners[2 * b] + 1 + i, x = ab->corners[2 * b + 1] + 1 + j;
          if (y >= H || x >= W) continue;
          want->data[sp_at(want, 0, c, y, x)] =
              blocks->data[sp_at(blocks, b, c, i, j)] + res->data[sp_at(res, 0, c, y, x)];
        }
  assert_memory_equal(dst->data, want->data, dst->numel * sizeof(float));
}

static void test_block_residual(void **state) {
  fixture *f = *state;
  sige_test_rng r = sige_test_rng_new(13);
  sige_block_geometry gm, gs;
  sige_block_geometry_init(&gm, 3, 1, 1, 6);
  sige_block_geometry_init(&gs, 1, 1, 0, 4);
  g_autoptr(sige_mask) m = sparse_mask(H, W);
  g_autoptr(sige_mask) ms = sige_mask_new(H, W);
  ms->data[5 * W + 5] = 1;
  ms->data[12 * W + 0] = 1;
  g_autoptr(sige_active_blocks) abm = sige_reduce_mask(m, &gm);
  g_autoptr(sige_active_blocks) abs = sige_reduce_mask(ms, &gs);
  assert_int_equal(abs->n, 2);
  g_autoptr(sige_tensor) mb = sp_new_blocks(abm->n, C_OUT, gm.out_block);
  g_autoptr(sige_tensor) sb = sp_new_blocks(abs->n, C_OUT, gs.out_block);
  sp_fill(mb, &r, -1.0f, 1.0f);
  sp_fill(sb, &r, -1.0f, 1.0f);
  g_autoptr(sige_tensor) dst = sp_new4(1, C_OUT, H, W);
  g_autoptr(sige_tensor) rc = sp_new4(1, C_OUT, H, W);
  sp_fill(dst, &r, -1.0f, 1.0f);
  sp_fill(rc, &r, -1.0f, 1.0f);
  g_autoptr(sige_tensor) want = sige_tensor_dup(dst, NULL);
  g_autoptr(sige_tensor) want_rc = sige_tensor_dup(rc, NULL);

  for (int b = 0; b < abm->n; b++)
    for (int c = 0; c < C_OUT; c++)
      for (int i = 0; i < gm.out_block; i++)
        for (int j = 0; j < gm.out_block; j++) {
          const int y = abm->corners[2 * b] + 1 + i, x = abm->corners[2 * b + 1] + 1 + j;
          if (y >= H || x >= W) continue;
          want->data[sp_at(want, 0, c, y, x)] =
              mb->data[sp_at(mb, b, c, i, j)] + rc->data[sp_at(rc, 0, c, y, x)];
        }
  for (int b = 0; b < abs->n; b++)
    for (int c = 0; c < C_OUT; c++)
      for (int i = 0; i < gs.out_block; i++)
        for (int j = 0; j < gs.out_block; j++) {
          const int y = abs->corners[2 * b] + i, x = abs->corners[2 * b + 1] + j;
          if (y >= H || x >= W) continue;
          const size_t at = sp_at(want, 0, c, y, x);
          const float sc = sb->data[sp_at(sb, b, c, i, j)];
          want->data[at] += sc - rc->data[at];
          want_rc->data[at] = sc;
        }
  sige_scatter_block_residual(f->ctx, mb, &gm, abm, sb, &gs, abs, dst, rc);
  assert_memory_equal(dst->data, want->data, dst->numel * sizeof(float));
  assert_memory_equal(rc->data, want_rc->data, rc->numel * sizeof(float));
}

/* The transformed gather element by element: act(x * scale + shift) inside
 * the source, 0 outside, for every block of a full mask on a map large
 * enough to have interior blocks (transformed as one contiguous run, in
 * vector lanes) beside border ones (row by row).  Both compute the same
 * float expression per element: with GCC's -std=c11 (no contraction) the
 * results are bit-equal; 4 ulp are allowed for a compiler that contracts
 * x * s + t into an FMA on one path only.  A wrong row, a skipped or
 * doubled transform, or a transformed zero pad is off by far more. */
static void test_transform_elementwise(void **state) {
  (void)state;
  enum { BH = 29, BW = 31, BC = 3 };
  g_autoptr(sige_ctx) ctx = sige_ctx_new(2);
  sige_test_rng r = sige_test_rng_new(77);
  g_autoptr(sige_tensor) x = sp_new4(1, BC, BH, BW);
  sp_fill(x, &r, -6.0f, 6.0f);
  float sc[BC], sh[BC];
  for (int c = 0; c < BC; c++) {
    sc[c] = sige_test_rng_uniform(&r, 0.5f, 1.5f);
    sh[c] = sige_test_rng_uniform(&r, -0.5f, 0.5f);
  }
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  g_autoptr(sige_mask) ones = sige_mask_new(BH, BW);
  memset(ones->data, 1, BH * BW);
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(ones, &g);
  g_autoptr(sige_tensor) got = sp_new_blocks(ab->n, BC, g.block);
  int interior = 0, border = 0;
  static const sige_act acts[] = {SIGE_ACT_SWISH, SIGE_ACT_LEAKY_RELU};
  for (size_t a = 0; a < G_N_ELEMENTS(acts); a++) {
    sp_fill_value(got, 1234.0f);
    sige_gather(ctx, x, NULL, &g, ab, sc, sh, acts[a], got);
    for (int k = 0; k < ab->n; k++) {
      const int top = ab->corners[2 * k], left = ab->corners[2 * k + 1];
      const gboolean inside = top >= 0 && left >= 0 && top + 6 <= BH && left + 6 <= BW;
      if (a == 0) inside ? interior++ : border++;
      for (int c = 0; c < BC; c++)
        for (int i = 0; i < 6; i++)
          for (int j = 0; j < 6; j++) {
            const int y = top + i, xx = left + j;
            float want = 0.0f;
            if (y >= 0 && y < BH && xx >= 0 && xx < BW)
              want = sige_act_apply(acts[a], x->data[sp_at(x, 0, c, y, xx)] * sc[c] + sh[c]);
            const float v = got->data[sp_at(got, k, c, i, j)];
            if (!(fabsf(v - want) <= 4.0f * FLT_EPSILON * fabsf(want)))
              fail_msg("act %d block %d (%d, %d) ch %d (%d, %d): %.9g, expected %.9g", (int)acts[a],
                       k, top, left, c, i, j, v, want);
          }
    }
  }
  assert_true(interior > 0 && border > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dense_equivalence), cmocka_unit_test(test_sparse_mask),
      cmocka_unit_test(test_pointwise_geometry), cmocka_unit_test(test_stride2_geometry),
      cmocka_unit_test(test_resample_map),      cmocka_unit_test(test_scatter_residual),
      cmocka_unit_test(test_block_residual),    cmocka_unit_test(test_transform_elementwise),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
