/* Normalisation ops against double-precision two-pass references. */
#include <float.h>

#include "ops_test_util.h"

static double act_ref(sige_act act, double v) {
  switch (act) {
    case SIGE_ACT_NONE: return v;
    case SIGE_ACT_RELU: return v > 0 ? v : 0;
    case SIGE_ACT_LEAKY_RELU: return v > 0 ? v : 0.2 * v;
    case SIGE_ACT_SWISH: return v / (1.0 + exp(-v));
    case SIGE_ACT_TANH: return tanh(v);
    case SIGE_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case SIGE_ACT_QUICK_GELU: return v / (1.0 + exp(-1.702 * v));
  }
  return v;
}

/* Double-precision GroupNorm folded into per-(n, c) scale/shift. */
static void gn_ref(const sige_tensor *x, int groups, double eps, const sige_tensor *gamma,
                   const sige_tensor *beta, double *scale, double *shift) {
  const int N = SIGE_N(x), C = SIGE_C(x), H = SIGE_H(x), W = SIGE_W(x), cg = C / groups;
  for (int n = 0; n < N; n++)
    for (int g = 0; g < groups; g++) {
      double s = 0, ss = 0, cnt = (double)cg * H * W;
      for (int c = g * cg; c < (g + 1) * cg; c++)
        for (int h = 0; h < H; h++)
          for (int w = 0; w < W; w++) s += ot_at(x, n, c, h, w);
      const double mean = s / cnt;
      for (int c = g * cg; c < (g + 1) * cg; c++)
        for (int h = 0; h < H; h++)
          for (int w = 0; w < W; w++) ss += pow(ot_at(x, n, c, h, w) - mean, 2);
      const double rstd = 1.0 / sqrt(ss / cnt + eps);
      for (int c = g * cg; c < (g + 1) * cg; c++) {
        const double gm = gamma ? gamma->data[c] : 1.0, bt = beta ? beta->data[c] : 0.0;
        scale[n * C + c] = gm * rstd;
        shift[n * C + c] = bt - mean * gm * rstd;
      }
    }
}

/* Checks out = act(x * scale + shift) element-wise.  Tolerance: the op does
 * one float multiply-add with scale/shift rounded to float, so its error is a
 * few ulps of |x*scale| + |shift| (8 ulps allowed), plus the activation's own
 * float error (expf/tanhf, a few ulps of the result); act slopes are <= 1.1. */
static void expect_affine(const char *what, const sige_tensor *x, const sige_tensor *out,
                          const double *scale, const double *shift, gboolean per_sample,
                          sige_act act) {
  double *ref = g_new(double, out->numel), *tol = g_new(double, out->numel);
  const int C = SIGE_C(x);
  for (int n = 0; n < SIGE_N(x); n++)
    for (int c = 0; c < C; c++)
      for (int h = 0; h < SIGE_H(x); h++)
        for (int w = 0; w < SIGE_W(x); w++) {
          const int k = per_sample ? n * C + c : c;
          const double xv = ot_at(x, n, c, h, w), lin = xv * scale[k] + shift[k];
          const size_t i = ot_idx(out, n, c, h, w);
          ref[i] = act_ref(act, lin);
          tol[i] = 1.1 * 4 * FLT_EPSILON * (fabs(xv * scale[k]) + fabs(shift[k])) +
                   4 * FLT_EPSILON * fabs(ref[i]) + 1e-30;
        }
  ot_expect_within(what, out->data, ref, tol, out->numel);
  g_free(ref);
  g_free(tol);
}

