/* 2-D convolution on the CPU: im2col + sgemm, with shortcuts for 1x1 and
 * depthwise. */
#include <cblas.h>
#include <string.h>

#include "../../short_copy.h"
#include "../im2col_tiling.h"
#include "../../sparse/sparse_internal.h"
#include "cpu_internal.h"
#include "sige/error.h"
#include "winograd.h"

/* Everything the kernels need, resolved once per call. */
typedef struct {
  const float *x, *w, *bias;
  float *out;
  int n, cin, h, wd, cout, kh, kw, ho, wo, groups;
  const sige_conv2d_params *p;
  size_t x_cs, x_is, o_cs, o_is; /* channel and image strides of x and out */
  int threads;
} conv_job;

/* First and one-past-last output column whose input column wo*stride - pad + kj
 * lies inside [0, in): outside that range the tap reads zero padding. */
static void valid_cols(int kj, int stride, int pad, int in, int out, int *lo, int *hi) {
  int a = pad - kj; /* need wo*stride >= a */
  int l = a <= 0 ? 0 : (a + stride - 1) / stride;
  int b = in - 1 + pad - kj; /* need wo*stride <= b */
  int h = b < 0 ? 0 : b / stride + 1;
  *lo = l < out ? l : out;
  *hi = h < out ? h : out;
  if (*hi < *lo) *hi = *lo;
}

/* im2col for images [n0, n0+nimg) and output rows [r0, r1): row (c, ki, kj) of
 * buf holds, for each column (image, ho, wo), the input value that tap reads.
 * Several images are only packed when r0..r1 spans every row, so the columns
 * line up with a CNHW output. */
static void im2col(const conv_job *j, int n0, int nimg, int r0, int r1, float *buf) {
  const int kk = j->kh * j->kw;
  const int rows = j->cin * kk;
  const size_t img_cols = (size_t)(r1 - r0) * (size_t)j->wo;
  const size_t ncols = img_cols * (size_t)nimg;
  const int sh = j->p->stride_h, sw = j->p->stride_w;
  const int pt = j->p->pad_top, pl = j->p->pad_left;
#pragma omp parallel for num_threads(j->threads) schedule(static)
  for (int r = 0; r < rows; r++) {
    const int c = r / kk, ki = (r % kk) / j->kw, kj = r % j->kw;
    int lo, hi;
    valid_cols(kj, sw, pl, j->wd, j->wo, &lo, &hi);
    for (int im = 0; im < nimg; im++) {
      const float *src = j->x + (size_t)(n0 + im) * j->x_is + (size_t)c * j->x_cs;
      float *dst = buf + (size_t)r * ncols + (size_t)im * img_cols;
      for (int ho = r0; ho < r1; ho++, dst += j->wo) {
        const int hi_row = ho * sh - pt + ki;
        if (hi_row < 0 || hi_row >= j->h) {
          memset(dst, 0, (size_t)j->wo * sizeof(float));
          continue;
        }
        const float *srow = src + (size_t)hi_row * (size_t)j->wd + kj - pl;
        for (int wo = 0; wo < lo; wo++) dst[wo] = 0.0f;
        if (sw == 1) {
          sige_copy_row(dst + lo, srow + lo, hi - lo);
        } else {
          for (int wo = lo; wo < hi; wo++) dst[wo] = srow[(ptrdiff_t)wo * sw];
        }
        for (int wo = hi; wo < j->wo; wo++) dst[wo] = 0.0f;
      }
    }
  }
}

/* Writes the bias into the output block so that sgemm can accumulate onto it
 * with beta = 1 instead of needing a separate pass afterwards. */
static void fill_bias(const conv_job *j, float *c0, size_t ldc, size_t ncols) {
  for (int co = 0; co < j->cout; co++) {
    float *row = c0 + (size_t)co * ldc;
    const float b = j->bias[co];
    for (size_t i = 0; i < ncols; i++) row[i] = b;
  }
}

