/* sige_sparse_conv (gather + 3x3 conv + scatter in one op) against a direct
 * double-precision convolution of the blocks the unfused gather reads,
 * scattered as sige_scatter writes them.  Random map sizes (blocks on the
 * map's borders and corners, corners at -1), block sides 4, 6, 8 and 10
 * (1, 1, 4 and 4 F(4x4) tiles a block, partial tiles for 4 and 8), input
 * from a full map (F32 or F16, read through a resample map or not, with or
 * without scale / shift / activation) or from a gathered batch, output
 * activation, residual (F32 or F16, through a map or not), F16 dst.
 *
 * Each case runs twice: Winograd forced (the fused kernel: the test checks
 * that it ran) and im2col (the unfused gather, conv and scatter).
 *
 * Tolerance of an element, as tests/unit/ops/test_conv2d.c argues it:
 * 2 sqrt(9 Cin) FLT_EPSILON sum|terms| for float32 accumulation, times 32
 * for F(4x4)'s transforms (its measured worst there is 7.3x); the output
 * activations used (ReLU, leaky ReLU) do not grow an error.  A residual
 * adds one float32 rounding of the sum, an F16 dst one half rounding
 * (2^-11 relative; 2^-10 allowed as the float value may sit on the other
 * side of a rounding boundary).  A wrong tap, tile or border costs a whole
 * term, far above this.  Every element outside the blocks' output tiles
 * must keep its old bits. */
#include <float.h>

#include "sparse_test_util.h"

#include "sige/error.h"

typedef struct {
  int h, w, cin, cout, block;
  gboolean from_blocks, src_map, src_f16, affine, residual, res_map, dst_f16;
  sige_act act_in, act_out;
} sc_case;

static sige_tensor *to16(const sige_tensor *t) {
  GError *err = NULL;
  sige_tensor *r = sige_tensor_to_f16(t, &err);
  if (!r) fail_msg("to_f16: %s", err->message);
  return r;
}

static float val_at(const sige_tensor *t, size_t i) {
  return t->storage == SIGE_STORAGE_F16 ? sige_f16_to_f32(t->data16[i]) : t->data[i];
}

