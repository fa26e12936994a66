/* The device backend against the CPU: every op the models use on small
 * shapes, the sparse kernels and the undo log, then snapshot + sparse edits
 * of the four tiny reference models through sessions, CPU vs device.
 *
 * Built twice (tests/unit/device/meson.build): with SIGE_TEST_DEVICE = sim,
 * the device path on the CPU (the same kernel bodies, host memory behind
 * tagged pointers that fault on any other access), which runs everywhere;
 * and with cuda, which prints "skipped: no CUDA device: ..." and exits 77
 * (meson: SKIP) when no device can be used.
 *
 * Tolerances (max |device - cpu|):
 *   ops: 2e-5 times max(1, max |cpu|): float32 sums in another order (cuBLAS
 *     and the device's reductions), fused multiply-adds on the GPU, expf in
 *     the activations where the CPU uses its own polynomial (2 ulp);
 *   data movement (gather / scatter without a transform, conversions, the
 *     undo log): exact;
 *   model outputs: 2e-4 times max(1, max |cpu|): the op error through a
 *     dozen layers, well under the reference cases' own float32 bounds
 *     (out_dense 4e-4 for GauGAN); with fp16 caches 5e-3: a value within
 *     float32 noise of a rounding boundary of half rounds the other way
 *     (2^-11 relative) and the pass goes on from there;
 *   MAC counts: equal. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sige/context.h"
#include "sige/device.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/ops.h"
#include "sige/session.h"
#include "sige/sparse.h"
#include "sige/tensor.h"
#include "sige/weights.h"
#include "random_weights.h"

#ifndef SIGE_TEST_DEVICE
#define SIGE_TEST_DEVICE SIGE_DEVICE_SIM
#endif

#define TOL_OP 2e-5
#define TOL_MODEL 2e-4
#define TOL_MODEL_FP16 5e-3

static void assert_ok(GError *error, const char *what) {
  if (error) fail_msg("%s failed: %s", what, error->message);
}

static sige_ctx *cpu_ctx(void) { return sige_ctx_new(2); }

static sige_ctx *dev_ctx(void) {
  GError *error = NULL;
  sige_ctx *ctx = sige_ctx_new_device(2, SIGE_TEST_DEVICE, &error);
  assert_ok(error, "sige_ctx_new_device");
  assert_int_equal(sige_ctx_device(ctx), SIGE_TEST_DEVICE);
  return ctx;
}

static sige_tensor *rand4(int n, int c, int h, int w, uint64_t seed) {
  sige_tensor *t = sige_tensor_new4(n, c, h, w, NULL);
  sige_test_rng r = sige_test_rng_new(seed);
  for (size_t i = 0; i < t->numel; i++) t->data[i] = sige_test_rng_uniform(&r, -1.0f, 1.0f);
  return t;
}

static sige_tensor *randv(int n, uint64_t seed) {
  int64_t s[1] = {n};
  sige_tensor *t = sige_tensor_new(1, s, NULL);
  sige_test_rng r = sige_test_rng_new(seed);
  for (int i = 0; i < n; i++) t->data[i] = sige_test_rng_uniform(&r, -1.0f, 1.0f);
  return t;
}

static sige_tensor *up(sige_ctx *ctx, const sige_tensor *t) {
  GError *error = NULL;
  sige_tensor *d = sige_tensor_to_backend(sige_ctx_backend(ctx), t, &error);
  assert_ok(error, "upload");
  assert_ptr_equal(d->backend, sige_ctx_backend(ctx));
  return d;
}

static sige_tensor *down(const sige_tensor *t) {
  GError *error = NULL;
  sige_tensor *h = sige_tensor_to_host(t, &error);
  assert_ok(error, "download");
  return h;
}

/* An uninitialised device tensor shaped like t (and with its layout). */
static sige_tensor *dev_like(sige_ctx *ctx, const sige_tensor *t) {
  g_autoptr(sige_tensor) d = up(ctx, t);
  sige_tensor *o = sige_tensor_new4_like(d, SIGE_N(t), SIGE_C(t), SIGE_H(t), SIGE_W(t), NULL);
  o->layout = t->layout;
  return o;
}

static double max_abs(const float *v, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(v[i])) m = fmax(m, fabs(v[i]));
  return m;
}

static void assert_floats(const float *want, const float *got, size_t n, double tol,
                          const char *what) {
  const double scale = fmax(1.0, max_abs(want, n));
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    /* equal values (infinities included) differ by 0 */
    const double d = want[i] == got[i] ? 0.0 : fabs((double)want[i] - got[i]);
    if (!(d <= worst)) { /* NaN counts as worst */
      worst = isnan(d) ? INFINITY : d;
      at = i;
    }
  }
  if (!(worst <= tol * scale))
    fail_msg("%s: max |device - cpu| = %.3g at %zu (cpu %g, device %g), tolerance %.3g", what,
             worst, at, want[at], got[at], tol * scale);
}

/* cpu (host) vs dev (device) tensor. */
static void assert_close(const sige_tensor *cpu, const sige_tensor *dev, double tol,
                         const char *what) {
  g_autoptr(sige_tensor) got = down(dev);
  assert_int_equal(cpu->numel, got->numel);
  if (tol == 0 && cpu->storage == got->storage) {
    if (memcmp(cpu->data, got->data, sige_tensor_bytes(cpu)) != 0)
      fail_msg("%s: device and cpu differ (expected bit-identical)", what);
    return;
  }
  g_autoptr(sige_tensor) a = sige_tensor_to_f32(cpu, NULL), b = sige_tensor_to_f32(got, NULL);
  assert_floats(a->data, b->data, a->numel, tol, what);
}

/* ---- device choice --------------------------------------------------------- */

