/* Activations, element-wise ops, resampling, linear and the timestep embedding. */
#include <float.h>
#include <string.h>

#include "ops_test_util.h"

static void test_act_apply(void **state) {
  (void)state;
  for (int i = 0; i <= 400; i++) {
    const float v = -100.0f + 0.5f * (float)i;
    const double d = v;
    /* expf/tanhf and one division: a few ulps, 8 allowed. */
    const double rt = 4 * FLT_EPSILON;
    const double sig = 1.0 / (1.0 + exp(-d));
    const double ref[] = {d, d > 0 ? d : 0, d > 0 ? d : 0.2 * d, d * sig, tanh(d), sig,
                          /* torch forms 1.702 * x as a float product first;
                           * its rounding, amplified by exp, is not ours to judge */
                          d / (1.0 + exp(-(double)(1.702f * v)))};
    const sige_act acts[] = {SIGE_ACT_NONE, SIGE_ACT_RELU, SIGE_ACT_LEAKY_RELU,
                             SIGE_ACT_SWISH, SIGE_ACT_TANH, SIGE_ACT_SIGMOID,
                             SIGE_ACT_QUICK_GELU};
    for (int a = 0; a < 7; a++) {
      const float got = sige_act_apply(acts[a], v);
      /* expf(-v) overflows for v < -88.7, so swish gives -0 where the exact
       * value is ~1e-37 (torch's float kernel does the same): absolute 1e-35. */
      if (!(fabs(got - ref[a]) <= rt * fabs(ref[a]) + 1e-35)) {
        print_error("act %d at %g: %.9g vs %.9g\n", a, (double)v, (double)got, ref[a]);
        fail();
      }
    }
  }
  assert_true(sige_act_apply(SIGE_ACT_SWISH, -200.0f) == 0.0f);
  assert_true(sige_act_apply(SIGE_ACT_SIGMOID, 200.0f) == 1.0f);
}

static void test_activation_tensor(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 61;
  /* more than one 16k-float chunk, and not a multiple of it */
  sige_tensor *x = ot_new4(2, 5, 61, 67, 0), *out = ot_new4(2, 5, 61, 67, 0);
  ot_fill(x, &rng, -6.0f, 6.0f);
  const sige_act acts[] = {SIGE_ACT_RELU, SIGE_ACT_LEAKY_RELU, SIGE_ACT_SWISH, SIGE_ACT_TANH,
                           SIGE_ACT_SIGMOID, SIGE_ACT_QUICK_GELU, SIGE_ACT_NONE};
  for (size_t a = 0; a < G_N_ELEMENTS(acts); a++) {
    sige_activation(ctx, x, acts[a], out);
    for (size_t i = 0; i < x->numel; i++) {
      /* the tensor path must agree exactly with the scalar definition */
      if (out->data[i] != sige_act_apply(acts[a], x->data[i])) {
        print_error("activation %d element %zu\n", acts[a], i);
        fail();
      }
    }
  }
  sige_tensor *y = sige_tensor_dup(x, NULL);
  sige_activation(ctx, y, SIGE_ACT_SWISH, y);
  for (size_t i = 0; i < x->numel; i++)
    assert_true(y->data[i] == sige_act_apply(SIGE_ACT_SWISH, x->data[i]));
  sige_tensor_free(y);
  sige_tensor_free(out);
  sige_tensor_free(x);
}

static void test_add(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 71;
  sige_tensor *a = ot_new4(3, 5, 37, 41, 1), *b = ot_new4(3, 5, 37, 41, 1);
  sige_tensor *out = ot_new4(3, 5, 37, 41, 1);
  ot_fill(a, &rng, -1.0f, 1.0f);
  ot_fill(b, &rng, -1.0f, 1.0f);
  sige_add(ctx, a, b, out);
  /* float addition is correctly rounded: exact match */
  for (size_t i = 0; i < a->numel; i++) assert_true(out->data[i] == a->data[i] + b->data[i]);
  sige_add(ctx, a, b, a);
  assert_memory_equal(a->data, out->data, a->numel * sizeof(float));
  sige_tensor_free(out);
  sige_tensor_free(b);
  sige_tensor_free(a);
}

