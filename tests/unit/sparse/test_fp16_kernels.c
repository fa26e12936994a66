/* F16 storage in the sparse kernels (the fp16 activation caches): gather,
 * scatter, the block-residual scatter and the undo log on F16 full tensors
 * against the float32 kernels on the same data rounded to half, plus the
 * half conversions themselves.
 *
 * The kernels widen halves exactly and compute in float32 in the same order
 * as the float path, so gather and scatter must match bit for bit once the
 * float side reads the rounded values and its result is rounded once.  Only
 * the block-residual scatter stores an intermediate (main + residual) before
 * the shortcut correction, so it may differ by one more rounding. */
#include "sparse_test_util.h"

#include "sige/error.h"

#define C 3
#define H 13
#define W 11

static sige_tensor *to16(const sige_tensor *t) {
  GError *err = NULL;
  sige_tensor *r = sige_tensor_to_f16(t, &err);
  if (!r) fail_msg("to_f16: %s", err->message);
  assert_int_equal(r->storage, SIGE_STORAGE_F16);
  return r;
}

static sige_tensor *to32(const sige_tensor *t) {
  GError *err = NULL;
  sige_tensor *r = sige_tensor_to_f32(t, &err);
  if (!r) fail_msg("to_f32: %s", err->message);
  assert_int_equal(r->storage, SIGE_STORAGE_F32);
  return r;
}

/* a float32 tensor holding exactly the values of its half rounding */
static sige_tensor *rounded(const sige_tensor *t) {
  g_autoptr(sige_tensor) h = to16(t);
  return to32(h);
}

static void assert_bits_equal(const sige_tensor *a, const sige_tensor *b, const char *what) {
  assert_int_equal(a->storage, b->storage);
  assert_true(sige_tensor_same_shape(a, b));
  if (memcmp(a->data, b->data, sige_tensor_bytes(a)) != 0) fail_msg("%s: not bit-identical", what);
}

static sige_mask *edit_mask(void) {
  sige_mask *m = sige_mask_new(H, W);
  m->data[0 * W + 5] = 1;
  m->data[6 * W + 0] = 1;
  m->data[(H - 1) * W + (W - 1)] = 1;
  m->data[7 * W + 6] = 1;
  return m;
}

/* ---- conversions ---------------------------------------------------------- */

static void test_conversions(void **state) {
  (void)state;
  /* every half: widening matches the scalar function, and narrowing the
   * widened value gives the half back (NaNs keep being NaNs) */
  g_autofree uint16_t *all = g_new(uint16_t, 65536);
  g_autofree float *wide = g_new(float, 65536);
  g_autofree uint16_t *back = g_new(uint16_t, 65536);
  for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
  sige_f16_to_f32_n(all, wide, 65536);
  sige_f32_to_f16_n(wide, back, 65536);
  for (int i = 0; i < 65536; i++) {
    const float s = sige_f16_to_f32((uint16_t)i);
    if (isnan(s)) {
      assert_true(isnan(wide[i]) && isnan(sige_f16_to_f32(back[i])));
      continue;
    }
    if (memcmp(&s, &wide[i], sizeof s) != 0) fail_msg("half 0x%04x widens differently", i);
    if (back[i] != i) fail_msg("half 0x%04x -> %g -> 0x%04x", i, (double)s, back[i]);
  }
  /* floats: ties, the subnormal and overflow edges, and random bit patterns
   * (odd lengths, so the vector loops' tails run too) */
  const float edges[] = {0.0f, -0.0f, 1.0f, 1.0f + 0x1p-11f, 1.0f + 0x1p-11f + 0x1p-23f,
                         1.0f + 3 * 0x1p-11f, 65504.0f, 65519.99f, 65520.0f, 1e9f, -1e9f,
                         0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1p-26f, 0x1.ffcp-15f, 0x1p-14f,
                         -0x1.4p-20f, 3.0e-8f, 6.1e-5f};
  const size_t n_edges = sizeof edges / sizeof edges[0];
  const size_t n = 4099;
  g_autofree float *f = g_new(float, n);
  g_autofree uint16_t *h = g_new(uint16_t, n);
  sige_test_rng r = sige_test_rng_new(7);
  for (size_t i = 0; i < n; i++) {
    if (i < n_edges) {
      f[i] = edges[i];
    } else {
      uint32_t bits = (uint32_t)sige_test_rng_next(&r);
      /* mostly the range halves can hold, some beyond it */
      if (i % 4) bits = (bits & 0x807fffffu) | ((uint32_t)(100 + (bits >> 23) % 50) << 23);
      memcpy(&f[i], &bits, sizeof bits);
    }
  }
  sige_f32_to_f16_n(f, h, n);
  for (size_t i = 0; i < n; i++) {
    if (isnan(f[i])) continue; /* payloads may differ */
    if (h[i] != sige_f32_to_f16(f[i]))
      fail_msg("float %a narrows to 0x%04x, scalar 0x%04x", (double)f[i], h[i],
               sige_f32_to_f16(f[i]));
  }
}