static void test_device_choice(void **state) {
  (void)state;
  GError *error = NULL;
  g_autofree char *desc = NULL;
  const gboolean have_cuda = sige_cuda_probe(&desc, &error);
  g_autoptr(sige_ctx) a = sige_ctx_new_device(2, SIGE_DEVICE_AUTO, NULL);
  assert_non_null(a);
  if (have_cuda) {
    assert_int_equal(sige_ctx_device(a), SIGE_DEVICE_CUDA);
    assert_non_null(strstr(sige_ctx_device_info(a), desc));
    return;
  }
  /* no device: the cause says so, auto falls back and says why, cuda fails */
  assert_int_equal(error->code, SIGE_ERROR_DEVICE);
  assert_true(g_str_has_prefix(error->message, "no CUDA device: "));
  assert_int_equal(sige_ctx_device(a), SIGE_DEVICE_CPU);
  assert_null(sige_ctx_backend(a));
  assert_non_null(strstr(sige_ctx_device_info(a), error->message));
  g_clear_error(&error);
  assert_null(sige_ctx_new_device(2, SIGE_DEVICE_CUDA, &error));
  assert_int_equal(error->code, SIGE_ERROR_DEVICE);
  assert_true(g_str_has_prefix(error->message, "no CUDA device: "));
  g_clear_error(&error);
  /* and so does a session asked for cuda */
  sige_device d;
  assert_true(sige_device_parse("CUDA", &d, NULL));
  assert_int_equal(d, SIGE_DEVICE_CUDA);
  assert_false(sige_device_parse("gpu", &d, &error));
  assert_int_equal(error->code, SIGE_ERROR_INVALID);
  g_clear_error(&error);
}

/* ---- tensors ---------------------------------------------------------------- */

static void test_tensors(void **state) {
  (void)state;
  g_autoptr(sige_ctx) ctx = dev_ctx();
  g_autoptr(sige_tensor) x = rand4(2, 3, 5, 7, 1);
  x->data[0] = 70000.0f; /* overflows half: inf, as on the CPU */
  x->data[1] = 1e-6f;    /* a half subnormal */
  g_autoptr(sige_tensor) d = up(ctx, x);
  assert_close(x, d, 0, "upload / download");
  g_autoptr(sige_tensor) h16 = sige_tensor_to_f16(x, NULL);
  g_autoptr(sige_tensor) d16 = sige_tensor_to_f16(d, NULL);
  assert_int_equal(d16->storage, SIGE_STORAGE_F16);
  assert_ptr_equal(d16->backend, d->backend);
  assert_close(h16, d16, 0, "to_f16 on the device");
  g_autoptr(sige_tensor) h32 = sige_tensor_to_f32(h16, NULL);
  g_autoptr(sige_tensor) d32 = sige_tensor_to_f32(d16, NULL);
  assert_close(h32, d32, 0, "to_f32 on the device");
  g_autoptr(sige_tensor) dd = sige_tensor_dup(d16, NULL);
  assert_close(h16, dd, 0, "dup of an F16 device tensor");
  /* copy converts between storages in place, host to device and back */
  g_autoptr(sige_tensor) t = sige_tensor_new4_like(d, 2, 3, 5, 7, NULL);
  assert_true(sige_tensor_copy(t, h16, NULL));
  assert_close(h32, t, 0, "copy F16 host -> F32 device");
  g_autoptr(sige_tensor) back = sige_tensor_new(4, x->shape, NULL);
  assert_true(sige_tensor_copy(back, d16, NULL));
  assert_floats(h32->data, back->data, back->numel, 0, "copy F16 device -> F32 host");
  /* rows of every plane, in each direction */
  g_autoptr(sige_tensor) y = rand4(2, 3, 5, 7, 2);
  g_autoptr(sige_tensor) dy = up(ctx, y);
  g_autoptr(sige_tensor) want = sige_tensor_dup(x, NULL);
  GError *error = NULL;
  assert_true(sige_tensor_copy_rows(want, y, 1, 3, &error));
  g_autoptr(sige_tensor) dd2 = up(ctx, x);
  assert_true(sige_tensor_copy_rows(dd2, y, 1, 3, &error)); /* host -> device */
  assert_close(want, dd2, 0, "copy_rows host -> device");
  g_autoptr(sige_tensor) dd3 = up(ctx, x);
  assert_true(sige_tensor_copy_rows(dd3, dy, 1, 3, &error)); /* device -> device */
  assert_close(want, dd3, 0, "copy_rows device -> device");
  g_autoptr(sige_tensor) h3 = sige_tensor_dup(x, NULL);
  assert_true(sige_tensor_copy_rows(h3, dy, 1, 3, &error)); /* device -> host */
  assert_ok(error, "copy_rows");
  assert_floats(want->data, h3->data, want->numel, 0, "copy_rows device -> host");
}

/* ---- dense ops ---------------------------------------------------------------- */

typedef struct {
  int n, cin, h, w, cout, k, groups;
  sige_conv2d_params p;
  gboolean bias, cnhw;
} conv_case;

static void check_conv(const conv_case *c, uint64_t seed) {
  g_autoptr(sige_ctx) cc = cpu_ctx();
  g_autoptr(sige_ctx) dc = dev_ctx();
  g_autoptr(sige_tensor) x = rand4(c->n, c->cin, c->h, c->w, seed);
  x->layout = c->cnhw ? SIGE_LAYOUT_CNHW : SIGE_LAYOUT_NCHW;
  g_autoptr(sige_tensor) wt = rand4(c->cout, c->cin / c->groups, c->k, c->k, seed + 1);
  g_autoptr(sige_tensor) b = c->bias ? randv(c->cout, seed + 2) : NULL;
  int64_t os[4];
  sige_conv2d_out_shape(x, wt, &c->p, os);
  g_autoptr(sige_tensor) want = sige_tensor_new(4, os, NULL);
  want->layout = x->layout;
  GError *error = NULL;
  assert_true(sige_conv2d(cc, x, wt, b, &c->p, want, &error));
  g_autoptr(sige_tensor) dx = up(dc, x);
  g_autoptr(sige_tensor) got = dev_like(dc, want);
  /* weights and bias stay host tensors: the backend mirrors them */
  assert_true(sige_conv2d(dc, dx, wt, b, &c->p, got, &error));
  assert_ok(error, "device conv2d");
  char what[96];
  g_snprintf(what, sizeof what, "conv2d %dx%d k%d s%d g%d%s", c->cin, c->cout, c->k,
             c->p.stride_h, c->groups, c->cnhw ? " CNHW" : "");
  assert_close(want, got, TOL_OP, what);
  assert_int_equal(sige_ctx_macs(cc), sige_ctx_macs(dc));
}