static void run_case(const sc_case *cc, uint64_t seed, sige_conv_policy pol) {
  sige_test_rng rng = sige_test_rng_new(seed);
  GError *err = NULL;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(2);
  sige_ctx_set_conv_policy(ctx, pol);
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, cc->block);
  const int b = g.block, o = g.out_block, H = cc->h, W = cc->w;

  /* source: [1, Cin, H, W], or half size read through a nearest x2 map */
  const int sh = cc->src_map ? (H + 1) / 2 : H, sw = cc->src_map ? (W + 1) / 2 : W;
  g_autoptr(sige_tensor) src32 = sp_new4(1, cc->cin, sh, sw);
  sp_fill(src32, &rng, -1.0f, 1.0f);
  g_autofree int *rows = g_new(int, H), *cols = g_new(int, W);
  sige_nearest_indices(sh, H, rows);
  sige_nearest_indices(sw, W, cols);
  const sige_resample_map map = {H, W, rows, cols};
  g_autoptr(sige_tensor) src16 = cc->src_f16 ? to16(src32) : NULL;
  const sige_tensor *src = src16 ? src16 : src32;

  g_autoptr(sige_tensor) wt = sp_new4(cc->cout, cc->cin, 3, 3);
  sp_fill(wt, &rng, -0.5f, 0.5f);
  int64_t bs[1] = {cc->cout};
  g_autoptr(sige_tensor) bias = sige_tensor_new(1, bs, NULL);
  sp_fill(bias, &rng, -0.5f, 0.5f);
  g_autofree float *scale = g_new(float, cc->cin), *shift = g_new(float, cc->cin);
  for (int c = 0; c < cc->cin; c++) {
    scale[c] = sige_test_rng_uniform(&rng, 0.5f, 1.5f);
    shift[c] = sige_test_rng_uniform(&rng, -0.3f, 0.3f);
  }

  /* residual [1, Cout, H, W], or [1, Cout, H/2, W/2] read through the map */
  const int rh = cc->res_map ? sh : H, rw = cc->res_map ? sw : W;
  g_autoptr(sige_tensor) res32 = sp_new4(1, cc->cout, rh, rw);
  sp_fill(res32, &rng, -1.0f, 1.0f);
  g_autoptr(sige_tensor) res16 = cc->residual && cc->dst_f16 ? to16(res32) : NULL;
  const sige_tensor *res = cc->residual ? (res16 ? res16 : res32) : NULL;

  g_autoptr(sige_tensor) dst32 = sp_new4(1, cc->cout, H, W);
  sp_fill(dst32, &rng, -2.0f, 2.0f);
  g_autoptr(sige_tensor) dst16 = cc->dst_f16 ? to16(dst32) : NULL;
  sige_tensor *dst = dst16 ? dst16 : dst32;
  const size_t esize = cc->dst_f16 ? 2 : 4;
  g_autofree guint8 *before = g_memdup2(dst->data, dst->numel * esize);

  /* a sparse mask with its four corners set: blocks on every border */
  g_autoptr(sige_mask) m = sige_mask_new(H, W);
  for (size_t i = 0; i < (size_t)H * W; i++) m->data[i] = sige_test_rng_uniform(&rng, 0, 1) < 0.06f;
  m->data[0] = m->data[W - 1] = m->data[(size_t)(H - 1) * W] = m->data[(size_t)H * W - 1] = 1;
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
  assert_true(ab->n > 0);

  const float *sc = cc->affine ? scale : NULL, *sf = cc->affine ? shift : NULL;
  const sige_resample_map *smap = cc->src_map ? &map : NULL;
  g_autoptr(sige_tensor) gathered = sp_new_blocks(ab->n, cc->cin, b);
  sige_gather(ctx, src, smap, &g, ab, sc, sf, cc->act_in, gathered);

  sige_sparse_conv_io io = {.weight = wt, .bias = bias, .act_out = cc->act_out,
                            .residual = res, .rmap = cc->res_map ? &map : NULL};
  if (cc->from_blocks) {
    io.blocks = gathered;
  } else {
    io.src = src;
    io.map = smap;
    io.scale = sc;
    io.shift = sf;
    io.act_in = cc->act_in;
  }
  sige_ctx_take_conv_algos(ctx);
  if (!sige_sparse_conv(ctx, &io, &g, ab, dst, &err)) fail_msg("sparse_conv: %s", err->message);
  const unsigned algos = sige_ctx_take_conv_algos(ctx);
  if (pol != SIGE_CONV_POLICY_IM2COL)
    assert_int_equal(algos, SIGE_CONV_WINO4_FUSED);
  else
    assert_int_equal(algos, SIGE_CONV_IM2COL);

  const double scale_tol = pol != SIGE_CONV_POLICY_IM2COL ? 32.0 : 1.0;
  const double kterms = 9.0 * cc->cin;
  g_autofree guint8 *written = g_new0(guint8, dst->numel);
  for (int k = 0; k < ab->n; k++) {
    /* block output (i, j) lands at (corner + offset + (i, j)), stride 1 */
    const int r0 = ab->corners[2 * k] + g.offset, c0 = ab->corners[2 * k + 1] + g.offset;
    for (int co = 0; co < cc->cout; co++)
      for (int i = 0; i < o; i++)
        for (int j = 0; j < o; j++) {
          const int yy = r0 + i, xx = c0 + j;
          if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
          double s = bias->data[co], mag = fabs(s);
          for (int ci = 0; ci < cc->cin; ci++)
            for (int ky = 0; ky < 3; ky++)
              for (int kx = 0; kx < 3; kx++) {
                const double term =
                    (double)gathered->data[sp_at(gathered, k, ci, i + ky, j + kx)] *
                    wt->data[(((size_t)co * cc->cin + ci) * 3 + ky) * 3 + kx];
                s += term;
                mag += fabs(term);
              }
          double tol = 1e-7 + scale_tol * 2.0 * sqrt(kterms) * FLT_EPSILON * mag;
          float y = (float)s;
          sige_act_inplace(&y, 1, cc->act_out);
          double want = y;
          if (res) {
            const int ry = cc->res_map ? rows[yy] : yy, rx = cc->res_map ? cols[xx] : xx;
            want += val_at(res, ((size_t)co * rh + ry) * rw + rx);
            tol += FLT_EPSILON * fabs(want);
          }
          if (cc->dst_f16) tol += fabs(want) * (1.0 / 1024) + 6e-8;
          const size_t at = ((size_t)co * H + yy) * W + xx;
          const double got = val_at(dst, at);
          if (!(fabs(got - want) <= tol))
            fail_msg("seed %" G_GUINT64_FORMAT " %s: block %d (corner %d, %d) ch %d at (%d, %d): "
                     "got %.8g, expected %.8g (tol %.3g)", seed,
                     pol != SIGE_CONV_POLICY_IM2COL ? "fused wino4" : "unfused im2col", k,
                     ab->corners[2 * k], ab->corners[2 * k + 1], co, yy, xx, got, want, tol);
          written[at] = 1;
        }
  }
  for (size_t i = 0; i < dst->numel; i++)
    if (!written[i] && memcmp((guint8 *)dst->data + i * esize, before + i * esize, esize) != 0)
      fail_msg("seed %" G_GUINT64_FORMAT ": element %zu outside the blocks changed", seed, i);
}

static void run_both(const sc_case *cc, uint64_t seed) {
  run_case(cc, seed, SIGE_CONV_POLICY_WINO4);
  run_case(cc, seed, SIGE_CONV_POLICY_IM2COL);
}

