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
 * The transformed weights are kept on the weight tensor while the
 * context's limit allows (sige_ctx_set_winograd_keep_bytes), else made per
 * call, a band of output channels at a time (see transform_band). */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "../../buffer.h"
#include "../../sparse/sparse_internal.h"
#include "cpu_internal.h"
#include "sige/error.h"
#include "winograd.h"

/* Beyond the context's limit of kept weights, the weights are transformed
 * per call, one band of output channels at a time, into a per-thread buffer
 * that the band's alpha^2 GEMMs then read from the caches.  Keeping the
 * whole transformed layer (alpha^2 x Cout x Cin floats: 4x the 3x3
 * weights, 670 MiB for GauGAN at ngf 64) is what kept a GauGAN session far
 * above 1 GB; making them per call made a DDPM step's dense pass 1.5x and
 * its sparse pass 1.08x slower (2392 / 585 ms against 1594 / 540 kept,
 * quiet machine), hence the limit.  A band costs about
 * 11 ns of CPU per channel pair here (measured alone, a loaded machine),
 * about 45 ms per GauGAN pass on one thread; and the GEMMs read it from the
 * caches instead of 144 bytes per channel pair from memory.  The float32
 * transform (the kept weights were made in double) moved the worst unit
 * test error from 7.3x to 10.9x the direct convolution's tolerance; the
 * reference checks all pass. */

/* Output channels per band: the band's transformed weights take alpha^2 x
 * band x Cin floats per thread (18 MiB for 128 rows of 1024 channels);
 * fewer rows made the GEMMs short and repacked their other operand once per
 * band, which cost more than the transform itself. */
static int band_rows(int cout) { return MIN(128, cout); }

/* Lanes of the weight transform: input channels handled together, so that
 * each of its steps is one vector operation. */
#define WT_LANES 8

/* y = G x along one axis, for WT_LANES kernels at once: x0..x2 -> y[0..a). */
static inline void g4_apply(const float *restrict x0, const float *restrict x1,
                            const float *restrict x2, float *restrict y, size_t ys) {
  for (int l = 0; l < WT_LANES; l++) {
    const float g0 = x0[l], g1 = x1[l], g2 = x2[l];
    const float s = g0 + g2, p = g0 * (1.0f / 24) + g2 * (1.0f / 6), q = g1 * (1.0f / 12);
    y[0 * ys + l] = g0 * 0.25f;
    y[1 * ys + l] = (s + g1) * (-1.0f / 6);
    y[2 * ys + l] = (s - g1) * (-1.0f / 6);
    y[3 * ys + l] = p + q;
    y[4 * ys + l] = p - q;
    y[5 * ys + l] = g2;
  }
}

static inline void g2_apply(const float *restrict x0, const float *restrict x1,
                            const float *restrict x2, float *restrict y, size_t ys) {
  for (int l = 0; l < WT_LANES; l++) {
    const float g0 = x0[l], g1 = x1[l], g2 = x2[l];
    const float s = (g0 + g2) * 0.5f, h = g1 * 0.5f;
    y[0 * ys + l] = g0;
    y[1 * ys + l] = s + h;
    y[2 * ys + l] = s - h;
    y[3 * ys + l] = g2;
  }
}

/* Row stride of the transformed weights: Cin and 16 floats more, so that
 * the alpha^2 rows a band row writes at once do not all fall on the same
 * cache sets (Cin is often a multiple of 1024 floats). */
static size_t band_ld(int cin) { return (size_t)cin + 16; }