static void test_conv2d(void **state) {
  (void)state;
  const conv_case cases[] = {
      {2, 5, 9, 11, 6, 3, 1, {1, 1, 1, 1, 1, 1, 1}, TRUE, FALSE},   /* 3x3, pad 1, 2 images */
      {1, 4, 10, 9, 3, 3, 1, {2, 2, 0, 1, 0, 1, 1}, TRUE, FALSE},   /* the UNet's downsample */
      {1, 6, 7, 8, 5, 1, 1, {1, 1, 0, 0, 0, 0, 1}, TRUE, FALSE},    /* 1x1 */
      {2, 6, 7, 8, 5, 1, 1, {1, 1, 0, 0, 0, 0, 1}, FALSE, FALSE},   /* 1x1, 2 images, no bias */
      {1, 8, 9, 9, 8, 3, 8, {1, 1, 1, 1, 1, 1, 8}, TRUE, FALSE},    /* depthwise */
      {1, 8, 9, 9, 6, 3, 2, {1, 1, 1, 1, 1, 1, 2}, TRUE, FALSE},    /* grouped */
      {7, 5, 6, 6, 4, 3, 1, {1, 1, 0, 0, 0, 0, 1}, TRUE, TRUE},     /* a block batch */
      {7, 5, 4, 4, 4, 1, 1, {1, 1, 0, 0, 0, 0, 1}, FALSE, TRUE},    /* 1x1 on blocks */
      {5, 6, 6, 6, 6, 3, 6, {1, 1, 0, 0, 0, 0, 6}, TRUE, TRUE},     /* depthwise on blocks */
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) check_conv(&cases[i], 10 + 7 * i);
}

static void test_linear(void **state) {
  (void)state;
  g_autoptr(sige_ctx) cc = cpu_ctx();
  g_autoptr(sige_ctx) dc = dev_ctx();
  int64_t xs[2] = {3, 17}, ws[2] = {9, 17}, os[2] = {3, 9};
  g_autoptr(sige_tensor) x = sige_tensor_new(2, xs, NULL), w = sige_tensor_new(2, ws, NULL);
  sige_test_rng r = sige_test_rng_new(5);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = sige_test_rng_uniform(&r, -1, 1);
  for (size_t i = 0; i < w->numel; i++) w->data[i] = sige_test_rng_uniform(&r, -1, 1);
  g_autoptr(sige_tensor) b = randv(9, 6);
  g_autoptr(sige_tensor) want = sige_tensor_new(2, os, NULL);
  assert_true(sige_linear(cc, x, w, b, want, NULL));
  g_autoptr(sige_tensor) dx = up(dc, x);
  g_autoptr(sige_tensor) got = sige_tensor_to_backend(sige_ctx_backend(dc), want, NULL);
  GError *error = NULL;
  assert_true(sige_linear(dc, dx, w, b, got, &error));
  assert_ok(error, "device linear");
  assert_close(want, got, TOL_OP, "linear");
}

static void test_elementwise(void **state) {
  (void)state;
  g_autoptr(sige_ctx) cc = cpu_ctx();
  g_autoptr(sige_ctx) dc = dev_ctx();
  g_autoptr(sige_tensor) x = rand4(2, 3, 6, 5, 21);
  for (size_t i = 0; i < x->numel; i++) x->data[i] *= 4.0f; /* reach the tails */
  g_autoptr(sige_tensor) dx = up(dc, x);
  const sige_act acts[] = {SIGE_ACT_NONE,  SIGE_ACT_RELU, SIGE_ACT_LEAKY_RELU,
                           SIGE_ACT_SWISH, SIGE_ACT_TANH, SIGE_ACT_SIGMOID};
  for (guint i = 0; i < G_N_ELEMENTS(acts); i++) {
    g_autoptr(sige_tensor) want = sige_tensor_dup(x, NULL);
    sige_activation(cc, x, acts[i], want);
    g_autoptr(sige_tensor) got = dev_like(dc, x);
    sige_activation(dc, dx, acts[i], got);
    assert_close(want, got, TOL_OP, "activation");
  }
  const float scale[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};
  const float shift[6] = {0.1f, 0.0f, -0.3f, 0.2f, 1.0f, -1.0f};
  for (int per_sample = 0; per_sample < 2; per_sample++)
    for (int layout = 0; layout < 2; layout++) {
      g_autoptr(sige_tensor) xl = sige_tensor_dup(x, NULL);
      xl->layout = layout ? SIGE_LAYOUT_CNHW : SIGE_LAYOUT_NCHW;
      g_autoptr(sige_tensor) want = sige_tensor_dup(xl, NULL);
      sige_channel_affine(cc, xl, scale, shift, per_sample, SIGE_ACT_SWISH, want);
      g_autoptr(sige_tensor) dxl = up(dc, xl);
      sige_channel_affine(dc, dxl, scale, shift, per_sample, SIGE_ACT_SWISH, dxl); /* in place */
      assert_close(want, dxl, TOL_OP, "channel_affine");
    }
  g_autoptr(sige_tensor) g = rand4(2, 3, 6, 5, 22), b = rand4(2, 3, 6, 5, 23);
  g_autoptr(sige_tensor) dg = up(dc, g), db = up(dc, b);
  g_autoptr(sige_tensor) want = sige_tensor_dup(x, NULL);
  sige_spade_modulate(cc, x, g, b, want);
  g_autoptr(sige_tensor) got = dev_like(dc, x);
  sige_spade_modulate(dc, dx, dg, db, got);
  assert_close(want, got, TOL_OP, "spade_modulate");
  sige_add(cc, x, g, want);
  sige_add(dc, dx, dg, got);
  assert_close(want, got, 0, "add");
  for (int layout = 0; layout < 2; layout++) {
    g_autoptr(sige_tensor) a1 = rand4(2, 3, 4, 5, 24), a2 = rand4(2, 2, 4, 5, 25);
    a1->layout = a2->layout = layout ? SIGE_LAYOUT_CNHW : SIGE_LAYOUT_NCHW;
    g_autoptr(sige_tensor) cat = sige_tensor_new4(2, 5, 4, 5, NULL);
    cat->layout = a1->layout;
    sige_concat_channels(cc, a1, a2, cat);
    g_autoptr(sige_tensor) d1 = up(dc, a1), d2 = up(dc, a2), dcat = dev_like(dc, cat);
    sige_concat_channels(dc, d1, d2, dcat);
    assert_close(cat, dcat, 0, "concat_channels");
  }
}

