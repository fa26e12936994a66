/* sige_conv2d against a direct double-precision convolution. */
#include <float.h>
#include <string.h>

#include "ops_test_util.h"

typedef struct {
  const char *name;
  int n, cin, h, w, cout, kh, kw;
  sige_conv2d_params p;
  gboolean bias;
  sige_layout layout;
} conv_case;

/* Reference value and tolerance of each output element, in out's layout.
 *
 * Tolerance: float32 accumulation (blocked sgemm, possibly FMA) of K products
 * against a double sum.  Rounding errors behave like a random walk, so the
 * error stays below 2 * sqrt(K) * FLT_EPSILON times the sum of |terms|; a
 * wrong or missing tap instead costs a whole term, orders of magnitude more. */
static void conv_reference(const sige_tensor *x, const sige_tensor *wt, const sige_tensor *b,
                           const sige_conv2d_params *p, const sige_tensor *out, double *ref,
                           double *tol) {
  const int N = SIGE_N(out), Co = SIGE_C(out), Ho = SIGE_H(out), Wo = SIGE_W(out);
  const int cg = SIGE_C(wt), og = Co / p->groups, kh = SIGE_H(wt), kw = SIGE_W(wt);
  const double k_terms = (double)cg * kh * kw;
  for (int n = 0; n < N; n++)
    for (int co = 0; co < Co; co++)
      for (int ho = 0; ho < Ho; ho++)
        for (int wo = 0; wo < Wo; wo++) {
          const int g = co / og;
          double s = b ? b->data[co] : 0.0, mag = fabs(s);
          for (int ci = 0; ci < cg; ci++)
            for (int ki = 0; ki < kh; ki++)
              for (int kj = 0; kj < kw; kj++) {
                const int hi = ho * p->stride_h - p->pad_top + ki;
                const int wi = wo * p->stride_w - p->pad_left + kj;
                if (hi < 0 || hi >= SIGE_H(x) || wi < 0 || wi >= SIGE_W(x)) continue;
                const double t = (double)ot_at(x, n, g * cg + ci, hi, wi) *
                                 wt->data[(((size_t)co * cg + ci) * kh + ki) * kw + kj];
                s += t;
                mag += fabs(t);
              }
          const size_t i = ot_idx(out, n, co, ho, wo);
          ref[i] = s;
          tol[i] = 1e-7 + 2.0 * sqrt(k_terms) * FLT_EPSILON * mag;
        }
}

/* The largest error / conv_reference's own tolerance since it was reset:
 * what the Winograd tests print, to show their margin. */
static double worst_ratio;

/* tol_scale widens conv_reference's tolerance (Winograd, below); algo: the
 * sige_conv_algo bit the call must report, 0 for any. */