static void test_concat(void **state) {
  sige_ctx *ctx = *state;
  for (int layout = 0; layout < 2; layout++) {
    const int n = layout ? 3 : 2;
    uint64_t rng = 81;
    sige_tensor *a = ot_new4(n, 3, 4, 5, layout), *b = ot_new4(n, 5, 4, 5, layout);
    sige_tensor *out = ot_new4(n, 8, 4, 5, layout);
    ot_fill(a, &rng, -1.0f, 1.0f);
    ot_fill(b, &rng, -1.0f, 1.0f);
    sige_concat_channels(ctx, a, b, out);
    for (int i = 0; i < n; i++)
      for (int c = 0; c < 8; c++)
        for (int h = 0; h < 4; h++)
          for (int w = 0; w < 5; w++) {
            const float e = c < 3 ? ot_at(a, i, c, h, w) : ot_at(b, i, c - 3, h, w);
            assert_true(ot_at(out, i, c, h, w) == e);
          }
    sige_tensor_free(out);
    sige_tensor_free(b);
    sige_tensor_free(a);
  }
}

typedef struct {
  int h, w, ho, wo;
  sige_layout layout;
} resize_case;

static const resize_case resize_cases[] = {
    {8, 6, 16, 12, SIGE_LAYOUT_NCHW}, {7, 5, 16, 9, SIGE_LAYOUT_NCHW},
    {16, 9, 5, 3, SIGE_LAYOUT_NCHW},  {7, 5, 16, 9, SIGE_LAYOUT_CNHW},
    {5, 7, 5, 7, SIGE_LAYOUT_NCHW},   {1, 3, 4, 1, SIGE_LAYOUT_NCHW},
};

/* torch's legacy nearest index, as specified (scale rounded to float). */
static int nearest_ref(int dst, int in, int out) {
  const float scale = (float)in / (float)out;
  const int s = (int)floorf((float)dst * scale);
  return s < in - 1 ? s : in - 1;
}

static void test_resize_nearest(void **state) {
  sige_ctx *ctx = *state;
  for (size_t k = 0; k < G_N_ELEMENTS(resize_cases); k++) {
    const resize_case *rc = &resize_cases[k];
    const int n = rc->layout ? 3 : 2;
    uint64_t rng = 91 + k;
    sige_tensor *x = ot_new4(n, 5, rc->h, rc->w, rc->layout);
    sige_tensor *out = ot_new4(n, 5, rc->ho, rc->wo, rc->layout);
    ot_fill(x, &rng, -1.0f, 1.0f);
    sige_resize_nearest(ctx, x, out);
    for (int i = 0; i < n; i++)
      for (int c = 0; c < 5; c++)
        for (int h = 0; h < rc->ho; h++)
          for (int w = 0; w < rc->wo; w++)
            assert_true(ot_at(out, i, c, h, w) == ot_at(x, i, c, nearest_ref(h, rc->h, rc->ho),
                                                           nearest_ref(w, rc->w, rc->wo)));
    sige_tensor_free(out);
    sige_tensor_free(x);
  }
  /* x2 upsampling repeats each pixel: a fixed point independent of the rule. */
  sige_tensor *x = ot_new4(1, 1, 2, 2, 0), *out = ot_new4(1, 1, 4, 4, 0);
  for (int i = 0; i < 4; i++) x->data[i] = (float)i;
  sige_resize_nearest(ctx, x, out);
  const float expect[16] = {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3};
  assert_memory_equal(out->data, expect, sizeof expect);
  sige_tensor_free(out);
  sige_tensor_free(x);
}

/* align_corners=False source coordinate, computed independently in double. */
static void bilinear_ref_tap(int dst, int in, int out, int *i0, int *i1, double *l1) {
  double src = ((double)dst + 0.5) * ((double)in / out) - 0.5;
  if (src < 0) src = 0;
  *i0 = (int)floor(src);
  if (*i0 > in - 1) *i0 = in - 1;
  *i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
  *l1 = src - *i0;
}