static void test_norms(void **state) {
  (void)state;
  g_autoptr(sige_ctx) cc = cpu_ctx();
  g_autoptr(sige_ctx) dc = dev_ctx();
  g_autoptr(sige_tensor) x = rand4(2, 8, 7, 9, 31);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = 3.0f + 0.5f * x->data[i]; /* mean >> sd */
  g_autoptr(sige_tensor) gamma = randv(8, 32), beta = randv(8, 33);
  g_autoptr(sige_tensor) dx = up(dc, x);
  float s1[16], t1[16], s2[16], t2[16];
  sige_group_norm_affine(cc, x, 4, 1e-6f, gamma, beta, s1, t1);
  sige_group_norm_affine(dc, dx, 4, 1e-6f, gamma, beta, s2, t2);
  assert_floats(s1, s2, 16, 1e-5, "group_norm_affine scale");
  assert_floats(t1, t2, 16, 1e-5, "group_norm_affine shift");
  g_autoptr(sige_tensor) want = sige_tensor_dup(x, NULL);
  g_autoptr(sige_tensor) got = dev_like(dc, x);
  sige_group_norm(cc, x, 2, 1e-5f, gamma, beta, want);
  sige_group_norm(dc, dx, 2, 1e-5f, gamma, beta, got);
  assert_close(want, got, TOL_OP, "group_norm");
  sige_instance_norm(cc, x, 1e-5f, want);
  sige_instance_norm(dc, dx, 1e-5f, got);
  assert_close(want, got, TOL_OP, "instance_norm");
  g_autoptr(sige_tensor) mean = randv(8, 34), var = randv(8, 35);
  for (int c = 0; c < 8; c++) var->data[c] = fabsf(var->data[c]) + 0.1f;
  sige_batch_norm(cc, x, mean, var, gamma, beta, 1e-5f, want);
  sige_batch_norm(dc, dx, mean, var, gamma, beta, 1e-5f, got);
  assert_close(want, got, TOL_OP, "batch_norm");
  g_autoptr(sige_tensor) x1 = rand4(1, 8, 7, 9, 36);
  g_autoptr(sige_tensor) dx1 = up(dc, x1);
  double sum1[8], sq1[8], sum2[8], sq2[8];
  sige_channel_moments(cc, x1, sum1, sq1);
  sige_channel_moments(dc, dx1, sum2, sq2);
  for (int c = 0; c < 8; c++) {
    assert_true(fabs(sum1[c] - sum2[c]) <= 1e-9 * fmax(1.0, fabs(sum1[c])));
    assert_true(fabs(sq1[c] - sq2[c]) <= 1e-9 * fmax(1.0, sq1[c]));
  }
}

static void test_resample(void **state) {
  (void)state;
  g_autoptr(sige_ctx) cc = cpu_ctx();
  g_autoptr(sige_ctx) dc = dev_ctx();
  g_autoptr(sige_tensor) x = rand4(2, 3, 6, 10, 41);
  g_autoptr(sige_tensor) dx = up(dc, x);
  const int sizes[3][2] = {{12, 20}, {7, 13}, {3, 4}};
  for (int i = 0; i < 3; i++) {
    g_autoptr(sige_tensor) want = sige_tensor_new4(2, 3, sizes[i][0], sizes[i][1], NULL);
    g_autoptr(sige_tensor) got = dev_like(dc, want);
    sige_resize_nearest(cc, x, want);
    sige_resize_nearest(dc, dx, got);
    assert_close(want, got, 0, "resize_nearest");
    sige_resize_bilinear(cc, x, want);
    sige_resize_bilinear(dc, dx, got);
    assert_close(want, got, TOL_OP, "resize_bilinear");
  }
  g_autoptr(sige_tensor) want = sige_tensor_new4(2, 3, 3, 5, NULL);
  g_autoptr(sige_tensor) got = dev_like(dc, want);
  sige_avg_pool2x2(cc, x, want);
  sige_avg_pool2x2(dc, dx, got);
  assert_close(want, got, TOL_OP, "avg_pool2x2");
  int64_t es[2] = {1, 16};
  g_autoptr(sige_tensor) e1 = sige_tensor_new(2, es, NULL);
  g_autoptr(sige_tensor) e2 = sige_tensor_to_backend(sige_ctx_backend(dc), e1, NULL);
  const float t = 417.0f;
  sige_timestep_embedding(&t, 1, 16, e1);
  sige_timestep_embedding(&t, 1, 16, e2);
  assert_close(e1, e2, 0, "timestep_embedding");
}