/* U = G g G^T for the output channels [co0, co0 + rows) and all input
 * channels, into u[r][k][ci] (k < alpha^2; rows of band_ld(Cin) floats, so
 * product k's [rows x Cin] matrix starts at u + k ld with leading dimension
 * alpha^2 ld), in float32 with
 * G's common terms written out:
 * F(4x4): G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
 *              1/24 -1/12 1/6; 0 0 1],
 * F(2x2): G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static void transform_band(int m, const sige_tensor *weight, int cin, int co0, int rows,
                           float *u) {
  const int a = m + 2;
  const size_t ld = band_ld(cin), row_floats = (size_t)a * a * ld;
  const gboolean half = weight->storage == SIGE_STORAGE_F16; /* half weights, widened here */
  for (int r = 0; r < rows; r++) {
    const size_t row_at = (size_t)(co0 + r) * (size_t)cin * 9;
    for (int ci0 = 0; ci0 < cin; ci0 += WT_LANES) {
      const int nl = MIN(WT_LANES, cin - ci0);
      float g[9][WT_LANES] __attribute__((aligned(32)));
      float t[6][3][WT_LANES] __attribute__((aligned(32)));
      float o[6][6][WT_LANES] __attribute__((aligned(32)));
      if (nl < WT_LANES) memset(g, 0, sizeof g);
      for (int l = 0; l < nl; l++)
        for (int q = 0; q < 9; q++) {
          const size_t at = row_at + (size_t)(ci0 + l) * 9 + q;
          g[q][l] = half ? sige_f16_to_f32(weight->data16[at]) : weight->data[at];
        }
      /* t = G g (columns of g: taps j, 3 + j, 6 + j), then o = t G^T */
      for (int j = 0; j < 3; j++) {
        if (m == 4)
          g4_apply(g[j], g[3 + j], g[6 + j], t[0][j], 3 * WT_LANES);
        else
          g2_apply(g[j], g[3 + j], g[6 + j], t[0][j], 3 * WT_LANES);
      }
      for (int i = 0; i < a; i++) {
        if (m == 4)
          g4_apply(t[i][0], t[i][1], t[i][2], o[i][0], WT_LANES);
        else
          g2_apply(t[i][0], t[i][1], t[i][2], o[i][0], WT_LANES);
      }
      for (int i = 0; i < a; i++)
        for (int jj = 0; jj < a; jj++) {
          float *dst = u + (size_t)r * row_floats + (size_t)(i * a + jj) * ld + ci0;
          if (nl == WT_LANES)
            memcpy(dst, o[i][jj], sizeof o[i][jj]);
          else
            memcpy(dst, o[i][jj], (size_t)nl * sizeof(float));
        }
    }
  }
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

/* A layer's transformed weights kept on its weight tensor, [alpha^2][Cout]
 * rows of band_ld(Cin) floats: product k's [Cout x Cin] matrix is
 * contiguous, which its GEMMs read faster than a band's interleaved rows. */
typedef struct {
  struct sige_tensor_derived base;
  int m;
  float *u;
} wino_kept;

static void wino_kept_free(struct sige_tensor_derived *d) {
  wino_kept *w = (wino_kept *)d;
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
    if (t->storage == SIGE_STORAGE_F16) /* half weights: 2 bytes a value */
      bits = t->data16[at];
    else
      memcpy(&bits, t->data + at, sizeof bits);
    h = (h ^ bits) * 1099511628211ull;
  }
  return h;
}

/* Where a layer's transformed weights come from for one call: kept on the
 * tensor (made once while the context's limit allows), or made per call a
 * band at a time into per-thread buffers. */
typedef struct {
  const float *kept; /* all bands, or NULL */
  float *ub;         /* per-thread band buffers when not kept */
} wino_u;

static const float *kept_weights(sige_ctx *ctx, const sige_tensor *weight, int m) {
  sige_tensor *wt = (sige_tensor *)weight; /* derived data is a cache, not the contents */
  const guint64 fp = fingerprint(weight);
  wino_kept *have = (wino_kept *)g_atomic_pointer_get(&wt->derived);
  if (have && have->base.destroy == wino_kept_free && have->m == m &&
      have->base.fingerprint == fp)
    return have->u;
  const int cout = SIGE_N(weight), cin = SIGE_C(weight), a2 = (m + 2) * (m + 2);
  const int band = band_rows(cout), nbands = (cout + band - 1) / band;
  const size_t ld = band_ld(cin), band_floats = (size_t)a2 * (size_t)band * ld;
  const size_t bytes = (size_t)a2 * (size_t)cout * ld * sizeof(float);
  if (sige_ctx_prepared_bytes(ctx) + bytes > sige_ctx_winograd_keep_bytes(ctx)) return NULL;
  float *u = sige_aligned_alloc(bytes);
  float *tmp = u ? g_try_malloc(band_floats * sizeof(float) * (size_t)sige_ctx_threads(ctx)) : NULL;
  if (!tmp) { /* per call instead: less memory */
    sige_aligned_free(u);
    return NULL;
  }
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(dynamic, 1)
  for (int b = 0; b < nbands; b++) {
    const int co0 = b * band, rows = MIN(band, cout - co0);
    float *t = tmp + (size_t)omp_get_thread_num() * band_floats;
    transform_band(m, weight, cin, co0, rows, t);
    for (int r = 0; r < rows; r++)
      for (int k = 0; k < a2; k++)
        memcpy(u + ((size_t)k * cout + co0 + r) * ld, t + ((size_t)r * a2 + k) * ld,
               (size_t)cin * sizeof(float));
  }
  g_free(tmp);
  wino_kept *w = g_new0(wino_kept, 1);
  w->base.destroy = wino_kept_free;
  w->base.bytes = bytes;
  w->base.fingerprint = fp;
  w->m = m;
  w->u = u;
  /* replace what was there (another m, or stale contents); a context runs
   * its ops one at a time, and a model's weights serve one context */
  if (g_atomic_pointer_compare_and_exchange(&wt->derived, (struct sige_tensor_derived *)have,
                                            (struct sige_tensor_derived *)w)) {
    if (have) have->base.destroy(&have->base);
    sige_ctx_add_prepared_bytes(ctx, bytes);
    return u;
  }
  wino_kept_free(&w->base);
  return NULL;
}