static void run_case_as(sige_ctx *ctx, const conv_case *cc, uint64_t seed, double tol_scale,
                        unsigned algo) {
  uint64_t rng = seed;
  sige_tensor *x = ot_new4(cc->n, cc->cin, cc->h, cc->w, cc->layout);
  sige_tensor *wt = ot_new4(cc->cout, cc->cin / cc->p.groups, cc->kh, cc->kw, SIGE_LAYOUT_NCHW);
  sige_tensor *b = cc->bias ? ot_new1(cc->cout) : NULL;
  ot_fill(x, &rng, -1.0f, 1.0f);
  ot_fill(wt, &rng, -0.5f, 0.5f);
  if (b) ot_fill(b, &rng, -1.0f, 1.0f);

  int64_t os[4];
  sige_conv2d_out_shape(x, wt, &cc->p, os);
  sige_tensor *out = ot_new4((int)os[0], (int)os[1], (int)os[2], (int)os[3], cc->layout);
  /* Poison the output so that elements the op forgets to write are caught. */
  for (size_t i = 0; i < out->numel; i++) out->data[i] = NAN;

  GError *err = NULL;
  sige_ctx_reset_macs(ctx);
  gboolean ok = sige_conv2d(ctx, x, wt, b, &cc->p, out, &err);
  if (!ok) print_error("%s: %s\n", cc->name, err ? err->message : "?");
  assert_true(ok);
  assert_null(err);
  /* MACs as a dense conv would execute them, padding taps included. */
  const uint64_t macs = (uint64_t)os[0] * os[1] * (uint64_t)(cc->cin / cc->p.groups) * cc->kh *
                        cc->kw * (uint64_t)os[2] * os[3];
  assert_int_equal(sige_ctx_macs(ctx), macs);
  const unsigned algos = sige_ctx_take_conv_algos(ctx);
  if (algo && algos != algo) {
    print_error("%s: ran algorithm bits 0x%x, expected 0x%x\n", cc->name, algos, algo);
    fail();
  }

  double *ref = g_new(double, out->numel), *tol = g_new(double, out->numel);
  conv_reference(x, wt, b, &cc->p, out, ref, tol);
  for (size_t i = 0; i < out->numel; i++) {
    if (tol[i] > 0) worst_ratio = MAX(worst_ratio, fabs(out->data[i] - ref[i]) / tol[i]);
    tol[i] *= tol_scale;
  }
  ot_expect_within(cc->name, out->data, ref, tol, out->numel);
  g_free(ref);
  g_free(tol);
  sige_tensor_free(out);
  sige_tensor_free(b);
  sige_tensor_free(wt);
  sige_tensor_free(x);
}

static void run_case(sige_ctx *ctx, const conv_case *cc, uint64_t seed) {
  run_case_as(ctx, cc, seed, 1.0, 0);
}

#define P(sh, sw, pt, pb, pl, pr, g) ((sige_conv2d_params){sh, sw, pt, pb, pl, pr, g})
#define NCHW SIGE_LAYOUT_NCHW
#define CNHW SIGE_LAYOUT_CNHW