static void test_attention(void **state) {
  (void)state;
  g_autoptr(sige_ctx) cc = cpu_ctx();
  g_autoptr(sige_ctx) dc = dev_ctx();
  const int C = 8;
  g_autoptr(sige_tensor) x = rand4(1, C, 5, 6, 51);
  g_autoptr(sige_tensor) qw = rand4(C, C, 1, 1, 52), kw = rand4(C, C, 1, 1, 53),
                         vw = rand4(C, C, 1, 1, 54), pw = rand4(C, C, 1, 1, 55);
  g_autoptr(sige_tensor) qb = randv(C, 56), kb = randv(C, 57), vb = randv(C, 58),
                         pb = randv(C, 59), g = randv(C, 60), b = randv(C, 61);
  const sige_attention_params p = {4, 1e-6f, g, b, qw, qb, kw, kb, vw, vb, pw, pb};
  g_autoptr(sige_tensor) dx = up(dc, x);
  g_autoptr(sige_tensor) want = sige_tensor_dup(x, NULL);
  g_autoptr(sige_tensor) got = dev_like(dc, x);
  GError *error = NULL;
  assert_true(sige_attention(cc, x, &p, want, NULL));
  assert_true(sige_attention(dc, dx, &p, got, &error));
  assert_ok(error, "device attention");
  assert_close(want, got, TOL_OP, "attention");
  float scale[8], shift[8];
  for (int c = 0; c < C; c++) {
    scale[c] = 0.5f + 0.1f * c;
    shift[c] = 0.2f - 0.05f * c;
  }
  assert_true(sige_attention_frozen(cc, x, &p, scale, shift, want, NULL));
  assert_true(sige_attention_frozen(dc, dx, &p, scale, shift, got, &error));
  assert_close(want, got, TOL_OP, "attention_frozen");
  assert_int_equal(sige_ctx_macs(cc), sige_ctx_macs(dc));
  g_autoptr(sige_tensor) qkv = rand4(3 * C, C, 1, 1, 62);
  g_autoptr(sige_tensor) qkvb = randv(3 * C, 63);
  assert_true(sige_multihead_attention(cc, x, qkv, qkvb, pw, pb, 2, 4, scale, shift, want, NULL));
  assert_true(sige_multihead_attention(dc, dx, qkv, qkvb, pw, pb, 2, 4, scale, shift, got, &error));
  assert_ok(error, "device multihead attention");
  assert_close(want, got, TOL_OP, "multihead_attention");
}

static sige_tensor *rand2(int rows, int cols, uint64_t seed) {
  sige_tensor *t = rand4(rows, cols, 1, 1, seed);
  t->ndim = 2;
  return t;
}

/* LayerNorm, token embedding, attention over tokens, quick_gelu: the text
 * encoder's ops. */
static void test_token_ops(void **state) {
  (void)state;
  g_autoptr(sige_ctx) cc = cpu_ctx();
  g_autoptr(sige_ctx) dc = dev_ctx();
  const int n = 2, t = 7, heads = 2, c = 12;
  g_autoptr(sige_tensor) x = rand2(n * t, c, 81), g = randv(c, 82), b = randv(c, 83);
  g_autoptr(sige_tensor) dx = up(dc, x);
  g_autoptr(sige_tensor) want = rand2(n * t, c, 84);
  g_autoptr(sige_tensor) got = up(dc, want);
  sige_layer_norm(cc, x, g, b, 1e-5f, want);
  sige_layer_norm(dc, dx, g, b, 1e-5f, got);
  assert_close(want, got, TOL_OP, "layer_norm");
  sige_activation(cc, x, SIGE_ACT_QUICK_GELU, want);
  sige_activation(dc, dx, SIGE_ACT_QUICK_GELU, got);
  assert_close(want, got, TOL_OP, "quick_gelu");
  g_autoptr(sige_tensor) table = rand2(20, c, 85), pos = rand2(t, c, 86);
  int32_t ids[14];
  for (int i = 0; i < n * t; i++) ids[i] = (i * 7 + 3) % 20;
  GError *error = NULL;
  assert_true(sige_token_embedding(cc, table, ids, n, t, pos, want, NULL));
  assert_true(sige_token_embedding(dc, table, ids, n, t, pos, got, &error));
  assert_ok(error, "device token_embedding");
  assert_close(want, got, 0, "token_embedding");
  g_autoptr(sige_tensor) k = rand2(n * t, c, 87), v = rand2(n * t, c, 88);
  g_autoptr(sige_tensor) dk = up(dc, k), dv = up(dc, v);
  for (int causal = 0; causal < 2; causal++) {
    assert_true(sige_token_attention(cc, x, k, v, n, heads, causal, want, NULL));
    assert_true(sige_token_attention(dc, dx, dk, dv, n, heads, causal, got, &error));
    assert_ok(error, "device token_attention");
    assert_close(want, got, TOL_OP, causal ? "causal token_attention" : "token_attention");
  }
  /* more queries than keys (SD's cross-attention over the context) */
  g_autoptr(sige_tensor) kc = rand2(3, c, 89), vc = rand2(3, c, 90);
  g_autoptr(sige_tensor) dkc = up(dc, kc), dvc = up(dc, vc);
  assert_true(sige_token_attention(cc, x, kc, vc, 1, heads, FALSE, want, NULL));
  assert_true(sige_token_attention(dc, dx, dkc, dvc, 1, heads, FALSE, got, &error));
  assert_ok(error, "device cross token_attention");
  assert_close(want, got, TOL_OP, "cross token_attention");
  assert_int_equal(sige_ctx_macs(cc), sige_ctx_macs(dc));
  /* GEGLU: x [n t, c] as (a | g) halves of 6 */
  g_autoptr(sige_tensor) gw = rand2(n * t, c / 2, 91);
  g_autoptr(sige_tensor) gg = up(dc, gw);
  sige_geglu(cc, x, gw);
  sige_geglu(dc, dx, gg);
  assert_close(gw, gg, TOL_OP, "geglu");
  /* a map [1, c, 2, 7] to tokens [14, c] and back */
  g_autoptr(sige_tensor) map = rand4(1, c, 2, n * t / 2, 92);
  g_autoptr(sige_tensor) other = rand4(1, c, 2, n * t / 2, 93); /* overwritten below */
  g_autoptr(sige_tensor) dmap = up(dc, map), dback = up(dc, other);
  sige_map_to_tokens(cc, map, want);
  sige_map_to_tokens(dc, dmap, got);
  assert_close(want, got, 0, "map_to_tokens");
  sige_tokens_to_map(dc, got, dback);
  assert_close(map, dback, 0, "tokens_to_map");
}

/* ---- sparse kernels and the undo log --------------------------------------- */