/* out block = W * B per group; B has Cin*kh*kw rows of ncols floats (stride ldb)
 * and the block starts at c0 with channel stride ldc. */
static void grouped_gemm(const conv_job *j, const float *b, size_t ldb, float *c0, size_t ldc,
                         size_t ncols) {
  const int cg = j->cin / j->groups, og = j->cout / j->groups;
  const int k = cg * j->kh * j->kw;
  float beta = 0.0f;
  if (j->bias) {
    fill_bias(j, c0, ldc, ncols);
    beta = 1.0f;
  }
  for (int g = 0; g < j->groups; g++) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, og, (int)ncols, k, 1.0f,
                j->w + (size_t)g * og * k, k, b + (size_t)g * k * ldb, (int)ldb, beta,
                c0 + (size_t)g * og * ldc, (int)ldc);
  }
}

/* A 1x1 stride-1 unpadded conv is a plain matrix product of the weights and the
 * input planes, which already are the im2col matrix. */
static void conv_1x1(const conv_job *j, gboolean cnhw) {
  const size_t hw = (size_t)j->h * (size_t)j->wd;
  if (cnhw) {
    grouped_gemm(j, j->x, j->x_cs, j->out, j->o_cs, hw * (size_t)j->n);
    return;
  }
  for (int n = 0; n < j->n; n++)
    grouped_gemm(j, j->x + (size_t)n * j->x_is, j->x_cs, j->out + (size_t)n * j->o_is, j->o_cs, hw);
}

/* Depthwise: each plane is convolved with its own kernel.  GEMMs with M = 1 are
 * memory bound, so a direct loop over contiguous output rows is faster. */
static void conv_depthwise(const conv_job *j) {
  const int sh = j->p->stride_h, sw = j->p->stride_w;
  const int pt = j->p->pad_top, pl = j->p->pad_left;
  const int planes = j->n * j->cin;
#pragma omp parallel for num_threads(j->threads) schedule(static)
  for (int pc = 0; pc < planes; pc++) {
    const int n = pc / j->cin, c = pc % j->cin;
    const float *src = j->x + (size_t)n * j->x_is + (size_t)c * j->x_cs;
    float *dst = j->out + (size_t)n * j->o_is + (size_t)c * j->o_cs;
    const float *wc = j->w + (size_t)c * j->kh * j->kw;
    const float b = j->bias ? j->bias[c] : 0.0f;
    for (int ho = 0; ho < j->ho; ho++) {
      float *orow = dst + (size_t)ho * j->wo;
      for (int wo = 0; wo < j->wo; wo++) orow[wo] = b;
      for (int ki = 0; ki < j->kh; ki++) {
        const int hi_row = ho * sh - pt + ki;
        if (hi_row < 0 || hi_row >= j->h) continue;
        for (int kj = 0; kj < j->kw; kj++) {
          int lo, hi;
          valid_cols(kj, sw, pl, j->wd, j->wo, &lo, &hi);
          const float wv = wc[ki * j->kw + kj];
          const float *srow = src + (size_t)hi_row * j->wd + kj - pl;
          if (sw == 1) {
            for (int wo = lo; wo < hi; wo++) orow[wo] += wv * srow[wo];
          } else {
            for (int wo = lo; wo < hi; wo++) orow[wo] += wv * srow[(ptrdiff_t)wo * sw];
          }
        }
      }
    }
  }
}

/* Convolutions with very few output channels (the RGB output convs: 3
 * channels from 64-128 at full resolution).  As a GEMM their M is 3, so the
 * im2col matrix (hundreds of MB) is written and read once for almost no
 * arithmetic; accumulating shifted input rows straight into a band of output
 * rows that stays in cache costs a fraction of that.  Stride 1, groups 1. */
#define SMALL_COUT_MAX 4
#define SMALL_COUT_BAND 8

/* One output row += one input channel's 3x3 taps, at the columns where every
 * tap reads inside the row: nine products per element for one load and store
 * of the output, which GCC vectorises. */
