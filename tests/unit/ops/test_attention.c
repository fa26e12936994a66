/* The DDPM attention block against a double-precision reference. */
#include <float.h>
#include <string.h>

#include "ops_test_util.h"

typedef struct {
  sige_tensor *gamma, *beta, *w[4], *b[4]; /* q, k, v, proj */
  sige_attention_params p;
} attn_weights;

static void make_weights(attn_weights *aw, int c, int groups, uint64_t *rng) {
  aw->gamma = ot_new1(c);
  aw->beta = ot_new1(c);
  ot_fill(aw->gamma, rng, 0.5f, 1.5f);
  ot_fill(aw->beta, rng, -0.5f, 0.5f);
  /* weights ~ 1/sqrt(C) keep q.k/sqrt(C) at O(1): a peaked but not one-hot
   * softmax, so that errors in any stage show up in the output. */
  const float a = 1.7f / sqrtf((float)c);
  for (int i = 0; i < 4; i++) {
    aw->w[i] = ot_new4(c, c, 1, 1, SIGE_LAYOUT_NCHW);
    aw->b[i] = ot_new1(c);
    ot_fill(aw->w[i], rng, -a, a);
    ot_fill(aw->b[i], rng, -0.3f, 0.3f);
  }
  aw->p = (sige_attention_params){groups, 1e-6f, aw->gamma, aw->beta, aw->w[0], aw->b[0],
                                  aw->w[1], aw->b[1], aw->w[2], aw->b[2], aw->w[3], aw->b[3]};
}

static void free_weights(attn_weights *aw) {
  for (int i = 0; i < 4; i++) {
    sige_tensor_free(aw->w[i]);
    sige_tensor_free(aw->b[i]);
  }
  sige_tensor_free(aw->gamma);
  sige_tensor_free(aw->beta);
}

/* out[n] = x + proj(attend(q, k, v)) with h = x*scale + shift (per (n, c)). */
static void attention_ref(const sige_tensor *x, const attn_weights *aw, const double *scale,
                          const double *shift, double *ref) {
  const int N = SIGE_N(x), C = SIGE_C(x), W = SIGE_W(x), HW = SIGE_H(x) * W;
  double *h = g_new(double, (size_t)C * HW), *qkv = g_new(double, 3 * (size_t)C * HW);
  double *att = g_new(double, (size_t)C * HW), *wrow = g_new(double, HW);
  for (int n = 0; n < N; n++) {
    for (int c = 0; c < C; c++)
      for (int i = 0; i < HW; i++)
        h[c * HW + i] = ot_at(x, n, c, i / W, i % W) * scale[n * C + c] + shift[n * C + c];
    for (int m = 0; m < 3; m++)
      for (int o = 0; o < C; o++)
        for (int i = 0; i < HW; i++) {
          double s = aw->b[m]->data[o];
          for (int c = 0; c < C; c++) s += aw->w[m]->data[o * C + c] * h[c * HW + i];
          qkv[((size_t)m * C + o) * HW + i] = s;
        }
    const double *q = qkv, *k = qkv + (size_t)C * HW, *v = qkv + 2 * (size_t)C * HW;
    for (int i = 0; i < HW; i++) {
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j < HW; j++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += q[c * HW + i] * k[c * HW + j];
        wrow[j] = s / sqrt((double)C);
        if (wrow[j] > mx) mx = wrow[j];
      }
      for (int j = 0; j < HW; j++) sum += (wrow[j] = exp(wrow[j] - mx));
      for (int c = 0; c < C; c++) {
        double s = 0;
        for (int j = 0; j < HW; j++) s += v[c * HW + j] * wrow[j] / sum;
        att[c * HW + i] = s;
      }
    }
    for (int o = 0; o < C; o++)
      for (int i = 0; i < HW; i++) {
        double s = aw->b[3]->data[o] + ot_at(x, n, o, i / W, i % W);
        for (int c = 0; c < C; c++) s += aw->w[3]->data[o * C + c] * att[c * HW + i];
        ref[ot_idx(x, n, o, i / W, i % W)] = s;
      }
  }
  g_free(wrow);
  g_free(att);
  g_free(qkv);
  g_free(h);
}

static void gn_scale_shift(const sige_tensor *x, int groups, const attn_weights *aw,
                           double *scale, double *shift) {
  const int N = SIGE_N(x), C = SIGE_C(x), H = SIGE_H(x), W = SIGE_W(x), cg = C / groups;
  for (int n = 0; n < N; n++)
    for (int g = 0; g < groups; g++) {
      double s = 0, ss = 0, cnt = (double)cg * H * W;
      for (int c = g * cg; c < (g + 1) * cg; c++)
        for (int i = 0; i < H * W; i++) s += ot_at(x, n, c, i / W, i % W);
      const double mean = s / cnt;
      for (int c = g * cg; c < (g + 1) * cg; c++)
        for (int i = 0; i < H * W; i++) ss += pow(ot_at(x, n, c, i / W, i % W) - mean, 2);
      const double rstd = 1.0 / sqrt(ss / cnt + 1e-6);
      for (int c = g * cg; c < (g + 1) * cg; c++) {
        scale[n * C + c] = aw->gamma->data[c] * rstd;
        shift[n * C + c] = aw->beta->data[c] - mean * aw->gamma->data[c] * rstd;
      }
    }
}