static void test_sparse_kernels(void **state) {
  (void)state;
  g_autoptr(sige_ctx) cc = cpu_ctx();
  g_autoptr(sige_ctx) dc = dev_ctx();
  const int C = 3, H = 16, W = 20;
  g_autoptr(sige_mask) m = sige_mask_new(H, W);
  for (int y = 3; y < 9; y++)
    for (int x = 12; x < 19; x++) m->data[y * W + x] = 1;
  m->data[0] = m->data[H * W - 1] = 1; /* corner blocks clip on every side */
  sige_block_geometry g, gs;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  sige_block_geometry_init(&gs, 1, 1, 0, 4);
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
  g_autoptr(sige_active_blocks) abs_ = sige_reduce_mask(m, &gs);
  assert_true(ab->n > 2);
  /* a source half the size, read through a nearest x2 map, stored as F16 */
  g_autoptr(sige_tensor) small = rand4(1, C, H / 2, W / 2, 71);
  g_autoptr(sige_tensor) small16 = sige_tensor_to_f16(small, NULL);
  int rows[16], cols[20];
  sige_nearest_indices(H / 2, H, rows);
  sige_nearest_indices(W / 2, W, cols);
  const sige_resample_map map = {H, W, rows, cols};
  const float scale[3] = {1.5f, -0.5f, 2.0f}, shift[3] = {0.25f, 0.0f, -1.0f};
  for (int half = 0; half < 2; half++)
    for (int transform = 0; transform < 2; transform++) {
      const sige_tensor *src = half ? small16 : small;
      g_autoptr(sige_tensor) want = sige_tensor_new4(ab->n, C, g.block, g.block, NULL);
      want->layout = SIGE_LAYOUT_CNHW;
      g_autoptr(sige_tensor) got = dev_like(dc, want);
      g_autoptr(sige_tensor) dsrc = up(dc, src);
      sige_gather(cc, src, &map, &g, ab, transform ? scale : NULL, transform ? shift : NULL,
                  transform ? SIGE_ACT_SWISH : SIGE_ACT_NONE, want);
      sige_gather(dc, dsrc, &map, &g, ab, transform ? scale : NULL, transform ? shift : NULL,
                  transform ? SIGE_ACT_SWISH : SIGE_ACT_NONE, got);
      assert_close(want, got, transform ? TOL_OP : 0, "gather");
    }
  /* scatter into F32 and F16 caches, with a residual through the map */
  g_autoptr(sige_tensor) blocks = rand4(ab->n, C, g.out_block, g.out_block, 72);
  blocks->layout = SIGE_LAYOUT_CNHW;
  g_autoptr(sige_tensor) dblocks = up(dc, blocks);
  for (int half = 0; half < 2; half++) {
    g_autoptr(sige_tensor) base = rand4(1, C, H, W, 73);
    g_autoptr(sige_tensor) dst = half ? sige_tensor_to_f16(base, NULL) : sige_tensor_dup(base, NULL);
    g_autoptr(sige_tensor) ddst = up(dc, dst);
    g_autoptr(sige_tensor) dres = up(dc, small16);
    sige_scatter(cc, blocks, &g, ab, small16, &map, dst);
    sige_scatter(dc, dblocks, &g, ab, dres, &map, ddst);
    assert_close(dst, ddst, 0, "scatter with a residual");
    /* the residual block: main blocks plus the shortcut correction */
    g_autoptr(sige_tensor) sc = rand4(abs_->n, C, gs.out_block, gs.out_block, 74);
    sc->layout = SIGE_LAYOUT_CNHW;
    g_autoptr(sige_tensor) res0 = rand4(1, C, H, W, 75);
    g_autoptr(sige_tensor) res = half ? sige_tensor_to_f16(res0, NULL) : sige_tensor_dup(res0, NULL);
    g_autoptr(sige_tensor) dsc = up(dc, sc), dres2 = up(dc, res);
    sige_scatter_block_residual(cc, blocks, &g, ab, sc, &gs, abs_, dst, res);
    sige_scatter_block_residual(dc, dblocks, &g, ab, dsc, &gs, abs_, ddst, dres2);
    assert_close(dst, ddst, 0, "scatter_block_residual output");
    assert_close(res, dres2, 0, "scatter_block_residual cache");
  }
}

static void test_undo_log(void **state) {
  (void)state;
  g_autoptr(sige_ctx) dc = dev_ctx();
  const int C = 4, H = 12, W = 14;
  g_autoptr(sige_mask) m = sige_mask_new(H, W);
  for (int i = 0; i < H * W; i += 7) m->data[i] = 1;
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
  for (int half = 0; half < 2; half++) {
    g_autoptr(sige_tensor) base = rand4(1, C, H, W, 81);
    g_autoptr(sige_tensor) orig = half ? sige_tensor_to_f16(base, NULL) : sige_tensor_dup(base, NULL);
    g_autoptr(sige_tensor) cache = up(dc, orig);
    g_autoptr(sige_tensor) blocks = rand4(ab->n, C, g.out_block, g.out_block, 82);
    blocks->layout = SIGE_LAYOUT_CNHW;
    g_autoptr(sige_tensor) dblocks = up(dc, blocks);
    g_autoptr(sige_undo_log) log = sige_undo_log_new();
    GError *error = NULL;
    assert_true(sige_undo_log_save_blocks(log, cache, &g, ab, &error));
    sige_scatter(dc, dblocks, &g, ab, NULL, NULL, cache);
    assert_true(sige_undo_log_save_tensor(log, cache, &error));
    g_autoptr(sige_tensor) junk = rand4(1, C, H, W, 83);
    g_autoptr(sige_tensor) junk_s = half ? sige_tensor_to_f16(junk, NULL) : sige_tensor_dup(junk, NULL);
    assert_true(sige_tensor_copy(cache, junk_s, &error));
    assert_ok(error, "undo log");
    assert_true(sige_undo_log_bytes(log) > 0);
    sige_undo_log_rollback(log);
    assert_close(orig, cache, 0, "undo log rollback");
  }
}

/* ---- the models ------------------------------------------------------------- */

/* Small models of each kind (random weights, tools/harness/random_weights.c)
 * that keep every layer type and a sparse part, so that the CPU half of
 * each comparison stays cheap. */
static void small_spade(sige_spade_config *c) {
  sige_spade_config_init(c);
  c->ngf = 4;
  c->crop_size = 128; /* 64 x 128, latent 1 x 2 */
}

