/* The token-sequence ops (LayerNorm, token embedding, attention over
 * tokens) against naive double-precision loops. */
#include <float.h>
#include <string.h>

#include "ops_test_util.h"

/* float32 inputs, float accumulations over <= 64 terms with values O(1):
 * well within 1e-5 relative of the double references */
#define TOL 2e-5

static void expect_close(const sige_tensor *got, const double *want, const char *what) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got->numel; i++) {
    const double d = fabs(got->data[i] - want[i]) / fmax(1.0, fabs(want[i]));
    if (!(d <= worst)) worst = isnan(d) ? INFINITY : d, at = i;
  }
  if (!(worst <= TOL))
    fail_msg("%s: relative error %.3g at %zu (got %g, want %g)", what, worst, at,
             (double)got->data[at], want[at]);
}

static void test_layer_norm(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 7;
  const int rows = 9, c = 37;
  g_autoptr(sige_tensor) x = ot_new2(rows, c), out = ot_new2(rows, c);
  g_autoptr(sige_tensor) g = ot_new1(c), b = ot_new1(c);
  ot_fill(x, &rng, -3.0f, 5.0f);
  for (int j = 0; j < c; j++) x->data[2 * c + j] += 1000.0f; /* a large mean */
  ot_fill(g, &rng, 0.5f, 1.5f);
  ot_fill(b, &rng, -1.0f, 1.0f);
  g_autofree double *want = g_new(double, (size_t)rows * c);
  for (int with_affine = 0; with_affine < 2; with_affine++) {
    for (int r = 0; r < rows; r++) {
      double m = 0, v = 0;
      for (int j = 0; j < c; j++) m += x->data[r * c + j];
      m /= c;
      for (int j = 0; j < c; j++) v += (x->data[r * c + j] - m) * (x->data[r * c + j] - m);
      v /= c;
      for (int j = 0; j < c; j++) {
        const double y = (x->data[r * c + j] - m) / sqrt(v + 1e-5);
        want[r * c + j] = with_affine ? y * g->data[j] + b->data[j] : y;
      }
    }
    sige_layer_norm(ctx, x, with_affine ? g : NULL, with_affine ? b : NULL, 1e-5f, out);
    expect_close(out, want, with_affine ? "layer_norm affine" : "layer_norm");
  }
  /* in place */
  g_autoptr(sige_tensor) y = sige_tensor_dup(x, NULL);
  sige_layer_norm(ctx, y, g, b, 1e-5f, y);
  expect_close(y, want, "layer_norm in place");
}

static void test_token_embedding(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 11;
  const int vocab = 13, c = 6, n = 2, tokens = 5;
  g_autoptr(sige_tensor) table = ot_new2(vocab, c), pos = ot_new2(tokens + 2, c);
  g_autoptr(sige_tensor) out = ot_new2(n * tokens, c);
  ot_fill(table, &rng, -1, 1);
  ot_fill(pos, &rng, -1, 1);
  const int32_t ids[] = {0, 12, 3, 3, 7, 5, 1, 12, 0, 2};
  GError *error = NULL;
  assert_true(sige_token_embedding(ctx, table, ids, n, tokens, pos, out, &error));
  for (int r = 0; r < n * tokens; r++)
    for (int j = 0; j < c; j++)
      assert_true(out->data[r * c + j] ==
                  table->data[ids[r] * c + j] + pos->data[(r % tokens) * c + j]);
  assert_true(sige_token_embedding(ctx, table, ids, n, tokens, NULL, out, &error));
  for (int r = 0; r < n * tokens; r++)
    assert_memory_equal(out->data + r * c, table->data + ids[r] * c, c * sizeof(float));
  /* an id outside the table is refused by position, nothing read */
  const int32_t bad[] = {0, 1, 2, 3, 4, 5, 6, 13, 0, 0};
  assert_false(sige_token_embedding(ctx, table, bad, n, tokens, pos, out, &error));
  assert_non_null(strstr(error->message, "token 2 of sample 1 is id 13"));
  g_clear_error(&error);
  const int32_t neg[] = {-1, 1, 2, 3, 4, 5, 6, 7, 0, 0};
  assert_false(sige_token_embedding(ctx, table, neg, n, tokens, pos, out, &error));
  g_clear_error(&error);
  /* a position table shorter than the sequence */
  g_autoptr(sige_tensor) short_pos = ot_new2(tokens - 1, c);
  assert_false(sige_token_embedding(ctx, table, ids, n, tokens, short_pos, out, &error));
  assert_int_equal(error->code, SIGE_ERROR_SHAPE);
  g_clear_error(&error);
}

static void naive_attention(const sige_tensor *q, const sige_tensor *k, const sige_tensor *v,
                            int n, int heads, gboolean causal, double *out) {
  const int width = (int)q->shape[1], d = width / heads;
  const int tq = (int)q->shape[0] / n, tk = (int)k->shape[0] / n;
  g_autofree double *s = g_new(double, tk);
  for (int b = 0; b < n; b++)
    for (int h = 0; h < heads; h++)
      for (int i = 0; i < tq; i++) {
        const float *qi = q->data + (size_t)(b * tq + i) * width + h * d;
        const int last = causal ? i : tk - 1;
        double m = -INFINITY, sum = 0;
        for (int j = 0; j <= last; j++) {
          const float *kj = k->data + (size_t)(b * tk + j) * width + h * d;
          double dot = 0;
          for (int e = 0; e < d; e++) dot += (double)qi[e] * kj[e];
          s[j] = dot / sqrt((double)d);
          m = fmax(m, s[j]);
        }
        for (int j = 0; j <= last; j++) sum += s[j] = exp(s[j] - m);
        for (int e = 0; e < d; e++) {
          double acc = 0;
          for (int j = 0; j <= last; j++)
            acc += s[j] / sum * v->data[(size_t)(b * tk + j) * width + h * d + e];
          out[(size_t)(b * tq + i) * width + h * d + e] = acc;
        }
      }
}