static const conv_case small_cases[] = {
    {"3x3 s1 p1 5->13 N2", 2, 5, 7, 9, 13, 3, 3, P(1, 1, 1, 1, 1, 1, 1), TRUE, NCHW},
    {"3x3 s1 p1 5->13 N3 CNHW", 3, 5, 7, 9, 13, 3, 3, P(1, 1, 1, 1, 1, 1, 1), TRUE, CNHW},
    {"3x3 s2 p0101 3->5 N2", 2, 3, 8, 11, 5, 3, 3, P(2, 2, 0, 1, 0, 1, 1), TRUE, NCHW},
    {"3x3 s2 p0101 3->5 N3 CNHW", 3, 3, 8, 11, 5, 3, 3, P(2, 2, 0, 1, 0, 1, 1), FALSE, CNHW},
    {"3x3 s2 p0101 odd input", 2, 13, 9, 7, 5, 3, 3, P(2, 2, 0, 1, 0, 1, 1), TRUE, NCHW},
    {"1x1 13->5 N2", 2, 13, 6, 5, 5, 1, 1, P(1, 1, 0, 0, 0, 0, 1), TRUE, NCHW},
    {"1x1 13->5 N3 CNHW", 3, 13, 6, 5, 5, 1, 1, P(1, 1, 0, 0, 0, 0, 1), FALSE, CNHW},
    {"1x1 groups2 CNHW", 3, 6, 4, 7, 10, 1, 1, P(1, 1, 0, 0, 0, 0, 2), TRUE, CNHW},
    {"1x1 stride 2", 2, 5, 7, 6, 3, 1, 1, P(2, 2, 0, 0, 0, 0, 1), TRUE, NCHW},
    {"1x1 padded", 2, 5, 4, 3, 3, 1, 1, P(1, 1, 1, 0, 2, 1, 1), TRUE, NCHW},
    {"depthwise 3x3 p1 C13", 2, 13, 7, 9, 13, 3, 3, P(1, 1, 1, 1, 1, 1, 13), TRUE, NCHW},
    {"depthwise 3x3 s2 p0101 CNHW", 3, 13, 8, 11, 13, 3, 3, P(2, 2, 0, 1, 0, 1, 13), TRUE, CNHW},
    {"depthwise 5x3 asym pad", 2, 5, 6, 9, 5, 5, 3, P(1, 2, 2, 1, 0, 3, 5), FALSE, NCHW},
    {"depthwise multiplier 2", 2, 3, 6, 5, 6, 3, 3, P(1, 1, 1, 1, 1, 1, 3), TRUE, NCHW},
    {"groups2 3x3 6->10", 2, 6, 7, 5, 10, 3, 3, P(1, 1, 1, 1, 1, 1, 2), TRUE, NCHW},
    {"groups2 3x3 6->10 CNHW", 3, 6, 7, 5, 10, 3, 3, P(1, 1, 1, 1, 1, 1, 2), TRUE, CNHW},
    {"3x1 s(2,1)", 2, 5, 9, 4, 3, 3, 1, P(2, 1, 1, 1, 0, 0, 1), TRUE, NCHW},
    {"1x5 s(1,3) pad right", 2, 3, 4, 13, 5, 1, 5, P(1, 3, 0, 0, 0, 2, 1), FALSE, NCHW},
    {"7x7 p3 on 3x3 input", 2, 3, 3, 3, 5, 7, 7, P(1, 1, 3, 3, 3, 3, 1), TRUE, NCHW},
    {"4x4 s2 p1 pad > out", 1, 5, 5, 5, 13, 4, 4, P(2, 2, 1, 1, 1, 1, 1), TRUE, NCHW},
    /* <= 4 output channels, stride 1: the direct kernel (row bands of 8) */
    {"small cout 3x3 p1 9->3 N2", 2, 9, 11, 21, 3, 3, 3, P(1, 1, 1, 1, 1, 1, 1), TRUE, NCHW},
    {"small cout 5x3 asym pad 4->1", 2, 4, 6, 9, 1, 5, 3, P(1, 1, 2, 1, 0, 3, 1), FALSE, NCHW},
    {"small cout 7x7 p3 on 3x3 -> 4", 1, 3, 3, 3, 4, 7, 7, P(1, 1, 3, 3, 3, 3, 1), TRUE, NCHW},
    {"small cout 3x3 p0 20 rows -> 2", 1, 3, 20, 6, 2, 3, 3, P(1, 1, 0, 0, 0, 0, 1), TRUE, NCHW},
};

static void test_conv2d_small(void **state) {
  for (size_t i = 0; i < G_N_ELEMENTS(small_cases); i++)
    run_case(*state, &small_cases[i], 1000 + i);
}

/* These overflow the 64 MiB im2col budget: the first is cut into bands of
 * output rows, the second packs one CNHW image per GEMM instead of all. */
static void test_conv2d_tiled(void **state) {
  /* 5 outputs: more than the direct small-output kernel takes, so im2col */
  const conv_case rows = {"tiled rows 64ch 160x200", 1, 64, 160, 200, 5, 3, 3,
                          P(1, 1, 1, 1, 1, 1, 1), TRUE, NCHW};
  const conv_case imgs = {"tiled images CNHW 64ch 128x128", 2, 64, 128, 128, 3, 3, 3,
                          P(1, 1, 1, 1, 1, 1, 1), TRUE, CNHW};
  run_case(*state, &rows, 77);
  run_case(*state, &imgs, 78);
}