static void row_3x3_interior(float *restrict orow, const float *restrict r0,
                             const float *restrict r1, const float *restrict r2,
                             const float *w, int off, int c0, int c1) {
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6],
              w7 = w[7], w8 = w[8];
  for (int c = c0; c < c1; c++) {
    const int i = c + off;
    orow[c] += w0 * r0[i] + w1 * r0[i + 1] + w2 * r0[i + 2] + w3 * r1[i] + w4 * r1[i + 1] +
               w5 * r1[i + 2] + w6 * r2[i] + w7 * r2[i + 1] + w8 * r2[i + 2];
  }
}

/* The general case, one tap at a time over its valid columns [lo, hi) of
 * [c0, c1). */
static void row_taps(const conv_job *j, float *orow, const float *plane, int ho, const float *wc,
                     int c0, int c1) {
  const int pt = j->p->pad_top, pl = j->p->pad_left;
  for (int ki = 0; ki < j->kh; ki++) {
    const int hi_row = ho - pt + ki;
    if (hi_row < 0 || hi_row >= j->h) continue;
    const float *srow = plane + (size_t)hi_row * j->wd - pl;
    for (int kj = 0; kj < j->kw; kj++) {
      int lo, hi;
      valid_cols(kj, 1, pl, j->wd, j->wo, &lo, &hi);
      lo = MAX(lo, c0);
      hi = MIN(hi, c1);
      const float wv = wc[ki * j->kw + kj];
      const float *src = srow + kj;
      for (int wo = lo; wo < hi; wo++) orow[wo] += wv * src[wo];
    }
  }
}

static void conv_small_cout(const conv_job *j, const float *zeros) {
  const int pt = j->p->pad_top, pl = j->p->pad_left, kk = j->kh * j->kw;
  const int bands = (j->ho + SMALL_COUT_BAND - 1) / SMALL_COUT_BAND;
  const gboolean k3 = j->kh == 3 && j->kw == 3;
  /* columns where all three taps of a row read inside it */
  const int in_lo = MIN(pl, j->wo), in_hi = MAX(in_lo, MIN(j->wo, j->wd + pl - 2));
#pragma omp parallel for collapse(2) num_threads(j->threads) schedule(static)
  for (int n = 0; n < j->n; n++) {
    for (int bi = 0; bi < bands; bi++) {
      const int r0 = bi * SMALL_COUT_BAND, r1 = MIN(j->ho, r0 + SMALL_COUT_BAND);
      for (int co = 0; co < j->cout; co++) {
        const float b = j->bias ? j->bias[co] : 0.0f;
        for (int ho = r0; ho < r1; ho++) {
          float *orow = j->out + (size_t)n * j->o_is + (size_t)co * j->o_cs + (size_t)ho * j->wo;
          for (int wo = 0; wo < j->wo; wo++) orow[wo] = b;
        }
      }
      for (int ci = 0; ci < j->cin; ci++) {
        const float *plane = j->x + (size_t)n * j->x_is + (size_t)ci * j->x_cs;
        for (int co = 0; co < j->cout; co++) {
          const float *wc = j->w + ((size_t)co * j->cin + ci) * kk;
          for (int ho = r0; ho < r1; ho++) {
            float *orow = j->out + (size_t)n * j->o_is + (size_t)co * j->o_cs + (size_t)ho * j->wo;
            if (!k3) {
              row_taps(j, orow, plane, ho, wc, 0, j->wo);
              continue;
            }
            /* rows above or below the input read a zero row */
            const float *rows[3];
            for (int ki = 0; ki < 3; ki++) {
              const int hi_row = ho - pt + ki;
              rows[ki] = hi_row < 0 || hi_row >= j->h ? zeros : plane + (size_t)hi_row * j->wd;
            }
            row_3x3_interior(orow, rows[0], rows[1], rows[2], wc, -pl, in_lo, in_hi);
            row_taps(j, orow, plane, ho, wc, 0, in_lo);
            row_taps(j, orow, plane, ho, wc, in_hi, j->wo);
          }
        }
      }
    }
  }
}