static void test_group_norm_affine_precision(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 11;
  /* A mean of 1000 with a spread of 0.3: float accumulation or the one-pass
   * E[x^2] - mean^2 formula in float would lose most digits here. */
  sige_tensor *x = ot_new4(2, 13, 5, 7, SIGE_LAYOUT_NCHW);
  ot_fill(x, &rng, 1000.0f, 1001.0f);
  sige_tensor *gamma = ot_new1(13), *beta = ot_new1(13);
  ot_fill(gamma, &rng, 0.5f, 1.5f);
  ot_fill(beta, &rng, -1.0f, 1.0f);
  float scale[26], shift[26];
  double rs[26], rb[26];
  sige_group_norm_affine(ctx, x, 13, 1e-5f, gamma, beta, scale, shift);
  gn_ref(x, 13, 1e-5f, gamma, beta, rs, rb);
  /* Only the final rounding to float remains: 0.5 ulp, checked at 2 ulps. */
  ot_expect_close("gn scale", scale, rs, 26, 0.0, 2 * FLT_EPSILON);
  ot_expect_close("gn shift", shift, rb, 26, 0.0, 2 * FLT_EPSILON);
  sige_tensor_free(beta);
  sige_tensor_free(gamma);
  sige_tensor_free(x);
}

static void run_group_norm(sige_ctx *ctx, int n, int c, int h, int w, int groups,
                           gboolean affine, sige_layout layout, uint64_t seed) {
  uint64_t rng = seed;
  sige_tensor *x = ot_new4(n, c, h, w, layout), *out = ot_new4(n, c, h, w, layout);
  ot_fill(x, &rng, -2.0f, 3.0f);
  sige_tensor *gamma = NULL, *beta = NULL;
  if (affine) {
    gamma = ot_new1(c);
    beta = ot_new1(c);
    ot_fill(gamma, &rng, 0.5f, 1.5f);
    ot_fill(beta, &rng, -1.0f, 1.0f);
  }
  double *rs = g_new(double, (size_t)n * c), *rb = g_new(double, (size_t)n * c);
  gn_ref(x, groups, 1e-6, gamma, beta, rs, rb);
  sige_group_norm(ctx, x, groups, 1e-6f, gamma, beta, out);
  expect_affine("group_norm", x, out, rs, rb, TRUE, SIGE_ACT_NONE);
  if (!affine) {
    /* instance_norm is GroupNorm with one channel per group. */
    gn_ref(x, c, 1e-6, NULL, NULL, rs, rb);
    sige_instance_norm(ctx, x, 1e-6f, out);
    expect_affine("instance_norm", x, out, rs, rb, TRUE, SIGE_ACT_NONE);
  }
  g_free(rs);
  g_free(rb);
  sige_tensor_free(beta);
  sige_tensor_free(gamma);
  sige_tensor_free(out);
  sige_tensor_free(x);
}

static void test_group_norm(void **state) {
  run_group_norm(*state, 2, 6, 5, 7, 3, TRUE, SIGE_LAYOUT_NCHW, 21);
  run_group_norm(*state, 2, 13, 3, 9, 13, TRUE, SIGE_LAYOUT_NCHW, 22);
  run_group_norm(*state, 3, 10, 4, 5, 2, TRUE, SIGE_LAYOUT_CNHW, 23);
  run_group_norm(*state, 2, 5, 7, 3, 1, FALSE, SIGE_LAYOUT_NCHW, 24);
  run_group_norm(*state, 3, 5, 6, 4, 5, FALSE, SIGE_LAYOUT_CNHW, 25);
}

static void test_channel_affine_acts(void **state) {
  sige_ctx *ctx = *state;
  const sige_act acts[] = {SIGE_ACT_NONE, SIGE_ACT_RELU, SIGE_ACT_LEAKY_RELU,
                           SIGE_ACT_SWISH, SIGE_ACT_TANH, SIGE_ACT_SIGMOID};
  for (int layout = 0; layout < 2; layout++) {
    const int n = layout ? 3 : 2;
    uint64_t rng = 31 + layout;
    sige_tensor *x = ot_new4(n, 5, 3, 7, (sige_layout)layout);
    sige_tensor *out = ot_new4(n, 5, 3, 7, (sige_layout)layout);
    ot_fill(x, &rng, -4.0f, 4.0f);
    float s[15], b[15];
    double ds[15], db[15];
    for (int i = 0; i < 15; i++) {
      s[i] = ot_uniform(&rng, -2.0f, 2.0f);
      b[i] = ot_uniform(&rng, -1.0f, 1.0f);
      ds[i] = s[i];
      db[i] = b[i];
    }
    for (size_t a = 0; a < G_N_ELEMENTS(acts); a++) {
      sige_channel_affine(ctx, x, s, b, TRUE, acts[a], out);
      expect_affine("channel_affine per-sample", x, out, ds, db, TRUE, acts[a]);
      sige_channel_affine(ctx, x, s, b, FALSE, acts[a], out);
      expect_affine("channel_affine per-channel", x, out, ds, db, FALSE, acts[a]);
    }
    /* In place, as element-wise ops allow. */
    sige_tensor *y = sige_tensor_dup(x, NULL);
    sige_channel_affine(ctx, y, s, b, TRUE, SIGE_ACT_SWISH, y);
    expect_affine("channel_affine in place", x, y, ds, db, TRUE, SIGE_ACT_SWISH);
    sige_tensor_free(y);
    sige_tensor_free(out);
    sige_tensor_free(x);
  }
}