/* Tolerance: five chained float32 GEMMs (K = C and K = H*W <= 64) and an expf
 * softmax, on values of order 1; each stage contributes ~sqrt(K) * 1e-7
 * relative error, about 1e-5 in all.  An indexing or transposition mistake
 * changes outputs by ~0.1, so absolute 1e-4 separates the two cleanly. */
#define ATTN_TOL 1e-4

static void run_attention(sige_ctx *ctx, int n, int c, int h, int w, int groups,
                          sige_layout layout, uint64_t seed) {
  uint64_t rng = seed;
  attn_weights aw;
  make_weights(&aw, c, groups, &rng);
  sige_tensor *x = ot_new4(n, c, h, w, layout), *out = ot_new4(n, c, h, w, layout);
  ot_fill(x, &rng, -2.0f, 2.0f);
  double *scale = g_new(double, (size_t)n * c), *shift = g_new(double, (size_t)n * c);
  double *ref = g_new(double, x->numel);

  gn_scale_shift(x, groups, &aw, scale, shift);
  attention_ref(x, &aw, scale, shift, ref);
  GError *err = NULL;
  sige_ctx_reset_macs(ctx);
  assert_true(sige_attention(ctx, x, &aw.p, out, &err));
  assert_null(err);
  const uint64_t hw = (uint64_t)h * w;
  assert_int_equal(sige_ctx_macs(ctx), (uint64_t)n * (4 * (uint64_t)c * c * hw + 2 * c * hw * hw));
  ot_expect_close("attention", out->data, ref, out->numel, ATTN_TOL, 0.0);

  /* Frozen statistics: per-channel scale/shift shared by every sample. */
  float fs[64], fb[64];
  double ds[3 * 64], db[3 * 64];
  g_assert(c <= 64 && n <= 3);
  for (int ch = 0; ch < c; ch++) {
    fs[ch] = ot_uniform(&rng, 0.2f, 1.2f);
    fb[ch] = ot_uniform(&rng, -0.5f, 0.5f);
    for (int i = 0; i < n; i++) {
      ds[i * c + ch] = fs[ch];
      db[i * c + ch] = fb[ch];
    }
  }
  attention_ref(x, &aw, ds, db, ref);
  assert_true(sige_attention_frozen(ctx, x, &aw.p, fs, fb, out, &err));
  assert_null(err);
  ot_expect_close("attention_frozen", out->data, ref, out->numel, ATTN_TOL, 0.0);

  g_free(ref);
  g_free(shift);
  g_free(scale);
  sige_tensor_free(out);
  sige_tensor_free(x);
  free_weights(&aw);
}

static void test_attention_c32(void **state) {
  run_attention(*state, 2, 32, 8, 8, 32, SIGE_LAYOUT_NCHW, 501);
}

static void test_attention_odd(void **state) {
  run_attention(*state, 1, 12, 5, 7, 4, SIGE_LAYOUT_NCHW, 502);
  run_attention(*state, 3, 10, 3, 6, 2, SIGE_LAYOUT_CNHW, 503);
}

static void test_attention_errors(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 504;
  attn_weights aw;
  make_weights(&aw, 8, 4, &rng);
  sige_tensor *x = ot_new4(1, 8, 4, 4, 0), *out = ot_new4(1, 8, 4, 5, 0);
  GError *err = NULL;
  assert_false(sige_attention(ctx, x, &aw.p, out, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  assert_non_null(strstr(err->message, "attention"));
  g_clear_error(&err);
  sige_tensor *x6 = ot_new4(1, 6, 4, 5, 0); /* weights are for C = 8 */
  sige_tensor *o6 = ot_new4(1, 6, 4, 5, 0);
  assert_false(sige_attention(ctx, x6, &aw.p, o6, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  g_clear_error(&err);
  sige_tensor_free(o6);
  sige_tensor_free(x6);
  sige_tensor_free(out);
  sige_tensor_free(x);
  free_weights(&aw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_attention_c32),
      cmocka_unit_test(test_attention_odd),
      cmocka_unit_test(test_attention_errors),
  };
  return cmocka_run_group_tests_name("ops_attention", tests, ot_setup_ctx, ot_teardown_ctx);
}