static gboolean wino_u_prepare(sige_ctx *ctx, int m, const sige_tensor *weight, int threads,
                               wino_u *wu, GError **error) {
  wu->ub = NULL;
  if ((wu->kept = kept_weights(ctx, weight, m))) return TRUE;
  const size_t a2 = (size_t)(m + 2) * (size_t)(m + 2);
  wu->ub = sige_ctx_scratch(
      ctx, 2, a2 * (size_t)band_rows(SIGE_N(weight)) * band_ld(SIGE_C(weight)) * (size_t)threads,
      error);
  return wu->ub != NULL;
}

/* mm[k] = U[k] v[k] for the alpha^2 planes k of a chunk of np tiles (v:
 * [alpha^2][Cin][np], mm: [alpha^2][Cout][np]), U the kept transformed
 * weights or those made here, a band of output channels at a time: the one
 * place that reads the transformed weights, for the dense and the fused
 * sparse path alike.  A band's alpha^2 products are independent of the
 * other bands': one band per task (made by the thread that runs its
 * single-threaded GEMMs), handed out dynamically so that a thread slowed by
 * another process only takes fewer of them. */
static void transformed_gemms(int m, const sige_tensor *weight, int cin, int cout, int np,
                              const float *v, float *mm, const wino_u *wu, int threads) {
  const int a2 = (m + 2) * (m + 2);
  const int band = band_rows(cout), nbands = (cout + band - 1) / band;
  const size_t ld = band_ld(cin), band_floats = (size_t)a2 * (size_t)band * ld;
  if (wu->kept) {
    /* kept: one GEMM per product over all of Cout, so that each v[k] is
     * packed once, not once per band */
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int k = 0; k < a2; k++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, np, cin, 1.0f,
                  wu->kept + (size_t)k * cout * ld, (int)ld, v + (size_t)k * cin * np, np, 0.0f,
                  mm + (size_t)k * cout * np, np);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int b = 0; b < nbands; b++) {
    const int co0 = b * band, rows = MIN(band, cout - co0);
    float *u = wu->ub + (size_t)omp_get_thread_num() * band_floats;
    transform_band(m, weight, cin, co0, rows, u);
    for (int k = 0; k < a2; k++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, np, cin, 1.0f,
                  u + (size_t)k * ld, (int)((size_t)a2 * ld), v + (size_t)k * cin * np, np, 0.0f,
                  mm + ((size_t)k * cout + co0) * np, np);
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
  wino_u wu;
  if (!wino_u_prepare(ctx, m, weight, j.threads, &wu, error)) return FALSE;
  for (int p0 = 0; p0 < (int)total; p0 += chunk) {
    const int np = MIN(chunk, (int)total - p0);
    input_transform(&j, p0, np, v);
    transformed_gemms(m, weight, j.cin, j.cout, np, v, mm, &wu, j.threads);
    output_transform(&j, p0, np, mm);
  }
  *mults = (uint64_t)a2 * pairs * total;
  return TRUE;
}

/* ---- the fused sparse conv: gather + input transform, GEMMs, output
 * transform + scatter ----------------------------------------------------
 * A block of side b gives an o x o output, o = b - 2, cut into ceil(o/4)^2
 * F(4x4) tiles (one for the models' 6x6 blocks).  Tile (ty, tx) of a block
 * reads block rows and columns [4t, 4t + 6): what lies past the block's
 * b x b window or outside the logical source is zero, as in the gathered
 * batch; only the tile's outputs inside the o x o block are written. */
