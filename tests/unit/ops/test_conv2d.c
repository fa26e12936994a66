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

static void run_case(sige_ctx *ctx, const conv_case *cc, uint64_t seed) {
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

  double *ref = g_new(double, out->numel), *tol = g_new(double, out->numel);
  conv_reference(x, wt, b, &cc->p, out, ref, tol);
  ot_expect_within(cc->name, out->data, ref, tol, out->numel);
  g_free(ref);
  g_free(tol);
  sige_tensor_free(out);
  sige_tensor_free(b);
  sige_tensor_free(wt);
  sige_tensor_free(x);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv2d_small),
      cmocka_unit_test(test_conv2d_tiled),
      cmocka_unit_test(test_conv2d_mac_count),
      cmocka_unit_test(test_conv2d_shape_errors),
  };
  return cmocka_run_group_tests_name("ops_conv2d", tests, ot_setup_ctx, ot_teardown_ctx);
}
