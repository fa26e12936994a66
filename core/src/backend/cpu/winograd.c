/* Winograd convolution F(m x m, 3x3) for stride-1 3x3 convolutions on the
 * CPU, m = 4 (6x6 input tiles) or m = 2 (4x4 input tiles).
 *
 * The output planes are cut into m x m tiles; each tile reads an
 * (m+2) x (m+2) input patch (zero outside the plane, which is the padding).
 * In the transformed domain a tile is alpha^2 = (m+2)^2 independent
 * products, so a layer becomes alpha^2 GEMMs [Cout x Cin] x [Cin x tiles]:
 * 36 multiplications per output tile and channel pair for m = 4 instead of
 * the 144 of the direct convolution (16 instead of 36 for m = 2).
 *
 * The same code runs dense maps (NCHW, one image or several, with the
 * layer's padding) and gathered block batches (CNHW, no padding): a
 * sparse layer's block of side b gives a (b-2) x (b-2) output, i.e. whole
 * tiles when b - 2 is a multiple of m, and partial tiles otherwise (their
 * patch reads zeros past the block and only the valid outputs are kept).
 *
 * The transformed weights (alpha^2 x Cout x Cin floats, 4x the weights for
 * m = 4) are made on first use and kept on the weight tensor
 * (sige_tensor.derived). */
#include <cblas.h>
#include <string.h>

#include "../../buffer.h"
#include "cpu_internal.h"
#include "sige/error.h"
#include "winograd.h"

/* The transformed weights of one tensor, for one m. */
typedef struct {
  struct sige_tensor_derived base;
  int m, cout, cin;
  float *u; /* [alpha^2][Cout][Cin] */
} wino_weights;

static void wino_weights_free(struct sige_tensor_derived *d) {
  wino_weights *w = (wino_weights *)d;
  sige_aligned_free(w->u);
  g_free(w);
}

/* A fingerprint of the contents: 61 samples spread over the tensor and its
 * size, enough to notice weights overwritten after a conv used them (tests
 * refill tensors) without reading them all on every call. */
static guint64 fingerprint(const sige_tensor *t) {
  guint64 h = 1469598103934665603ull ^ t->numel ^ ((guint64)t->storage << 40);
  const size_t n = t->numel;
  for (size_t i = 0; i < 61 && n > 0; i++) {
    const size_t at = i * (n - 1) / 60;
    guint32 bits = 0;
    /* half weights (storage F16) are 2 bytes a value */
    if (t->storage == SIGE_STORAGE_F16)
      bits = t->data16[at];
    else
      memcpy(&bits, t->data + at, sizeof bits);
    h = (h ^ bits) * 1099511628211ull;
  }
  return h;
}

/* G g G^T for one 3x3 kernel, in double (the weights are transformed once,
 * so their rounding error should not add to the product's). */