typedef struct {
  const sige_sparse_conv_io *io;
  const sige_active_blocks *ab;
  const sige_block_geometry *g;
  sige_tensor *dst;
  int cin, cout, b, o, tps, tpb;
  int lh, lw, sw;     /* source: logical size, row length of the storage */
  size_t splane;      /* source channel plane */
  int h, w, rw;       /* dst size, residual row length */
  size_t rplane;
  int threads;
} fused_job;

static inline float src_at(const fused_job *f, size_t plane_at, int y, int x) {
  const sige_sparse_conv_io *io = f->io;
  if (io->map) {
    y = io->map->rows[y];
    x = io->map->cols[x];
  }
  const size_t at = plane_at + (size_t)y * f->sw + x;
  return io->src->storage == SIGE_STORAGE_F16 ? sige_f16_to_f32(io->src->data16[at])
                                              : io->src->data[at];
}

static void fused_input(const fused_job *f, int p0, int np, float *v) {
  const sige_sparse_conv_io *io = f->io;
  const size_t vs = (size_t)f->cin * (size_t)np;
  const gboolean affine = io->scale || io->shift || io->act_in != SIGE_ACT_NONE;
#pragma omp parallel for collapse(2) num_threads(f->threads) schedule(static)
  for (int ci = 0; ci < f->cin; ci++) {
    for (int q = 0; q < np; q++) {
      const int p = p0 + q, blk = p / f->tpb, t = p % f->tpb;
      const int br0 = (t / f->tps) * 4, bc0 = (t % f->tps) * 4;
      /* the window's rows / cols inside the block and the logical source */
      int r_lo = 0, r_hi = MIN(6, f->b - br0), c_lo = 0, c_hi = MIN(6, f->b - bc0);
      float d[36] = {0};
      if (io->src) {
        const int y0 = f->ab->corners[2 * blk] + br0, x0 = f->ab->corners[2 * blk + 1] + bc0;
        r_lo = MAX(0, -y0);
        r_hi = MIN(r_hi, f->lh - y0);
        c_lo = MAX(0, -x0);
        c_hi = MIN(c_hi, f->lw - x0);
        const size_t plane_at = (size_t)ci * f->splane;
        const float s = io->scale ? io->scale[ci] : 1.0f, sh = io->shift ? io->shift[ci] : 0.0f;
        const gboolean direct = !io->map && io->src->storage == SIGE_STORAGE_F32;
        const gboolean whole = r_lo == 0 && c_lo == 0 && r_hi == 6 && c_hi == 6;
        /* the common case, a whole window of a float map: transform in place */
        if (direct && !affine && whole) {
          in_tf4(io->src->data + plane_at + (size_t)y0 * f->sw + x0, f->sw,
                 v + (size_t)ci * np + q, vs);
          continue;
        }
        for (int r = r_lo; r < r_hi; r++) {
          float *row = d + r * 6;
          if (direct) {
            const float *srow = io->src->data + plane_at + (size_t)(y0 + r) * f->sw + x0;
            for (int c = c_lo; c < c_hi; c++) row[c] = srow[c];
          } else {
            for (int c = c_lo; c < c_hi; c++) row[c] = src_at(f, plane_at, y0 + r, x0 + c);
          }
          if (affine && !whole) {
            for (int c = c_lo; c < c_hi; c++) row[c] = row[c] * s + sh;
            sige_act_inplace(row + c_lo, (size_t)MAX(0, c_hi - c_lo), io->act_in);
          }
        }
        /* a whole window: one 36-wide call, in vector lanes (see sige_cpu_gather) */
        if (affine && whole) {
          for (int k = 0; k < 36; k++) d[k] = d[k] * s + sh;
          sige_act_inplace(d, 36, io->act_in);
        }
      } else {
        const float *bp =
            io->blocks->data + (((size_t)ci * f->ab->n + blk) * f->b + br0) * f->b + bc0;
        for (int r = r_lo; r < r_hi; r++)
          for (int c = c_lo; c < c_hi; c++) d[r * 6 + c] = bp[(size_t)r * f->b + c];
      }
      in_tf4(d, 6, v + (size_t)ci * np + q, vs);
    }
  }
}