static sige_model *small_model(sige_model_kind kind) {
  GError *error = NULL;
  g_autoptr(sige_weights) w = NULL;
  sige_model *m = NULL;
  if (kind == SIGE_MODEL_SPADE) {
    sige_spade_config c;
    small_spade(&c);
    if ((w = sige_random_spade_weights(&c, 1, &error))) m = sige_model_new_spade(&c, w, &error);
  } else if (kind == SIGE_MODEL_GANCOMP_SPADE) {
    sige_gancomp_config c;
    sige_gancomp_config_init(&c);
    small_spade(&c.base);
    assert_true(sige_gancomp_parse_channels("8_8_8_12_8_6_6_8", c.channels, NULL));
    if ((w = sige_random_gancomp_weights(&c, 2, &error))) m = sige_model_new_gancomp(&c, w, &error);
  } else if (kind == SIGE_MODEL_DDPM_UNET) {
    sige_ddpm_config c;
    sige_ddpm_config_init(&c);
    c.ch = 16;
    const int mult[3] = {1, 1, 2};
    memcpy(c.ch_mult, mult, sizeof mult);
    c.n_ch_mult = 3;
    c.num_res_blocks = 1;
    c.image_size = 64;
    c.groupnorm_groups = 8;
    c.sparse_resolution_threshold = 32; /* two sparse levels */
    if ((w = sige_random_ddpm_weights(&c, 3, &error))) m = sige_model_new_ddpm(&c, w, &error);
  } else {
    sige_pd_config c;
    sige_pd_config_init(&c);
    c.ch = 16;
    const int mult[3] = {1, 2, 2};
    memcpy(c.ch_mult, mult, sizeof mult);
    c.n_ch_mult = 3;
    c.num_res_blocks = 1;
    const int attn[1] = {16};
    memcpy(c.attn_resolutions, attn, sizeof attn);
    c.n_attn_resolutions = 1;
    c.head_dim = 8;
    c.temb_ch = 64;
    c.image_size = 64;
    c.groupnorm_groups = 8;
    c.sparse_resolution_threshold = 32;
    if ((w = sige_random_pd_weights(&c, 4, &error))) m = sige_model_new_pd(&c, w, &error);
  }
  assert_ok(error, sige_model_kind_name(kind));
  return m;
}

typedef struct {
  sige_model_kind kind;
  float t;       /* DDPM timestep / PD log-SNR */
  gboolean fp16; /* fp16 caches */
} model_case;

/* An input for the model and an edit of it: labels in blocks (SPADE kinds)
 * or a random image; the edit repaints a rectangle. */
static void make_inputs(const sige_model *m, sige_tensor **a, sige_tensor **b) {
  int64_t s[4];
  sige_model_input_shape(m, s);
  const int h = (int)s[2], w = (int)s[3];
  const sige_spade_config *sc = sige_model_spade_config(m);
  sige_test_rng r = sige_test_rng_new(99);
  if (sc) {
    g_autofree int32_t *lab = g_new(int32_t, (size_t)h * w), *lab2 = NULL;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) lab[y * w + x] = ((y / 16) * 7 + (x / 16) * 3) % sc->label_nc;
    lab2 = g_memdup2(lab, sizeof(int32_t) * h * w);
    for (int y = h / 4; y < h / 4 + h / 8; y++)
      for (int x = w / 2; x < w / 2 + w / 10; x++)
        lab2[y * w + x] = (lab[y * w + x] + 5) % sc->label_nc;
    *a = sige_semantic_input(lab, sc->contain_instance ? lab : NULL, h, w, sc->label_nc, NULL);
    *b = sige_semantic_input(lab2, sc->contain_instance ? lab2 : NULL, h, w, sc->label_nc, NULL);
    return;
  }
  *a = sige_tensor_new(4, s, NULL);
  for (size_t i = 0; i < (*a)->numel; i++) (*a)->data[i] = sige_test_rng_uniform(&r, -1, 1);
  *b = sige_tensor_dup(*a, NULL);
  for (int c = 0; c < (int)s[1]; c++)
    for (int y = h / 3; y < h / 3 + h / 8; y++)
      for (int x = w / 4; x < w / 4 + w / 8; x++)
        (*b)->data[((size_t)c * h + y) * w + x] = sige_test_rng_uniform(&r, -1, 1);
}

static sige_session *session_on(const sige_model *m, sige_device d, const model_case *mc) {
  sige_session_options o;
  sige_session_options_init(&o);
  o.n_threads = 2;
  o.device = d;
  o.timestep = mc->t;
  o.fp16_caches = mc->fp16;
  o.full_pass_above = 2.0; /* always sparse */
  GError *error = NULL;
  sige_session *s = sige_session_new(m, &o, &error);
  assert_ok(error, "sige_session_new");
  return s;
}

typedef struct {
  gint cancel;
  double at;
} canceller;

static void cancel_midway(double fraction, void *data) {
  canceller *c = data;
  if (fraction >= c->at) g_atomic_int_set(&c->cancel, 1);
}