static void check_attention(sige_ctx *ctx, int n, int heads, int d, int tq, int tk,
                            gboolean causal, uint64_t seed) {
  uint64_t rng = seed;
  const int width = heads * d;
  g_autoptr(sige_tensor) q = ot_new2(n * tq, width), k = ot_new2(n * tk, width),
                         v = ot_new2(n * tk, width), out = ot_new2(n * tq, width);
  ot_fill(q, &rng, -2, 2);
  ot_fill(k, &rng, -2, 2);
  ot_fill(v, &rng, -1, 1);
  g_autofree double *want = g_new(double, out->numel);
  naive_attention(q, k, v, n, heads, causal, want);
  GError *error = NULL;
  if (!sige_token_attention(ctx, q, k, v, n, heads, causal, out, &error))
    fail_msg("token_attention: %s", error->message);
  expect_close(out, want, causal ? "causal attention" : "attention");
}

static void test_token_attention(void **state) {
  sige_ctx *ctx = *state;
  check_attention(ctx, 2, 3, 5, 7, 7, TRUE, 21);
  check_attention(ctx, 2, 3, 5, 7, 7, FALSE, 22);
  check_attention(ctx, 3, 2, 16, 4, 9, FALSE, 23); /* cross attention: tq != tk */
  check_attention(ctx, 1, 1, 4, 1, 1, TRUE, 24);   /* one token attends to itself */
  /* with a causal mask the first query sees only the first key: its output
   * is that key's value exactly */
  uint64_t rng = 25;
  g_autoptr(sige_tensor) q = ot_new2(4, 8), k = ot_new2(4, 8), v = ot_new2(4, 8),
                         out = ot_new2(4, 8);
  ot_fill(q, &rng, -1, 1);
  ot_fill(k, &rng, -1, 1);
  ot_fill(v, &rng, -1, 1);
  assert_true(sige_token_attention(ctx, q, k, v, 1, 2, TRUE, out, NULL));
  for (int e = 0; e < 8; e++) assert_float_equal(out->data[e], v->data[e], 1e-6);
  /* refused: causal with tq != tk, width not a multiple of heads */
  g_autoptr(sige_tensor) k6 = ot_new2(6, 8), v6 = ot_new2(6, 8);
  GError *error = NULL;
  assert_false(sige_token_attention(ctx, q, k6, v6, 1, 2, TRUE, out, &error));
  assert_non_null(strstr(error->message, "causal"));
  g_clear_error(&error);
  assert_false(sige_token_attention(ctx, q, k, v, 1, 3, FALSE, out, &error));
  assert_int_equal(error->code, SIGE_ERROR_SHAPE);
  g_clear_error(&error);
}

/* GEGLU with the exact erf GELU, against a double loop; the tanh
 * approximation of GELU differs from erf by up to 4.7e-4 (|g| near 2-3),
 * far above TOL, so a kernel using it fails here. */
static void test_geglu(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 17;
  const int rows = 7, c = 19;
  g_autoptr(sige_tensor) x = ot_new2(rows, 2 * c), out = ot_new2(rows, c);
  ot_fill(x, &rng, -4.0f, 4.0f);
  g_autofree double *want = g_new(double, (size_t)rows * c);
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < c; j++) {
      const double a = x->data[r * 2 * c + j], g = x->data[r * 2 * c + c + j];
      want[r * c + j] = a * 0.5 * g * (1.0 + erf(g / sqrt(2.0)));
    }
  sige_geglu(ctx, x, out);
  expect_close(out, want, "geglu");
}

/* A map [1, C, H, W] to token rows [H W, C] and back: exact copies. */
static void test_map_tokens(void **state) {
  sige_ctx *ctx = *state;
  uint64_t rng = 19;
  const int C = 37, H = 5, W = 13; /* not multiples of the 32-wide tiles */
  g_autoptr(sige_tensor) map = ot_new4(1, C, H, W, SIGE_LAYOUT_NCHW);
  g_autoptr(sige_tensor) back = ot_new4(1, C, H, W, SIGE_LAYOUT_NCHW);
  g_autoptr(sige_tensor) tok = ot_new2(H * W, C);
  ot_fill(map, &rng, -1, 1);
  sige_map_to_tokens(ctx, map, tok);
  for (int c = 0; c < C; c++)
    for (int p = 0; p < H * W; p++)
      assert_true(tok->data[p * C + c] == map->data[c * H * W + p]);
  sige_tokens_to_map(ctx, tok, back);
  assert_memory_equal(back->data, map->data, map->numel * sizeof(float));
}

static int setup(void **state) {
  *state = sige_ctx_new(2);
  return 0;
}

static int teardown(void **state) {
  sige_ctx_free(*state);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layer_norm),
      cmocka_unit_test(test_token_embedding),
      cmocka_unit_test(test_token_attention),
      cmocka_unit_test(test_geglu),
      cmocka_unit_test(test_map_tokens),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