static void test_conv2d_mac_count(void **state) {
  sige_ctx *ctx = *state;
  sige_tensor *x = ot_new4(2, 5, 7, 9, NCHW);
  sige_tensor *w = ot_new4(13, 5, 3, 3, NCHW);
  sige_tensor *out = ot_new4(2, 13, 4, 5, NCHW);
  const sige_conv2d_params p = P(2, 2, 1, 1, 1, 1, 1);
  sige_ctx_reset_macs(ctx);
  assert_true(sige_conv2d(ctx, x, w, NULL, &p, out, NULL));
  assert_true(sige_conv2d(ctx, x, w, NULL, &p, out, NULL));
  /* 2 calls * N2 * Cout13 * Cin5 * 3*3 * Ho4 * Wo5 */
  assert_int_equal(sige_ctx_macs(ctx), 2u * 2 * 13 * 5 * 9 * 4 * 5);
  sige_tensor_free(out);
  sige_tensor_free(w);
  sige_tensor_free(x);
}

static void test_conv2d_shape_errors(void **state) {
  sige_ctx *ctx = *state;
  sige_tensor *x = ot_new4(2, 5, 7, 9, NCHW);
  sige_tensor *w = ot_new4(13, 5, 3, 3, NCHW);
  sige_tensor *bad_out = ot_new4(2, 13, 7, 8, NCHW);
  sige_tensor *bad_b = ot_new1(12);
  const sige_conv2d_params p = sige_conv2d_params_simple(1, 1);
  GError *err = NULL;
  assert_false(sige_conv2d(ctx, x, w, NULL, &p, bad_out, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  assert_non_null(strstr(err->message, "conv2d"));
  assert_non_null(strstr(err->message, "[2, 13, 7, 8]"));
  g_clear_error(&err);

  sige_tensor *out = ot_new4(2, 13, 7, 9, NCHW);
  assert_false(sige_conv2d(ctx, x, w, bad_b, &p, out, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  g_clear_error(&err);

  const sige_conv2d_params pg = {1, 1, 1, 1, 1, 1, 2}; /* 5 channels do not split in 2 */
  assert_false(sige_conv2d(ctx, x, w, NULL, &pg, out, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  g_clear_error(&err);

  out->layout = CNHW; /* layouts must agree */
  assert_false(sige_conv2d(ctx, x, w, NULL, &p, out, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  g_clear_error(&err);

  sige_tensor_free(out);
  sige_tensor_free(bad_b);
  sige_tensor_free(bad_out);
  sige_tensor_free(w);
  sige_tensor_free(x);
}

/* Winograd F(m x m, 3x3), forced by the context's policy, against the
 * direct double-precision convolution.
 *
 * Tolerance: the transforms add and subtract up to alpha input values
 * scaled by up to 5 (B^T), the kernels' transforms by up to 1/4 (G), and
 * the output transform sums alpha^2 products with weights up to 8^2 (A^T):
 * the float32 error of an output is that of the direct sum times a growth
 * factor.  Measured on these cases the worst error / direct tolerance is
 * 0.26 for F(2x2) and 10.9 for F(4x4) (7.3 while the transformed weights
 * were made in double; the tests print it); the factors below leave a
 * margin of >= 2.9x.  A wrong tap, tile offset or border costs a whole
 * product term (about mag / K, K = 9 Cin <= 360 here), far above the
 * widened tolerance (32 * 2 sqrt(K) eps mag = 1.5e-4 mag < mag / 360). */
#define WINO2_TOL 2.0
#define WINO4_TOL 32.0

static void wino_cases(sige_ctx *ctx, sige_conv_policy pol) {
  const double tol = pol == SIGE_CONV_POLICY_WINO4 ? WINO4_TOL : WINO2_TOL;
  const unsigned algo = pol == SIGE_CONV_POLICY_WINO4 ? SIGE_CONV_WINO4 : SIGE_CONV_WINO2;
  static const conv_case fixed[] = {
      {"wino 3x3 p1 NCHW N2 odd", 2, 7, 11, 13, 9, 3, 3, P(1, 1, 1, 1, 1, 1, 1), TRUE, NCHW},
      {"wino 3x3 p0 NCHW", 1, 12, 14, 10, 6, 3, 3, P(1, 1, 0, 0, 0, 0, 1), FALSE, NCHW},
      {"wino 3x3 asym pad", 2, 5, 9, 6, 7, 3, 3, P(1, 1, 2, 0, 0, 1, 1), TRUE, NCHW},
      {"wino 1x1 input p1", 1, 3, 1, 1, 5, 3, 3, P(1, 1, 1, 1, 1, 1, 1), TRUE, NCHW},
      /* gathered block batches: no padding, 6x6 -> one 4x4 tile, 10x10 ->
       * 2x2 tiles, 7x7 -> a partial tile, 4x4 -> a 2x2 output */
      {"wino blocks 6x6 x9", 9, 16, 6, 6, 12, 3, 3, P(1, 1, 0, 0, 0, 0, 1), TRUE, CNHW},
      {"wino blocks 10x10 x5", 5, 8, 10, 10, 24, 3, 3, P(1, 1, 0, 0, 0, 0, 1), TRUE, CNHW},
      {"wino blocks 7x7 x4", 4, 11, 7, 7, 5, 3, 3, P(1, 1, 0, 0, 0, 0, 1), FALSE, CNHW},
      {"wino blocks 4x4 x3", 3, 6, 4, 4, 8, 3, 3, P(1, 1, 0, 0, 0, 0, 1), TRUE, CNHW},
      {"wino CNHW p1 N3", 3, 5, 9, 8, 13, 3, 3, P(1, 1, 1, 1, 1, 1, 1), TRUE, CNHW},
  };
  sige_ctx_set_conv_policy(ctx, pol);
  worst_ratio = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++) run_case_as(ctx, &fixed[i], 300 + i, tol, algo);
  /* random shapes, borders and batches */
  uint64_t rng = 4242 + (uint64_t)pol;
  for (int i = 0; i < 40; i++) {
    const gboolean blocks = ot_next(&rng) % 3 == 0;
    conv_case cc = {"wino random", 1 + (int)(ot_next(&rng) % 3), 1 + (int)(ot_next(&rng) % 40),
                    3 + (int)(ot_next(&rng) % 21), 3 + (int)(ot_next(&rng) % 21),
                    5 + (int)(ot_next(&rng) % 36), 3, 3, P(1, 1, 0, 0, 0, 0, 1),
                    ot_next(&rng) % 2 == 0, blocks || ot_next(&rng) % 2 ? CNHW : NCHW};
    if (blocks) {
      cc.n = 1 + (int)(ot_next(&rng) % 12);
      cc.h = cc.w = 4 + (int)(ot_next(&rng) % 9);
    } else {
      cc.p.pad_top = (int)(ot_next(&rng) % 3);
      cc.p.pad_bottom = (int)(ot_next(&rng) % 3);
      cc.p.pad_left = (int)(ot_next(&rng) % 3);
      cc.p.pad_right = (int)(ot_next(&rng) % 3);
      if (cc.layout == NCHW && ot_next(&rng) % 2) cc.n = 1;
    }
    run_case_as(ctx, &cc, 500 + (uint64_t)i, tol, algo);
  }
  print_message("F(%dx%d): worst error %.2f x the direct tolerance (allowed %.0f x)\n",
                pol == SIGE_CONV_POLICY_WINO4 ? 4 : 2, pol == SIGE_CONV_POLICY_WINO4 ? 4 : 2,
                worst_ratio, tol);
  sige_ctx_set_conv_policy(ctx, SIGE_CONV_POLICY_AUTO);
}

static void test_conv2d_winograd4(void **state) { wino_cases(*state, SIGE_CONV_POLICY_WINO4); }
static void test_conv2d_winograd2(void **state) { wino_cases(*state, SIGE_CONV_POLICY_WINO2); }

/* More tiles than one chunk of the transformed domain holds (the chunk is
 * a quarter of the 64 MiB scratch limit: 4 Mi floats / (36 * 320) = 364
 * tiles), so the chunk loop and its tile offsets are exercised. */
static void test_conv2d_winograd_chunks(void **state) {
  const conv_case cc = {"wino chunks 160ch 70x90", 1, 160, 70, 90, 160, 3, 3,
                        P(1, 1, 1, 1, 1, 1, 1), TRUE, NCHW};
  sige_ctx_set_conv_policy(*state, SIGE_CONV_POLICY_WINO4);
  /* K = 1440 terms: tolerance only, the fixed cases check the taps */
  run_case_as(*state, &cc, 91, WINO4_TOL, SIGE_CONV_WINO4);
  sige_ctx_set_conv_policy(*state, SIGE_CONV_POLICY_AUTO);
}

/* The transformed weights are made per call, a band of output channels at
 * a time, and not kept (they were 4x the 3x3 weights: 670 MiB for GauGAN):
 * nothing may be left on the weight tensor or counted as prepared, and new
 * contents of the same tensor must be used at once. */
/* Within the context's limit the transformed weights are made once, kept
 * on the tensor and counted; weights refilled after a call are noticed (the
 * fingerprint) and transformed again.  With a limit of 0 nothing stays on
 * the tensor and nothing is counted.  Either way the result is the im2col
 * one within the F(4x4) tolerance of these 8-channel sums (1e-4). */
static void test_conv2d_winograd_weights_kept_within_limit(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 77;
  sige_tensor *x = ot_new4(1, 8, 9, 9, NCHW);
  sige_tensor *w = ot_new4(16, 8, 3, 3, NCHW);
  sige_tensor *out = ot_new4(1, 16, 9, 9, NCHW);
  sige_tensor *ref = ot_new4(1, 16, 9, 9, NCHW);
  const sige_conv2d_params p = sige_conv2d_params_simple(1, 1);
  ot_fill(x, &rng, -1, 1);
  const size_t limit = sige_ctx_winograd_keep_bytes(ctx);
  for (int keep = 0; keep < 2; keep++) {
    sige_ctx_set_winograd_keep_bytes(ctx, keep ? (size_t)64 << 20 : 0);
    sige_ctx_set_conv_policy(ctx, SIGE_CONV_POLICY_WINO4);
    const size_t before = sige_ctx_prepared_bytes(ctx);
    for (int round = 0; round < 3; round++) {
      ot_fill(w, &rng, -0.5f, 0.5f);
      assert_true(sige_conv2d(ctx, x, w, NULL, &p, out, NULL));
      if (keep) assert_non_null(w->derived);
      sige_ctx_set_conv_policy(ctx, SIGE_CONV_POLICY_IM2COL);
      assert_true(sige_conv2d(ctx, x, w, NULL, &p, ref, NULL));
      sige_ctx_set_conv_policy(ctx, SIGE_CONV_POLICY_WINO4);
      for (size_t i = 0; i < out->numel; i++)
        assert_true(fabsf(out->data[i] - ref->data[i]) < 1e-4f);
    }
    if (keep) {
      assert_true(sige_ctx_prepared_bytes(ctx) > before); /* 3 refills: made 3 times */
    } else {
      assert_null(w->derived);
      assert_int_equal(sige_ctx_prepared_bytes(ctx) - before, 0);
    }
  }
  sige_ctx_set_winograd_keep_bytes(ctx, limit);
  sige_ctx_set_conv_policy(ctx, SIGE_CONV_POLICY_AUTO);
  sige_tensor_free(ref);
  sige_tensor_free(out);
  sige_tensor_free(w);
  sige_tensor_free(x);
}

/* Output channels in several bands (at most 128 rows each) with a partial
 * last one, and input channels that do not fill the transform's 8 lanes:
 * every band's rows and every lane must land in their own place. */
static void test_conv2d_winograd_bands(void **state) {
  const conv_case cases[] = {
      {"wino bands 37->150 map", 2, 37, 13, 11, 150, 3, 3, P(1, 1, 1, 1, 1, 1, 1), TRUE, NCHW},
      {"wino bands 131->133 blocks", 20, 131, 6, 6, 133, 3, 3, P(1, 1, 0, 0, 0, 0, 1), TRUE,
       CNHW},
  };
  /* both where the transformed weights come from: kept (one GEMM per
   * product over all of Cout) and made per call (a band at a time) */
  const size_t limit = sige_ctx_winograd_keep_bytes(*state);
  for (int keep = 0; keep < 2; keep++) {
    sige_ctx_set_winograd_keep_bytes(*state, keep ? limit : 0);
    for (int pol = 0; pol < 2; pol++) {
      sige_ctx_set_conv_policy(*state, pol ? SIGE_CONV_POLICY_WINO2 : SIGE_CONV_POLICY_WINO4);
      for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
        run_case_as(*state, &cases[i], 40 + i, pol ? WINO2_TOL : WINO4_TOL,
                    pol ? SIGE_CONV_WINO2 : SIGE_CONV_WINO4);
    }
  }
  sige_ctx_set_winograd_keep_bytes(*state, limit);
  sige_ctx_set_conv_policy(*state, SIGE_CONV_POLICY_AUTO);
}

/* The measured rule: Winograd for wide stride-1 3x3 layers, im2col for
 * few channels, stride 2, and a 1x1 stays a plain GEMM. */
static void test_conv2d_rule(void **state) {
  const conv_case wide = {"rule wide", 1, 128, 16, 16, 128, 3, 3, P(1, 1, 1, 1, 1, 1, 1), TRUE,
                          NCHW};
  const conv_case narrow = {"rule narrow", 1, 64, 16, 16, 128, 3, 3, P(1, 1, 1, 1, 1, 1, 1), TRUE,
                            NCHW};
  const conv_case blocks = {"rule blocks", 16, 128, 6, 6, 128, 3, 3, P(1, 1, 0, 0, 0, 0, 1), TRUE,
                            CNHW};
  const conv_case few = {"rule few blocks", 3, 128, 6, 6, 128, 3, 3, P(1, 1, 0, 0, 0, 0, 1), TRUE,
                         CNHW};
  const conv_case s2 = {"rule stride 2", 1, 64, 16, 16, 64, 3, 3, P(2, 2, 1, 1, 1, 1, 1), TRUE,
                        NCHW};
  const conv_case one = {"rule 1x1", 1, 64, 16, 16, 64, 1, 1, P(1, 1, 0, 0, 0, 0, 1), TRUE, NCHW};
  run_case_as(*state, &wide, 1, WINO4_TOL, SIGE_CONV_WINO4);
  run_case_as(*state, &narrow, 2, 1.0, SIGE_CONV_IM2COL);
  run_case_as(*state, &blocks, 5, WINO4_TOL, SIGE_CONV_WINO4);
  run_case_as(*state, &few, 6, 1.0, SIGE_CONV_IM2COL);
  run_case_as(*state, &s2, 3, 1.0, SIGE_CONV_IM2COL);
  run_case_as(*state, &one, 4, 1.0, SIGE_CONV_1X1);
  sige_ctx_set_conv_policy(*state, SIGE_CONV_POLICY_IM2COL);
  run_case_as(*state, &wide, 1, 1.0, SIGE_CONV_IM2COL);
  sige_ctx_set_conv_policy(*state, SIGE_CONV_POLICY_AUTO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv2d_small),
      cmocka_unit_test(test_conv2d_tiled),
      cmocka_unit_test(test_conv2d_mac_count),
      cmocka_unit_test(test_conv2d_shape_errors),
      cmocka_unit_test(test_conv2d_winograd4),
      cmocka_unit_test(test_conv2d_winograd2),
      cmocka_unit_test(test_conv2d_winograd_chunks),
      cmocka_unit_test(test_conv2d_winograd_weights_kept_within_limit),
      cmocka_unit_test(test_conv2d_winograd_bands),
      cmocka_unit_test(test_conv2d_rule),
  };
  return cmocka_run_group_tests_name("ops_conv2d", tests, ot_setup_ctx, ot_teardown_ctx);
}