static void check_model(const model_case *mc) {
  GError *error = NULL;
  g_autoptr(sige_model) m = small_model(mc->kind);
  g_autoptr(sige_tensor) a = NULL, b = NULL;
  make_inputs(m, &a, &b);
  const char *name = sige_model_kind_name(mc->kind);
  const double tol = mc->fp16 ? TOL_MODEL_FP16 : TOL_MODEL;
  char what[128];
  /* dense forwards */
  {
    g_autoptr(sige_ctx) cc = cpu_ctx();
    g_autoptr(sige_ctx) dc = dev_ctx();
    g_autoptr(sige_tensor) want = NULL, got = NULL;
    assert_true(sige_model_forward_dense(m, cc, a, mc->t, &want, &error));
    assert_true(sige_model_forward_dense(m, dc, a, mc->t, &got, &error));
    assert_ok(error, "dense forward on the device");
    assert_null(got->backend); /* outputs come back to the host */
    g_snprintf(what, sizeof what, "%s: dense forward", name);
    assert_floats(want->data, got->data, want->numel, TOL_MODEL, what);
    assert_int_equal(sige_ctx_macs(cc), sige_ctx_macs(dc));
  }
  /* snapshot and a sparse edit */
  g_autoptr(sige_session) sc = session_on(m, SIGE_DEVICE_CPU, mc);
  g_autoptr(sige_session) sd = session_on(m, SIGE_TEST_DEVICE, mc);
  assert_int_equal(sige_session_device(sd), SIGE_TEST_DEVICE);
  g_autoptr(sige_tensor) w0 = NULL, g0 = NULL, w1 = NULL, g1 = NULL;
  assert_true(sige_session_snapshot(sc, a, &w0, &error));
  assert_true(sige_session_snapshot(sd, a, &g0, &error));
  assert_ok(error, "snapshot on the device");
  g_snprintf(what, sizeof what, "%s%s: snapshot", name, mc->fp16 ? " fp16" : "");
  assert_floats(w0->data, g0->data, w0->numel, tol, what);
  assert_int_equal(sige_session_cache_bytes(sc), sige_session_cache_bytes(sd));
  /* a pass cancelled halfway leaves the device caches as they were */
  canceller cn = {0, 0.5};
  assert_false(sige_session_regenerate(sd, b, cancel_midway, &cn, &cn.cancel, NULL, NULL, &error));
  assert_int_equal(error->code, SIGE_ERROR_CANCELLED);
  g_clear_error(&error);
  assert_true(sige_session_regenerate(sc, b, NULL, NULL, NULL, &w1, NULL, &error));
  assert_true(sige_session_regenerate(sd, b, NULL, NULL, NULL, &g1, NULL, &error));
  assert_ok(error, "sparse pass on the device");
  assert_true(sige_session_last_stats(sd)->was_sparse);
  assert_int_equal(sige_session_last_stats(sc)->macs, sige_session_last_stats(sd)->macs);
  assert_true(sige_session_last_stats(sd)->macs < sige_session_last_stats(sd)->dense_macs);
  g_snprintf(what, sizeof what, "%s%s: sparse edit", name, mc->fp16 ? " fp16" : "");
  assert_floats(w1->data, g1->data, w1->numel, tol, what);
  /* and back: both sessions' caches went through the same edits */
  g_autoptr(sige_tensor) w2 = NULL, g2 = NULL;
  assert_true(sige_session_regenerate(sc, a, NULL, NULL, NULL, &w2, NULL, &error));
  assert_true(sige_session_regenerate(sd, a, NULL, NULL, NULL, &g2, NULL, &error));
  assert_ok(error, "second sparse pass on the device");
  g_snprintf(what, sizeof what, "%s%s: edit and back", name, mc->fp16 ? " fp16" : "");
  assert_floats(w2->data, g2->data, w2->numel, tol, what);
}

static void test_spade(void **state) {
  (void)state;
  const model_case mc = {SIGE_MODEL_SPADE, 0, FALSE};
  check_model(&mc);
}

static void test_gancomp(void **state) {
  (void)state;
  const model_case mc = {SIGE_MODEL_GANCOMP_SPADE, 0, FALSE};
  check_model(&mc);
}

static void test_ddpm(void **state) {
  (void)state;
  const model_case mc = {SIGE_MODEL_DDPM_UNET, 500.0f, FALSE};
  check_model(&mc);
  const model_case half = {SIGE_MODEL_DDPM_UNET, 500.0f, TRUE};
  check_model(&half);
}

static void test_pd(void **state) {
  (void)state;
  const model_case mc = {SIGE_MODEL_PD_UNET, 0.0f, FALSE};
  check_model(&mc);
}

/* SDEdit: the sampler on the host, a model pass per step on the device. */
static void test_sdedit(void **state) {
  (void)state;
  GError *error = NULL;
  g_autoptr(sige_model) m = small_model(SIGE_MODEL_DDPM_UNET);
  g_autoptr(sige_tensor) a = NULL, b = NULL;
  make_inputs(m, &a, &b);
  sige_tensor *outs[2] = {NULL, NULL};
  for (int i = 0; i < 2; i++) {
    sige_session_options o;
    sige_session_options_init(&o);
    o.n_threads = 2;
    o.device = i ? SIGE_TEST_DEVICE : SIGE_DEVICE_CPU;
    o.sdedit = TRUE;
    o.full_pass_above = 2.0;
    o.sampler.sample_steps = 3;
    g_autoptr(sige_session) s = sige_session_new(m, &o, &error);
    assert_ok(error, "SDEdit session");
    assert_true(sige_session_snapshot(s, a, NULL, &error));
    assert_true(sige_session_regenerate(s, b, NULL, NULL, NULL, &outs[i], NULL, &error));
    assert_ok(error, "SDEdit");
  }
  assert_floats(outs[0]->data, outs[1]->data, outs[0]->numel, TOL_MODEL, "SDEdit, 3 steps");
  sige_tensor_free(outs[0]);
  sige_tensor_free(outs[1]);
}

int main(void) {
  if (SIGE_TEST_DEVICE == SIGE_DEVICE_CUDA) {
    GError *error = NULL;
    g_autofree char *desc = NULL;
    if (!sige_cuda_probe(&desc, &error)) {
      /* a CUDA build on a machine without a GPU: nothing here can pass */
      printf("skipped: %s\n", error->message);
      g_error_free(error);
      return 77;
    }
    printf("# device: %s\n", desc);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_device_choice), cmocka_unit_test(test_tensors),
      cmocka_unit_test(test_conv2d),        cmocka_unit_test(test_linear),
      cmocka_unit_test(test_elementwise),   cmocka_unit_test(test_norms),
      cmocka_unit_test(test_resample),      cmocka_unit_test(test_attention),
      cmocka_unit_test(test_token_ops),
      cmocka_unit_test(test_sparse_kernels), cmocka_unit_test(test_undo_log),
      cmocka_unit_test(test_spade),         cmocka_unit_test(test_gancomp),
      cmocka_unit_test(test_ddpm),          cmocka_unit_test(test_pd),
      cmocka_unit_test(test_sdedit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