static void test_fixed(void **state) {
  (void)state;
  static const sc_case cases[] = {
      /* the models' 6x6 blocks: one tile a block */
      {17, 23, 9, 7, 6, FALSE, FALSE, FALSE, TRUE, TRUE, FALSE, FALSE, SIGE_ACT_SWISH, SIGE_ACT_NONE},
      {17, 23, 9, 7, 6, TRUE, FALSE, FALSE, FALSE, TRUE, FALSE, FALSE, SIGE_ACT_NONE, SIGE_ACT_RELU},
      /* F16 source, residual and dst (the fp16 caches) */
      {13, 11, 6, 8, 6, FALSE, FALSE, TRUE, TRUE, TRUE, FALSE, TRUE, SIGE_ACT_LEAKY_RELU, SIGE_ACT_NONE},
      /* source and residual read through nearest x2 maps (upsampling blocks) */
      {14, 18, 5, 6, 6, FALSE, TRUE, FALSE, TRUE, TRUE, TRUE, FALSE, SIGE_ACT_SWISH, SIGE_ACT_NONE},
      /* other block sides: 8 (2x2 tiles, partial), 10 (2x2 whole), 4 (one partial) */
      {19, 21, 7, 9, 8, FALSE, FALSE, FALSE, TRUE, FALSE, FALSE, FALSE, SIGE_ACT_NONE, SIGE_ACT_LEAKY_RELU},
      {19, 21, 7, 9, 10, FALSE, FALSE, FALSE, TRUE, TRUE, FALSE, TRUE, SIGE_ACT_SWISH, SIGE_ACT_NONE},
      {9, 10, 4, 5, 4, TRUE, FALSE, FALSE, FALSE, TRUE, FALSE, FALSE, SIGE_ACT_NONE, SIGE_ACT_NONE},
      /* a map smaller than one block */
      {3, 5, 6, 6, 6, FALSE, FALSE, FALSE, TRUE, TRUE, FALSE, FALSE, SIGE_ACT_SWISH, SIGE_ACT_NONE},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) run_both(&cases[i], 100 + i);
}

static void test_random(void **state) {
  (void)state;
  sige_test_rng rng = sige_test_rng_new(77);
  static const int blocks[] = {4, 6, 6, 6, 8, 10};
  static const sige_act acts_in[] = {SIGE_ACT_NONE, SIGE_ACT_SWISH, SIGE_ACT_LEAKY_RELU};
  static const sige_act acts_out[] = {SIGE_ACT_NONE, SIGE_ACT_RELU};
  for (int n = 0; n < 24; n++) {
    const sc_case cc = {
        .h = 2 + (int)(sige_test_rng_next(&rng) % 30),
        .w = 2 + (int)(sige_test_rng_next(&rng) % 30),
        .cin = 1 + (int)(sige_test_rng_next(&rng) % 24),
        .cout = 5 + (int)(sige_test_rng_next(&rng) % 20),
        .block = blocks[sige_test_rng_next(&rng) % G_N_ELEMENTS(blocks)],
        .from_blocks = sige_test_rng_next(&rng) % 4 == 0,
        .src_map = sige_test_rng_next(&rng) % 4 == 0,
        .src_f16 = sige_test_rng_next(&rng) % 2,
        .affine = sige_test_rng_next(&rng) % 2,
        .residual = sige_test_rng_next(&rng) % 2,
        .res_map = FALSE,
        .dst_f16 = sige_test_rng_next(&rng) % 2,
        .act_in = acts_in[sige_test_rng_next(&rng) % 3],
        .act_out = acts_out[sige_test_rng_next(&rng) % 2],
    };
    run_both(&cc, 1000 + (uint64_t)n);
  }
}

/* The layer sizes the rule gives the fused path on its own (AUTO): 128
 * channels in and out, enough blocks. */
static void test_auto_wide(void **state) {
  (void)state;
  const sc_case cc = {40, 44, 128, 128, 6, FALSE, FALSE, TRUE, TRUE, TRUE, FALSE, TRUE,
                      SIGE_ACT_SWISH, SIGE_ACT_NONE};
  run_case(&cc, 9, SIGE_CONV_POLICY_AUTO);
}

/* Refusals: a wrong geometry or an aliased source fail with a message and
 * leave dst alone. */
static void test_refusals(void **state) {
  (void)state;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(1);
  g_autoptr(sige_tensor) x = sp_new4(1, 4, 8, 8), wt = sp_new4(4, 4, 3, 3);
  sp_fill_value(x, 1.0f);
  sp_fill_value(wt, 1.0f);
  sige_block_geometry g, g2;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  sige_block_geometry_init(&g2, 3, 2, 1, 6);
  g_autoptr(sige_mask) m = sige_mask_new(8, 8);
  m->data[9] = 1;
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
  const sige_sparse_conv_io io = {.src = x, .weight = wt};
  GError *err = NULL;
  assert_false(sige_sparse_conv(ctx, &io, &g, ab, x, &err));
  assert_non_null(strstr(err->message, "src must not be dst"));
  g_clear_error(&err);
  g_autoptr(sige_tensor) dst = sp_new4(1, 4, 8, 8);
  assert_false(sige_sparse_conv(ctx, &io, &g2, ab, dst, &err));
  assert_non_null(strstr(err->message, "3x3 stride-1"));
  g_clear_error(&err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixed),
      cmocka_unit_test(test_random),
      cmocka_unit_test(test_auto_wide),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