static void test_resize_bilinear(void **state) {
  sige_ctx *ctx = *state;
  for (size_t k = 0; k < G_N_ELEMENTS(resize_cases); k++) {
    const resize_case *rc = &resize_cases[k];
    const int n = rc->layout ? 3 : 2;
    uint64_t rng = 191 + k;
    sige_tensor *x = ot_new4(n, 5, rc->h, rc->w, rc->layout);
    sige_tensor *out = ot_new4(n, 5, rc->ho, rc->wo, rc->layout);
    ot_fill(x, &rng, -1.0f, 1.0f);
    sige_resize_bilinear(ctx, x, out);
    double *ref = g_new(double, out->numel);
    for (int i = 0; i < n; i++)
      for (int c = 0; c < 5; c++)
        for (int h = 0; h < rc->ho; h++)
          for (int w = 0; w < rc->wo; w++) {
            int h0, h1, w0, w1;
            double lh, lw;
            bilinear_ref_tap(h, rc->h, rc->ho, &h0, &h1, &lh);
            bilinear_ref_tap(w, rc->w, rc->wo, &w0, &w1, &lw);
            ref[ot_idx(out, i, c, h, w)] =
                (1 - lh) * ((1 - lw) * ot_at(x, i, c, h0, w0) + lw * ot_at(x, i, c, h0, w1)) +
                lh * ((1 - lw) * ot_at(x, i, c, h1, w0) + lw * ot_at(x, i, c, h1, w1));
          }
    /* The op computes scale and source coordinate in float as torch does:
     * the weights are off by up to a few ulps of the coordinate (< 16 here),
     * i.e. ~4e-6, times input differences <= 2, plus float rounding. */
    ot_expect_close("resize_bilinear", out->data, ref, out->numel, 1e-5, 0.0);
    g_free(ref);
    sige_tensor_free(out);
    sige_tensor_free(x);
  }
}

static void test_avg_pool(void **state) {
  sige_ctx *ctx = *state;
  for (int layout = 0; layout < 2; layout++) {
    const int n = layout ? 3 : 2;
    uint64_t rng = 301;
    sige_tensor *x = ot_new4(n, 5, 6, 10, layout), *out = ot_new4(n, 5, 3, 5, layout);
    ot_fill(x, &rng, -1.0f, 1.0f);
    sige_avg_pool2x2(ctx, x, out);
    double *ref = g_new(double, out->numel);
    for (int i = 0; i < n; i++)
      for (int c = 0; c < 5; c++)
        for (int h = 0; h < 3; h++)
          for (int w = 0; w < 5; w++)
            ref[ot_idx(out, i, c, h, w)] =
                0.25 * ((double)ot_at(x, i, c, 2 * h, 2 * w) + ot_at(x, i, c, 2 * h, 2 * w + 1) +
                        ot_at(x, i, c, 2 * h + 1, 2 * w) + ot_at(x, i, c, 2 * h + 1, 2 * w + 1));
    /* three float additions of terms <= 1: a few ulps of 4 */
    ot_expect_close("avg_pool2x2", out->data, ref, out->numel, 8 * FLT_EPSILON, 0.0);
    g_free(ref);
    sige_tensor_free(out);
    sige_tensor_free(x);
  }
}