static gboolean conv_im2col(sige_ctx *ctx, const conv_job *j, gboolean cnhw, GError **error) {
  const size_t rows = (size_t)j->cin * j->kh * j->kw;
  const sige_im2col_tiling tl =
      sige_im2col_tiles(SIGE_CPU_SCRATCH_LIMIT, rows, j->n, j->ho, j->wo, cnhw);
  float *buf = sige_ctx_scratch(ctx, 0, tl.floats, error);
  if (!buf) return FALSE;
  for (sige_im2col_tile t = sige_im2col_tile_at(&tl, 0, 0); t.nimg > 0;
       t = sige_im2col_next(&tl, t)) {
    im2col(j, t.n0, t.nimg, t.r0, t.r1, buf);
    grouped_gemm(j, buf, t.cols, j->out + (size_t)t.n0 * j->o_is + (size_t)t.r0 * j->wo, j->o_cs,
                 t.cols);
  }
  return TRUE;
}

/* Where Winograd replaces im2col + sgemm: 3x3, stride 1, groups 1, more
 * output channels than the direct small-Cout loop takes, and (AUTO) the
 * sizes where it measured faster on this project's CPU (docs/PERFORMANCE.md,
 * "Winograd"): the GEMMs of the transformed domain are [Cout x Cin] x
 * [Cin x tiles], so with few channels the transforms (which cost per
 * channel, not per channel pair) outweigh the 4x fewer multiplications,
 * and with few tiles the 36 small GEMMs run below the sgemm rate.
 * Returns the tile side m (4 or 2), or 0 for no Winograd. */
#define WINO_MIN_CIN 128
#define WINO_MIN_COUT 128
#define WINO_MIN_TILES 16
/* The fused sparse path (sige_sparse_conv), from `sige bench --conv-sweep
 * --chain-only` (docs/PERFORMANCE.md, "Fused into the gather and the
 * scatter"): with 128 channels and more it tied or beat the unfused im2col
 * chain from 8 blocks on; below that, and below 128 channels from 32
 * blocks on, im2col won: a few blocks cannot hide reading the transformed
 * weights, 4x the 3x3 weights. */
#define WINO_FUSED_MIN_C 128
#define WINO_FUSED_MIN_TILES 8
int sige_cpu_winograd_rule(const sige_ctx *ctx, int kh, int kw, int stride, int groups, int cin,
                           int cout, uint64_t tiles, gboolean fused) {
  const sige_conv_policy pol = sige_ctx_conv_policy(ctx);
  if (pol == SIGE_CONV_POLICY_IM2COL) return 0;
  if (kh != 3 || kw != 3 || stride != 1 || groups != 1 || cout <= SMALL_COUT_MAX) return 0;
  if (pol == SIGE_CONV_POLICY_WINO4) return 4;
  if (pol == SIGE_CONV_POLICY_WINO2) return fused ? 0 : 2; /* the fused path is F(4x4) only */
  if (fused)
    return cin >= WINO_FUSED_MIN_C && cout >= WINO_FUSED_MIN_C && tiles >= WINO_FUSED_MIN_TILES
               ? 4
               : 0;
  if (cin < WINO_MIN_CIN || cout < WINO_MIN_COUT || tiles < WINO_MIN_TILES) return 0;
  return 4;
}

static int winograd_tile(const sige_ctx *ctx, const conv_job *j) {
  if (j->p->stride_h != j->p->stride_w) return 0;
  const uint64_t tiles = (uint64_t)j->n * (uint64_t)((j->ho + 3) / 4) * (uint64_t)((j->wo + 3) / 4);
  return sige_cpu_winograd_rule(ctx, j->kh, j->kw, j->p->stride_h, j->groups, j->cin, j->cout,
                                tiles, FALSE);
}