static void fused_output(const fused_job *f, int p0, int np, const float *mm) {
  const sige_sparse_conv_io *io = f->io;
  const size_t ss = (size_t)f->cout * (size_t)np;
  const sige_tensor *res = io->residual;
  const gboolean half = f->dst->storage == SIGE_STORAGE_F16;
#pragma omp parallel for collapse(2) num_threads(f->threads) schedule(static)
  for (int co = 0; co < f->cout; co++) {
    for (int q = 0; q < np; q++) {
      const int p = p0 + q, blk = p / f->tpb, t = p % f->tpb;
      const sige_tile bt = sige_block_tile(f->g, f->ab->corners + 2 * blk, f->h, f->w);
      if (bt.rows == 0) continue;
      /* the tile's outputs, block-local, clipped to the block and dst */
      const int i0 = (t / f->tps) * 4, j0 = (t % f->tps) * 4;
      const int ilo = MAX(i0, bt.br), ihi = MIN(MIN(i0 + 4, f->o), bt.br + bt.rows);
      const int jlo = MAX(j0, bt.bc), jhi = MIN(MIN(j0 + 4, f->o), bt.bc + bt.cols);
      if (ilo >= ihi || jlo >= jhi) continue;
      float o[4][4];
      out_tf4(mm + (size_t)co * np + q, ss, o);
      const float bias = io->bias ? io->bias->data[co] : 0.0f;
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) o[i][j] += bias;
      sige_act_inplace(&o[0][0], 16, io->act_out);
      const int oy = bt.r0 - bt.br, ox = bt.c0 - bt.bc; /* dst position of block (0, 0) */
      for (int i = ilo; i < ihi; i++) {
        const int y = oy + i;
        const size_t at = ((size_t)co * f->h + y) * f->w;
        size_t rrow = 0;
        if (res) rrow = (size_t)co * f->rplane + (size_t)(io->rmap ? io->rmap->rows[y] : y) * f->rw;
        for (int j = jlo; j < jhi; j++) {
          const int x = ox + j;
          float val = o[i - i0][j - j0];
          if (res) {
            const size_t ra = rrow + (size_t)(io->rmap ? io->rmap->cols[x] : x);
            val = val + (res->storage == SIGE_STORAGE_F16 ? sige_f16_to_f32(res->data16[ra])
                                                          : res->data[ra]);
          }
          if (half)
            f->dst->data16[at + x] = sige_f32_to_f16(val);
          else
            f->dst->data[at + x] = val;
        }
      }
    }
  }
}

gboolean sige_cpu_sparse_conv_winograd(sige_ctx *ctx, const sige_sparse_conv_io *io,
                                       const sige_block_geometry *g,
                                       const sige_active_blocks *ab, sige_tensor *dst,
                                       uint64_t *mults, GError **error) {
  fused_job f = {
      .io = io, .ab = ab, .g = g, .dst = dst,
      .cin = SIGE_C(io->weight), .cout = SIGE_N(io->weight),
      .b = g->block, .o = g->out_block,
      .h = SIGE_H(dst), .w = SIGE_W(dst),
      .threads = sige_ctx_threads(ctx),
  };
  f.tps = (f.o + 3) / 4;
  f.tpb = f.tps * f.tps;
  if (io->src) {
    f.lh = io->map ? io->map->h : SIGE_H(io->src);
    f.lw = io->map ? io->map->w : SIGE_W(io->src);
    f.sw = SIGE_W(io->src);
    f.splane = (size_t)SIGE_H(io->src) * (size_t)f.sw;
  }
  if (io->residual) {
    f.rw = SIGE_W(io->residual);
    f.rplane = (size_t)SIGE_H(io->residual) * (size_t)f.rw;
  }
  const int a2 = 36;
  const size_t total = (size_t)ab->n * (size_t)f.tpb;
  if (total > G_MAXINT) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "sparse_conv: %zu Winograd tiles is too many",
                total);
    return FALSE;
  }
  const int chunk = chunk_tiles(a2, f.cin, f.cout, total);
  float *v = sige_ctx_scratch(ctx, 0, (size_t)a2 * f.cin * chunk, error);
  if (!v) return FALSE;
  float *mm = sige_ctx_scratch(ctx, 1, (size_t)a2 * f.cout * chunk, error);
  if (!mm) return FALSE;
  wino_u wu;
  if (!wino_u_prepare(ctx, 4, io->weight, f.threads, &wu, error)) return FALSE;
  for (int p0 = 0; p0 < (int)total; p0 += chunk) {
    const int np = MIN(chunk, (int)total - p0);
    fused_input(&f, p0, np, v);
    transformed_gemms(4, io->weight, f.cin, f.cout, np, v, mm, &wu, f.threads);
    fused_output(&f, p0, np, mm);
  }
  *mults = (uint64_t)a2 * (uint64_t)f.cout * (uint64_t)f.cin * total;
  return TRUE;
}