static void test_linear(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 401;
  const int N = 3, IN = 13, OUT = 5;
  sige_tensor *x = ot_new2(N, IN), *w = ot_new2(OUT, IN), *b = ot_new1(OUT);
  sige_tensor *out = ot_new2(N, OUT);
  ot_fill(x, &rng, -1.0f, 1.0f);
  ot_fill(w, &rng, -1.0f, 1.0f);
  ot_fill(b, &rng, -1.0f, 1.0f);
  for (int with_bias = 0; with_bias < 2; with_bias++) {
    sige_ctx_reset_macs(ctx);
    GError *err = NULL;
    assert_true(sige_linear(ctx, x, w, with_bias ? b : NULL, out, &err));
    assert_int_equal(sige_ctx_macs(ctx), (uint64_t)N * IN * OUT);
    double ref[15], tol[15];
    for (int i = 0; i < N; i++)
      for (int o = 0; o < OUT; o++) {
        double s = with_bias ? b->data[o] : 0, mag = fabs(s);
        for (int k = 0; k < IN; k++) {
          s += (double)x->data[i * IN + k] * w->data[o * IN + k];
          mag += fabs((double)x->data[i * IN + k] * w->data[o * IN + k]);
        }
        ref[i * OUT + o] = s;
        /* float sgemm vs double sum: 2 sqrt(K) eps times the sum of |terms| */
        tol[i * OUT + o] = 2 * sqrt(IN + 1.0) * FLT_EPSILON * mag;
      }
    ot_expect_within("linear", out->data, ref, tol, 15);
  }
  GError *err = NULL;
  sige_tensor *bad = ot_new2(N, OUT + 1);
  assert_false(sige_linear(ctx, x, w, b, bad, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  assert_non_null(strstr(err->message, "linear"));
  g_clear_error(&err);
  sige_tensor_free(bad);
  sige_tensor_free(out);
  sige_tensor_free(b);
  sige_tensor_free(w);
  sige_tensor_free(x);
}

static void test_timestep_embedding(void **state) {
  (void)state;
  const float t[4] = {0.0f, 1.0f, 17.5f, 999.0f};
  for (int dim = 32; dim <= 33; dim++) {
    sige_tensor *out = ot_new2(4, dim);
    for (size_t i = 0; i < out->numel; i++) out->data[i] = NAN;
    sige_timestep_embedding(t, 4, dim, out);
    const int half = dim / 2;
    for (int j = 0; j < 4; j++) {
      for (int i = 0; i < half; i++) {
        const double arg = t[j] * exp(-log(10000.0) * i / (half - 1));
        /* The argument is formed in float (as the float32 reference does):
         * a few ulps of |arg| (up to 1000) carry straight into sin/cos. */
        const double tol = 8 * FLT_EPSILON * (fabs(arg) + 1);
        assert_true(fabs(out->data[j * dim + i] - sin(arg)) <= tol);
        assert_true(fabs(out->data[j * dim + half + i] - cos(arg)) <= tol);
      }
      if (dim % 2) assert_true(out->data[j * dim + dim - 1] == 0.0f);
    }
    sige_tensor_free(out);
  }
}

/* sige_ctx_fit_threads: within [1, the count asked], unchanged for a
 * 1-thread context and over a window too short to measure; after a busy
 * 0.2 s of our own work alone, our time is not counted as others' (the
 * machine's other load may still lower it, so only the bounds are exact). */
static void test_fit_threads(void **state) {
  (void)state;
  g_autoptr(sige_ctx) one = sige_ctx_new(1);
  assert_int_equal(sige_ctx_fit_threads(one), 1);
  g_autoptr(sige_ctx) two = sige_ctx_new(2);
  assert_int_equal(sige_ctx_fit_threads(two), 2); /* made a moment ago: no window */
  const gint64 t0 = g_get_monotonic_time();
  volatile double x = 0;
  while (g_get_monotonic_time() - t0 < 200000) x += 1.0;
  const int t = sige_ctx_fit_threads(two);
  assert_true(t >= 1 && t <= 2);
  assert_int_equal(sige_ctx_threads(two), t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_act_apply),
      cmocka_unit_test(test_activation_tensor),
      cmocka_unit_test(test_add),
      cmocka_unit_test(test_concat),
      cmocka_unit_test(test_resize_nearest),
      cmocka_unit_test(test_resize_bilinear),
      cmocka_unit_test(test_avg_pool),
      cmocka_unit_test(test_linear),
      cmocka_unit_test(test_timestep_embedding),
      cmocka_unit_test(test_fit_threads),
  };
  return cmocka_run_group_tests_name("ops_misc", tests, ot_setup_ctx, ot_teardown_ctx);
}