/* ---- tensors --------------------------------------------------------------- */

static void test_tensor_storage(void **state) {
  (void)state;
  GError *err = NULL;
  sige_test_rng r = sige_test_rng_new(3);
  g_autoptr(sige_tensor) x = sp_new4(1, C, H, W);
  sp_fill(x, &r, -3.0f, 3.0f);
  g_autoptr(sige_tensor) x16 = to16(x);
  assert_int_equal(sige_tensor_elem_size(x16), 2);
  assert_int_equal(sige_tensor_bytes(x16) * 2, sige_tensor_bytes(x));
  g_autoptr(sige_tensor) d = sige_tensor_dup(x16, &err);
  assert_non_null(d);
  assert_bits_equal(d, x16, "dup keeps F16");
  for (size_t i = 0; i < x->numel; i++)
    assert_true(fabsf(sige_f16_to_f32(x16->data16[i]) - x->data[i]) <=
                fabsf(x->data[i]) * 0x1p-11f);

  /* dense ops refuse F16: an error, not floats read from half bits */
  g_autoptr(sige_tensor) w = sp_new4(2, C, 3, 3);
  g_autoptr(sige_tensor) out = sp_new4(1, 2, H, W);
  sige_conv2d_params p = sige_conv2d_params_simple(1, 1);
  g_autoptr(sige_ctx) ctx = sige_ctx_new(0);
  assert_false(sige_conv2d(ctx, x16, w, NULL, &p, out, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_INVALID));
  g_clear_error(&err);
  assert_true(sige_conv2d(ctx, x, w, NULL, &p, out, &err));
}

/* ---- gather ---------------------------------------------------------------- */

static void check_gather(sige_ctx *ctx, const sige_tensor *x, const sige_resample_map *map,
                         int kernel, int stride, int offset, int block, const char *what) {
  sige_block_geometry g;
  sige_block_geometry_init(&g, kernel, stride, offset, block);
  g_autoptr(sige_mask) m = edit_mask();
  g_autoptr(sige_mask) mm = NULL;
  if (map) { /* the mask lives at the logical (resampled) size */
    mm = sige_mask_new(map->h, map->w);
    mm->data[3 * map->w + 4] = 1;
    mm->data[(map->h - 1) * map->w + 1] = 1;
  }
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(map ? mm : m, &g);
  assert_true(ab->n > 0);
  float scale[C], shift[C];
  for (int c = 0; c < C; c++) {
    scale[c] = 0.5f + 0.25f * c;
    shift[c] = -0.3f + 0.2f * c;
  }
  g_autoptr(sige_tensor) x16 = to16(x);
  g_autoptr(sige_tensor) xr = rounded(x);
  for (int variant = 0; variant < 2; variant++) {
    const float *s = variant ? scale : NULL, *t = variant ? shift : NULL;
    const sige_act act = variant ? SIGE_ACT_SWISH : SIGE_ACT_NONE;
    g_autoptr(sige_tensor) got = sp_new_blocks(ab->n, C, g.block);
    g_autoptr(sige_tensor) want = sp_new_blocks(ab->n, C, g.block);
    sige_gather(ctx, x16, map, &g, ab, s, t, act, got);
    sige_gather(ctx, xr, map, &g, ab, s, t, act, want);
    assert_bits_equal(got, want, what);
  }
}