gboolean sige_cpu_sparse_conv(sige_ctx *ctx, const sige_sparse_conv_io *io,
                              const sige_block_geometry *g, const sige_active_blocks *ab,
                              sige_tensor *dst, GError **error) {
  const int cin = SIGE_C(io->weight), cout = SIGE_N(io->weight), o = g->out_block;
  const uint64_t tps = (uint64_t)(o + 3) / 4, tiles = (uint64_t)ab->n * tps * tps;
  if (sige_cpu_winograd_rule(ctx, 3, 3, 1, 1, cin, cout, tiles, TRUE) != 4)
    return sige_sparse_conv_unfused(ctx, io, g, ab, dst, error);
  uint64_t mults = 0;
  if (!sige_cpu_sparse_conv_winograd(ctx, io, g, ab, dst, &mults, error)) return FALSE;
  const uint64_t macs = (uint64_t)ab->n * (uint64_t)cout * (uint64_t)cin * 9u * (uint64_t)o * o;
  sige_ctx_add_conv(ctx, SIGE_CONV_WINO4_FUSED, macs, mults);
  return TRUE;
}

gboolean sige_cpu_conv2d(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                         const sige_tensor *bias, const sige_conv2d_params *p, sige_tensor *out,
                         GError **error) {
  conv_job j = {
      .x = x->data, .w = weight->data, .bias = bias ? bias->data : NULL, .out = out->data,
      .n = SIGE_N(x), .cin = SIGE_C(x), .h = SIGE_H(x), .wd = SIGE_W(x),
      .cout = SIGE_N(weight), .kh = SIGE_H(weight), .kw = SIGE_W(weight),
      .ho = SIGE_H(out), .wo = SIGE_W(out), .groups = p->groups, .p = p,
      .x_cs = sige_cpu_chan_stride(x), .x_is = sige_cpu_img_stride(x),
      .o_cs = sige_cpu_chan_stride(out), .o_is = sige_cpu_img_stride(out),
      .threads = sige_ctx_threads(ctx),
  };
  const gboolean cnhw = x->layout == SIGE_LAYOUT_CNHW;
  if (j.n == 0 || j.cout == 0) return TRUE;

  const uint64_t macs = (uint64_t)j.n * (uint64_t)j.cout * (uint64_t)(j.cin / j.groups) *
                        (uint64_t)j.kh * (uint64_t)j.kw * (uint64_t)j.ho * (uint64_t)j.wo;
  uint64_t mults = macs;
  sige_conv_algo algo = SIGE_CONV_IM2COL;
  const int wino = winograd_tile(ctx, &j);
  /* Winograd transforms the weights itself, per call (half ones widened
   * there); the other paths read them: half ones are widened for this call */
  if (!wino && weight->storage != SIGE_STORAGE_F32 && !(j.w = sige_cpu_weight_f32(ctx, weight, error)))
    return FALSE;
  gboolean ok = TRUE;
  if (wino) {
    algo = wino == 4 ? SIGE_CONV_WINO4 : SIGE_CONV_WINO2;
    ok = sige_cpu_conv_winograd(ctx, x, weight, bias, p, wino, out, &mults, error);
  } else if (j.kh == 1 && j.kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
      p->pad_bottom == 0 && p->pad_left == 0 && p->pad_right == 0) {
    algo = SIGE_CONV_1X1;
    conv_1x1(&j, cnhw);
  } else if (j.groups == j.cin && j.cout == j.cin) {
    algo = SIGE_CONV_DEPTHWISE;
    conv_depthwise(&j);
  } else if (j.cout <= SMALL_COUT_MAX && j.groups == 1 && p->stride_h == 1 && p->stride_w == 1 &&
             !cnhw) {
    /* a zero input row for the 3x3 kernel's taps above and below the image */
    float *zeros = g_try_new0(float, (gsize)j.wd + 8);
    if (!zeros) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "conv2d: out of memory");
      return FALSE;
    }
    algo = SIGE_CONV_SMALL_COUT;
    conv_small_cout(&j, zeros);
    g_free(zeros);
  } else {
    ok = conv_im2col(ctx, &j, cnhw, error);
  }
  if (ok) sige_ctx_add_conv(ctx, algo, macs, mults);
  return ok;
}