static void test_batch_norm(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 41;
  sige_tensor *x = ot_new4(2, 13, 4, 3, SIGE_LAYOUT_NCHW), *out = ot_new4(2, 13, 4, 3, 0);
  sige_tensor *mean = ot_new1(13), *var = ot_new1(13), *gamma = ot_new1(13), *beta = ot_new1(13);
  ot_fill(x, &rng, -3.0f, 3.0f);
  ot_fill(mean, &rng, -1.0f, 1.0f);
  ot_fill(var, &rng, 0.1f, 4.0f);
  ot_fill(gamma, &rng, 0.5f, 1.5f);
  ot_fill(beta, &rng, -1.0f, 1.0f);
  double s[13], b[13];
  for (int with_affine = 0; with_affine < 2; with_affine++) {
    for (int c = 0; c < 13; c++) {
      const double gm = with_affine ? gamma->data[c] : 1.0, bt = with_affine ? beta->data[c] : 0;
      s[c] = gm / sqrt((double)var->data[c] + 1e-5f);
      b[c] = bt - mean->data[c] * s[c];
    }
    sige_batch_norm(ctx, x, mean, var, with_affine ? gamma : NULL, with_affine ? beta : NULL,
                    1e-5f, out);
    expect_affine("batch_norm", x, out, s, b, FALSE, SIGE_ACT_NONE);
  }
  sige_tensor_free(beta);
  sige_tensor_free(gamma);
  sige_tensor_free(var);
  sige_tensor_free(mean);
  sige_tensor_free(out);
  sige_tensor_free(x);
}

static void test_spade_modulate(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 51;
  sige_tensor *x = ot_new4(2, 5, 3, 7, 0), *g = ot_new4(2, 5, 3, 7, 0);
  sige_tensor *b = ot_new4(2, 5, 3, 7, 0), *out = ot_new4(2, 5, 3, 7, 0);
  ot_fill(x, &rng, -2.0f, 2.0f);
  ot_fill(g, &rng, -1.0f, 1.0f);
  ot_fill(b, &rng, -1.0f, 1.0f);
  double *ref = g_new(double, x->numel), *tol = g_new(double, x->numel);
  for (size_t i = 0; i < x->numel; i++) {
    ref[i] = (double)x->data[i] * (1.0 + g->data[i]) + b->data[i];
    /* three float roundings (1+g, the product, the sum): 2 ulps each allowed */
    tol[i] = 2 * FLT_EPSILON * (2 * fabs(x->data[i] * (1.0 + g->data[i])) + fabs(ref[i]));
  }
  sige_spade_modulate(ctx, x, g, b, out);
  ot_expect_within("spade_modulate", out->data, ref, tol, x->numel);
  sige_spade_modulate(ctx, x, g, b, x); /* in place */
  ot_expect_within("spade_modulate in place", x->data, ref, tol, x->numel);
  g_free(ref);
  g_free(tol);
  sige_tensor_free(out);
  sige_tensor_free(b);
  sige_tensor_free(g);
  sige_tensor_free(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_group_norm_affine_precision),
      cmocka_unit_test(test_group_norm),
      cmocka_unit_test(test_channel_affine_acts),
      cmocka_unit_test(test_batch_norm),
      cmocka_unit_test(test_spade_modulate),
  };
  return cmocka_run_group_tests_name("ops_norm", tests, ot_setup_ctx, ot_teardown_ctx);
}