static void test_gather(void **state) {
  (void)state;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(0);
  sige_test_rng r = sige_test_rng_new(11);
  g_autoptr(sige_tensor) x = sp_new4(1, C, H, W);
  sp_fill(x, &r, -4.0f, 4.0f);
  check_gather(ctx, x, NULL, 3, 1, 1, 6, "gather 3x3");
  check_gather(ctx, x, NULL, 1, 1, 0, 4, "gather 1x1");
  check_gather(ctx, x, NULL, 3, 2, 0, 6, "gather 3x3 stride 2");
  /* through a nearest x2 upsampling map */
  int rows[2 * H], cols[2 * W];
  sige_nearest_indices(H, 2 * H, rows);
  sige_nearest_indices(W, 2 * W, cols);
  sige_resample_map map = {2 * H, 2 * W, rows, cols};
  check_gather(ctx, x, &map, 3, 1, 1, 6, "gather 3x3 through a map");
}

/* ---- scatter --------------------------------------------------------------- */

static void test_scatter(void **state) {
  (void)state;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(0);
  sige_test_rng r = sige_test_rng_new(5);
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  g_autoptr(sige_mask) m = edit_mask();
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
  g_autoptr(sige_tensor) blocks = sp_new_blocks(ab->n, C, g.out_block);
  sp_fill(blocks, &r, -5.0f, 5.0f);
  g_autoptr(sige_tensor) dst = sp_new4(1, C, H, W);
  sp_fill(dst, &r, -2.0f, 2.0f);
  g_autoptr(sige_tensor) res = sp_new4(1, C, H, W);
  sp_fill(res, &r, -2.0f, 2.0f);
  g_autoptr(sige_tensor) res16 = to16(res);
  g_autoptr(sige_tensor) res_r = rounded(res);
  /* a residual read through a map (a smaller tensor upsampled) */
  g_autoptr(sige_tensor) small = sp_new4(1, C, (H + 1) / 2, (W + 1) / 2);
  sp_fill(small, &r, -2.0f, 2.0f);
  g_autoptr(sige_tensor) small16 = to16(small);
  g_autoptr(sige_tensor) small_r = rounded(small);
  int rows[H], cols[W];
  sige_nearest_indices(SIGE_H(small), H, rows);
  sige_nearest_indices(SIGE_W(small), W, cols);
  sige_resample_map rmap = {H, W, rows, cols};

  struct {
    const sige_tensor *res16, *res_r;
    const sige_resample_map *rmap;
    const char *what;
  } cases[] = {
      {NULL, NULL, NULL, "scatter into F16"},
      {res, res, NULL, "scatter into F16 + F32 residual"},
      {res16, res_r, NULL, "scatter into F16 + F16 residual"},
      {small16, small_r, &rmap, "scatter into F16 + F16 residual through a map"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    g_autoptr(sige_tensor) got = to16(dst);
    g_autoptr(sige_tensor) want = rounded(dst);
    sige_scatter(ctx, blocks, &g, ab, cases[k].res16, cases[k].rmap, got);
    sige_scatter(ctx, blocks, &g, ab, cases[k].res_r, cases[k].rmap, want);
    g_autoptr(sige_tensor) want16 = to16(want);
    assert_bits_equal(got, want16, cases[k].what);
  }
  /* an F32 destination with an F16 residual: no rounding at all */
  g_autoptr(sige_tensor) got = sige_tensor_dup(dst, NULL);
  g_autoptr(sige_tensor) want = sige_tensor_dup(dst, NULL);
  sige_scatter(ctx, blocks, &g, ab, res16, NULL, got);
  sige_scatter(ctx, blocks, &g, ab, res_r, NULL, want);
  assert_bits_equal(got, want, "scatter into F32 + F16 residual");
}

static void test_block_residual(void **state) {
  (void)state;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(0);
  sige_test_rng r = sige_test_rng_new(9);
  sige_block_geometry gm, gs;
  sige_block_geometry_init(&gm, 3, 1, 1, 6);
  sige_block_geometry_init(&gs, 1, 1, 0, 4);
  g_autoptr(sige_mask) m = edit_mask();
  g_autoptr(sige_active_blocks) am = sige_reduce_mask(m, &gm);
  g_autoptr(sige_active_blocks) as = sige_reduce_mask(m, &gs);
  g_autoptr(sige_tensor) mainb = sp_new_blocks(am->n, C, gm.out_block);
  g_autoptr(sige_tensor) scb = sp_new_blocks(as->n, C, gs.out_block);
  sp_fill(mainb, &r, -3.0f, 3.0f);
  sp_fill(scb, &r, -3.0f, 3.0f);
  g_autoptr(sige_tensor) dst = sp_new4(1, C, H, W);
  g_autoptr(sige_tensor) res = sp_new4(1, C, H, W);
  sp_fill(dst, &r, -2.0f, 2.0f);
  sp_fill(res, &r, -2.0f, 2.0f);

  g_autoptr(sige_tensor) d16 = to16(dst);
  g_autoptr(sige_tensor) r16 = to16(res);
  g_autoptr(sige_tensor) d32 = rounded(dst);
  g_autoptr(sige_tensor) r32 = rounded(res);
  sige_scatter_block_residual(ctx, mainb, &gm, am, scb, &gs, as, d16, r16);
  sige_scatter_block_residual(ctx, mainb, &gm, am, scb, &gs, as, d32, r32);
  /* the residual cache holds the new shortcut output, rounded once */
  g_autoptr(sige_tensor) r32h = to16(r32);
  assert_bits_equal(r16, r32h, "block residual: res_cache");
  /* the output: main + res stored, then corrected by the shortcut change;
   * at most two roundings of values below 11 in magnitude (2 x 2^-11 x 16) */
  g_autoptr(sige_tensor) got = to32(d16);
  int changed = 0;
  for (size_t i = 0; i < got->numel; i++) {
    const float e = fabsf(got->data[i] - d32->data[i]);
    if (!(e <= 2 * 0x1p-11f * 16.0f)) fail_msg("block residual: element %zu off by %g", i, e);
    changed += got->data[i] != sige_f16_to_f32(sige_f32_to_f16(dst->data[i]));
  }
  assert_true(changed > 0);
}

/* ---- undo log -------------------------------------------------------------- */

static void test_undo_log(void **state) {
  (void)state;
  GError *err = NULL;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(0);
  sige_test_rng r = sige_test_rng_new(13);
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  g_autoptr(sige_mask) m = edit_mask();
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
  g_autoptr(sige_tensor) blocks = sp_new_blocks(ab->n, C, g.out_block);
  sp_fill(blocks, &r, -5.0f, 5.0f);
  g_autoptr(sige_tensor) dst = sp_new4(1, C, H, W);
  sp_fill(dst, &r, -2.0f, 2.0f);
  g_autoptr(sige_tensor) d16 = to16(dst);
  g_autoptr(sige_tensor) before = sige_tensor_dup(d16, &err);

  g_autoptr(sige_undo_log) log16 = sige_undo_log_new();
  assert_true(sige_undo_log_save_blocks(log16, d16, &g, ab, &err));
  sige_scatter(ctx, blocks, &g, ab, NULL, NULL, d16);
  assert_true(memcmp(d16->data16, before->data16, sige_tensor_bytes(d16)) != 0);
  const size_t bytes16 = sige_undo_log_bytes(log16);
  sige_undo_log_rollback(log16);
  assert_bits_equal(d16, before, "undo log rollback (F16 tiles)");
  assert_int_equal(sige_undo_log_bytes(log16), 0);

  /* the same tiles of an F32 tensor take twice the element bytes */
  g_autoptr(sige_undo_log) log32 = sige_undo_log_new();
  assert_true(sige_undo_log_save_blocks(log32, dst, &g, ab, &err));
  size_t pixels = 0;
  for (int k = 0; k < ab->n; k++) {
    const int r0 = (ab->corners[2 * k] + g.offset) / g.stride;
    const int c0 = (ab->corners[2 * k + 1] + g.offset) / g.stride;
    const int rows = MIN(r0 + g.out_block, H) - MAX(r0, 0);
    const int cols = MIN(c0 + g.out_block, W) - MAX(c0, 0);
    if (rows > 0 && cols > 0) pixels += (size_t)rows * (size_t)cols;
  }
  assert_int_equal(sige_undo_log_bytes(log32) - bytes16, pixels * C * sizeof(uint16_t));
  sige_undo_log_clear(log32);

  /* whole-tensor records */
  assert_true(sige_undo_log_save_tensor(log16, d16, &err));
  for (size_t i = 0; i < d16->numel; i++) d16->data16[i] = 0x3c00; /* 1.0 */
  sige_undo_log_rollback(log16);
  assert_bits_equal(d16, before, "undo log rollback (F16 tensor)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conversions), cmocka_unit_test(test_tensor_storage),
      cmocka_unit_test(test_gather),      cmocka_unit_test(test_scatter),
      cmocka_unit_test(test_block_residual), cmocka_unit_test(test_undo_log),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