static void transform_kernel(int m, const float *g, float *u, size_t stride) {
  static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                  {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                  {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                  {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                  {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                  {0, 0, 1}};
  static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  const int a = m + 2;
  const double(*G)[3] = m == 4 ? G4 : G2;
  double t[6][3];
  for (int i = 0; i < a; i++)
    for (int j = 0; j < 3; j++)
      t[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
  for (int i = 0; i < a; i++)
    for (int j = 0; j < a; j++)
      u[(size_t)(i * a + j) * stride] =
          (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
}

static const wino_weights *prepared_weights(sige_ctx *ctx, const sige_tensor *weight, int m,
                                            GError **error) {
  sige_tensor *wt = (sige_tensor *)weight; /* derived data is a cache, not the contents */
  const guint64 fp = fingerprint(weight);
  wino_weights *have = (wino_weights *)g_atomic_pointer_get(&wt->derived);
  if (have && have->base.destroy == wino_weights_free && have->m == m &&
      have->base.fingerprint == fp)
    return have;
  const int cout = SIGE_N(weight), cin = SIGE_C(weight), a2 = (m + 2) * (m + 2);
  const size_t pairs = (size_t)cout * (size_t)cin;
  wino_weights *w = g_new0(wino_weights, 1);
  w->u = sige_aligned_alloc((size_t)a2 * pairs * sizeof(float));
  if (!w->u) {
    g_free(w);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM,
                "conv2d: out of memory for the Winograd weights of a %dx%d 3x3 layer (%zu MiB)",
                cout, cin, ((size_t)a2 * pairs * sizeof(float)) >> 20);
    return NULL;
  }
  w->base.destroy = wino_weights_free;
  w->base.bytes = (size_t)a2 * pairs * sizeof(float);
  w->base.fingerprint = fp;
  w->m = m;
  w->cout = cout;
  w->cin = cin;
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (size_t pc = 0; pc < pairs; pc++) {
    /* half weights (storage F16): the kernel's 9 values widened first */
    float g[9];
    const float *src = g;
    if (weight->storage == SIGE_STORAGE_F16)
      sige_f16_to_f32_n(weight->data16 + pc * 9, g, 9);
    else
      src = weight->data + pc * 9;
    transform_kernel(m, src, w->u + pc, pairs);
  }
  /* replace what was there (another m, or stale contents); a context runs
   * its ops one at a time, and a model's weights serve one context */
  if (g_atomic_pointer_compare_and_exchange(&wt->derived, (struct sige_tensor_derived *)have,
                                            (struct sige_tensor_derived *)w)) {
    if (have) have->base.destroy(&have->base);
    sige_ctx_add_prepared_bytes(ctx, w->base.bytes);
    return w;
  }
  wino_weights_free(&w->base);
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              "conv2d: the weight tensor's Winograd data changed under a concurrent call");
  return NULL;
}

/* B^T d B for a 6x6 patch (rows of 6, stride ld), into v[k * vs], k < 36. */
static inline void in_tf4(const float *d, int ld, float *v, size_t vs) {
  float t[6][6];
  for (int j = 0; j < 6; j++) {
    const float d0 = d[0 * ld + j], d1 = d[1 * ld + j], d2 = d[2 * ld + j], d3 = d[3 * ld + j],
                d4 = d[4 * ld + j], d5 = d[5 * ld + j];
    t[0][j] = 4 * d0 - 5 * d2 + d4;
    t[1][j] = -4 * (d1 + d2) + d3 + d4;
    t[2][j] = 4 * (d1 - d2) - d3 + d4;
    t[3][j] = 2 * (d3 - d1) - d2 + d4;
    t[4][j] = 2 * (d1 - d3) - d2 + d4;
    t[5][j] = 4 * d1 - 5 * d3 + d5;
  }
  for (int i = 0; i < 6; i++) {
    const float d0 = t[i][0], d1 = t[i][1], d2 = t[i][2], d3 = t[i][3], d4 = t[i][4],
                d5 = t[i][5];
    float *o = v + (size_t)(i * 6) * vs;
    o[0 * vs] = 4 * d0 - 5 * d2 + d4;
    o[1 * vs] = -4 * (d1 + d2) + d3 + d4;
    o[2 * vs] = 4 * (d1 - d2) - d3 + d4;
    o[3 * vs] = 2 * (d3 - d1) - d2 + d4;
    o[4 * vs] = 2 * (d1 - d3) - d2 + d4;
    o[5 * vs] = 4 * d1 - 5 * d3 + d5;
  }
}

/* A^T M A for m = 4: 36 values at s[k * ss] -> a 4x4 tile (rows of 4). */
static inline void out_tf4(const float *s, size_t ss, float o[4][4]) {
  float t[4][6];
  for (int j = 0; j < 6; j++) {
    const float m0 = s[(0 * 6 + j) * ss], m1 = s[(1 * 6 + j) * ss], m2 = s[(2 * 6 + j) * ss],
                m3 = s[(3 * 6 + j) * ss], m4 = s[(4 * 6 + j) * ss], m5 = s[(5 * 6 + j) * ss];
    t[0][j] = m0 + m1 + m2 + m3 + m4;
    t[1][j] = m1 - m2 + 2 * (m3 - m4);
    t[2][j] = m1 + m2 + 4 * (m3 + m4);
    t[3][j] = m1 - m2 + 8 * (m3 - m4) + m5;
  }
  for (int i = 0; i < 4; i++) {
    const float m0 = t[i][0], m1 = t[i][1], m2 = t[i][2], m3 = t[i][3], m4 = t[i][4],
                m5 = t[i][5];
    o[i][0] = m0 + m1 + m2 + m3 + m4;
    o[i][1] = m1 - m2 + 2 * (m3 - m4);
    o[i][2] = m1 + m2 + 4 * (m3 + m4);
    o[i][3] = m1 - m2 + 8 * (m3 - m4) + m5;
  }
}

static inline void in_tf2(const float *d, int ld, float *v, size_t vs) {
  float t[4][4];
  for (int j = 0; j < 4; j++) {
    const float d0 = d[0 * ld + j], d1 = d[1 * ld + j], d2 = d[2 * ld + j], d3 = d[3 * ld + j];
    t[0][j] = d0 - d2;
    t[1][j] = d1 + d2;
    t[2][j] = d2 - d1;
    t[3][j] = d1 - d3;
  }
  for (int i = 0; i < 4; i++) {
    float *o = v + (size_t)(i * 4) * vs;
    o[0 * vs] = t[i][0] - t[i][2];
    o[1 * vs] = t[i][1] + t[i][2];
    o[2 * vs] = t[i][2] - t[i][1];
    o[3 * vs] = t[i][1] - t[i][3];
  }
}

static inline void out_tf2(const float *s, size_t ss, float o[4][4]) {
  float t[2][4];
  for (int j = 0; j < 4; j++) {
    const float m0 = s[(0 * 4 + j) * ss], m1 = s[(1 * 4 + j) * ss], m2 = s[(2 * 4 + j) * ss],
                m3 = s[(3 * 4 + j) * ss];
    t[0][j] = m0 + m1 + m2;
    t[1][j] = m1 - m2 - m3;
  }
  for (int i = 0; i < 2; i++) {
    o[i][0] = t[i][0] + t[i][1] + t[i][2];
    o[i][1] = t[i][1] - t[i][2] - t[i][3];
  }
}

typedef struct {
  const float *x;
  float *out;
  const float *bias;
  int n, cin, h, w, cout, ho, wo, pt, pl, m;
  size_t x_cs, x_is, o_cs, o_is;
  int tiles_h, tiles_w; /* per plane */
  int threads;
} wino_job;

/* Input transform of tiles [p0, p0 + np) into v ([alpha^2][Cin][np]). */
static void input_transform(const wino_job *j, int p0, int np, float *v) {
  const int m = j->m, a = m + 2, tpp = j->tiles_h * j->tiles_w;
  const size_t vs = (size_t)j->cin * (size_t)np;
#pragma omp parallel for collapse(2) num_threads(j->threads) schedule(static)
  for (int ci = 0; ci < j->cin; ci++) {
    for (int q = 0; q < np; q++) {
      const int p = p0 + q, img = p / tpp, t = p % tpp;
      const int r0 = (t / j->tiles_w) * m - j->pt, c0 = (t % j->tiles_w) * m - j->pl;
      const float *plane = j->x + (size_t)img * j->x_is + (size_t)ci * j->x_cs;
      float *dst = v + (size_t)ci * np + q;
      if (r0 >= 0 && c0 >= 0 && r0 + a <= j->h && c0 + a <= j->w) {
        const float *src = plane + (size_t)r0 * j->w + c0;
        if (m == 4)
          in_tf4(src, j->w, dst, vs);
        else
          in_tf2(src, j->w, dst, vs);
        continue;
      }
      float d[36];
      for (int r = 0; r < a; r++) {
        const int y = r0 + r;
        for (int c = 0; c < a; c++) {
          const int xx = c0 + c;
          d[r * a + c] = y >= 0 && y < j->h && xx >= 0 && xx < j->w ? plane[(size_t)y * j->w + xx]
                                                                     : 0.0f;
        }
      }
      if (m == 4)
        in_tf4(d, a, dst, vs);
      else
        in_tf2(d, a, dst, vs);
    }
  }
}

/* Output transform of mm ([alpha^2][Cout][np]) into the output tiles. */
static void output_transform(const wino_job *j, int p0, int np, const float *mm) {
  const int m = j->m, tpp = j->tiles_h * j->tiles_w;
  const size_t ss = (size_t)j->cout * (size_t)np;
#pragma omp parallel for collapse(2) num_threads(j->threads) schedule(static)
  for (int co = 0; co < j->cout; co++) {
    for (int q = 0; q < np; q++) {
      const int p = p0 + q, img = p / tpp, t = p % tpp;
      const int r0 = (t / j->tiles_w) * m, c0 = (t % j->tiles_w) * m;
      float o[4][4];
      if (m == 4)
        out_tf4(mm + (size_t)co * np + q, ss, o);
      else
        out_tf2(mm + (size_t)co * np + q, ss, o);
      const float b = j->bias ? j->bias[co] : 0.0f;
      float *plane = j->out + (size_t)img * j->o_is + (size_t)co * j->o_cs;
      const int rows = MIN(m, j->ho - r0), cols = MIN(m, j->wo - c0);
      for (int r = 0; r < rows; r++) {
        float *orow = plane + (size_t)(r0 + r) * j->wo + c0;
        for (int c = 0; c < cols; c++) orow[c] = o[r][c] + b;
      }
    }
  }
}

/* Tiles per chunk: the transformed input and products of a chunk take
 * alpha^2 (Cin + Cout) floats per tile; a quarter of the CPU scratch limit
 * keeps both near the caches' reach while the GEMMs stay wide. */
static int chunk_tiles(int a2, int cin, int cout, size_t total) {
  const size_t per = (size_t)a2 * ((size_t)cin + (size_t)cout);
  size_t c = (SIGE_CPU_SCRATCH_LIMIT / 4) / per;
  if (c < 16) c = 16;
  return (int)MIN(c, total);
}

gboolean sige_cpu_conv_winograd(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                                const sige_tensor *bias, const sige_conv2d_params *p, int m,
                                sige_tensor *out, uint64_t *mults, GError **error) {
  const wino_weights *ww = prepared_weights(ctx, weight, m, error);
  if (!ww) return FALSE;
  wino_job j = {
      .x = x->data, .out = out->data, .bias = bias ? bias->data : NULL,
      .n = SIGE_N(x), .cin = SIGE_C(x), .h = SIGE_H(x), .w = SIGE_W(x),
      .cout = SIGE_N(weight), .ho = SIGE_H(out), .wo = SIGE_W(out),
      .pt = p->pad_top, .pl = p->pad_left, .m = m,
      .x_cs = sige_cpu_chan_stride(x), .x_is = sige_cpu_img_stride(x),
      .o_cs = sige_cpu_chan_stride(out), .o_is = sige_cpu_img_stride(out),
      .threads = sige_ctx_threads(ctx),
  };
  j.tiles_h = (j.ho + m - 1) / m;
  j.tiles_w = (j.wo + m - 1) / m;
  const int a2 = (m + 2) * (m + 2);
  const size_t total = (size_t)j.n * j.tiles_h * j.tiles_w;
  if (total > G_MAXINT) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "conv2d: %zu Winograd tiles is too many",
                total);
    return FALSE;
  }
  const int chunk = chunk_tiles(a2, j.cin, j.cout, total);
  float *v = sige_ctx_scratch(ctx, 0, (size_t)a2 * j.cin * chunk, error);
  if (!v) return FALSE;
  float *mm = sige_ctx_scratch(ctx, 1, (size_t)a2 * j.cout * chunk, error);
  if (!mm) return FALSE;
  const size_t pairs = (size_t)j.cout * (size_t)j.cin;
  for (int p0 = 0; p0 < (int)total; p0 += chunk) {
    const int np = MIN(chunk, (int)total - p0);
    input_transform(&j, p0, np, v);
    /* the alpha^2 products are independent: one single-threaded GEMM per
     * task, handed out dynamically so that a thread slowed by another
     * process only takes fewer of them */
#pragma omp parallel for num_threads(j.threads) schedule(dynamic, 1)
    for (int k = 0; k < a2; k++) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j.cout, np, j.cin, 1.0f,
                  ww->u + (size_t)k * pairs, j.cin, v + (size_t)k * j.cin * np, np, 0.0f,
                  mm + (size_t)k * j.cout * np, np);
    }
    output_transform(&j, p0, np, mm);
  }
  *mults = (uint64_t)a2 * pairs * total;
  return TRUE;
}
