/* The element kernels of the device backend, written once for both of its
 * executors: the CUDA sources in gpu/ launch each body over a grid (one
 * thread per element), and the simulated device (sim.c) runs the same
 * bodies in a host loop.  The index arithmetic the GPU runs is therefore the code the CPU
 * tests run against the CPU kernels (tests/unit/device).
 *
 * Plain C that nvcc also compiles: no glib, fixed-size integers, no
 * allocation.  A body computes element i (0 <= i < n < 2^31) of its output
 * from an argument struct passed by value; 32-bit index arithmetic is used
 * wherever a value stays below 2^31, since 64-bit division is slow on GPUs.
 *
 * Device memory is only ever read through SIGE_KP: on a GPU it is the
 * pointer itself; on the simulated device, pointers to "device" memory carry
 * a tag (bit 63) that makes any other dereference fault, so a host access to
 * device memory anywhere in libsige crashes the CPU tests instead of
 * silently working. */
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "../bilinear_tap.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define SIGE_KFN static inline __host__ __device__
#else
#define SIGE_KFN static inline
#endif

#define SIGE_SIM_TAG ((uintptr_t)1 << 63)
#if defined(SIGE_KERNELS_UNTAG)
#define SIGE_KP(p) ((__typeof__(p))((uintptr_t)(p) ^ SIGE_SIM_TAG))
#else
#define SIGE_KP(p) (p)
#endif

#ifdef __cplusplus
extern "C" {
#endif
/* libsige's half conversions (tensor.c): the simulated device rounds the
 * way the CPU kernels do. */
float sige_f16_to_f32(uint16_t h);
uint16_t sige_f32_to_f16(float f);
#ifdef __cplusplus
}
#endif

SIGE_KFN float sige_k_h2f(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#else
  return sige_f16_to_f32(h);
#endif
}

SIGE_KFN uint16_t sige_k_f2h(float f) {
#if defined(__CUDA_ARCH__)
  return __half_as_ushort(__float2half_rn(f));
#else
  return sige_f32_to_f16(f);
#endif
}

/* The values of sige_act (ops.h), which this header cannot include;
 * device/device.c checks that they agree. */
enum {
  SIGE_K_ACT_NONE = 0,
  SIGE_K_ACT_RELU = 1,
  SIGE_K_ACT_LEAKY_RELU = 2,
  SIGE_K_ACT_SWISH = 3,
  SIGE_K_ACT_TANH = 4,
  SIGE_K_ACT_SIGMOID = 5,
  SIGE_K_ACT_QUICK_GELU = 6,
};

SIGE_KFN float sige_k_act(int act, float v) {
  switch (act) {
    case SIGE_K_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case SIGE_K_ACT_LEAKY_RELU: return v > 0.0f ? v : v * 0.2f;
    case SIGE_K_ACT_SWISH: return v / (1.0f + expf(-v));
    case SIGE_K_ACT_TANH: return tanhf(v);
    case SIGE_K_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case SIGE_K_ACT_QUICK_GELU: return v / (1.0f + expf(-1.702f * v));
    default: return v;
  }
}

/* A 4-D tensor as n * c planes of hw contiguous floats, NCHW or CNHW. */
typedef struct {
  int32_t n, c;
  uint32_t hw;
  int32_t cnhw;
} sige_k_planes;

/* Channel and image of flat element i. */
SIGE_KFN uint32_t sige_k_chan(const sige_k_planes *p, uint32_t i) {
  const uint32_t plane = i / p->hw;
  return p->cnhw ? plane / (uint32_t)p->n : plane % (uint32_t)p->c;
}

SIGE_KFN uint32_t sige_k_img(const sige_k_planes *p, uint32_t i) {
  const uint32_t plane = i / p->hw;
  return p->cnhw ? plane % (uint32_t)p->n : plane / (uint32_t)p->c;
}

/* First element of plane (img, ch). */
SIGE_KFN size_t sige_k_plane_at(const sige_k_planes *p, uint32_t img, uint32_t ch) {
  return p->cnhw ? ((size_t)ch * (size_t)p->n + img) * p->hw
                 : ((size_t)img * (size_t)p->c + ch) * p->hw;
}

/* Element i of a buffer stored as float or as half. */
SIGE_KFN float sige_k_load(const void *base, int half, size_t i) {
  return half ? sige_k_h2f(SIGE_KP((const uint16_t *)base)[i]) : SIGE_KP((const float *)base)[i];
}

SIGE_KFN void sige_k_store(void *base, int half, size_t i, float v) {
  if (half)
    SIGE_KP((uint16_t *)base)[i] = sige_k_f2h(v);
  else
    SIGE_KP((float *)base)[i] = v;
}

/* ---- element-wise -------------------------------------------------------- */

/* y = act(x * scale[k] + shift[k]), k the channel (or image * C + channel
 * when per_sample); without scale and shift, y = act(x). */
typedef struct {
  const float *x;
  float *y;
  sige_k_planes pl;
  const float *scale, *shift; /* either may be NULL: 1 / 0 */
  int32_t per_sample, act;
} sige_k_affine_args;

SIGE_KFN void sige_k_affine(const sige_k_affine_args *a, uint32_t i) {
  float v = SIGE_KP(a->x)[i];
  if (a->scale || a->shift) {
    const uint32_t c = sige_k_chan(&a->pl, i);
    const uint32_t k = a->per_sample ? sige_k_img(&a->pl, i) * (uint32_t)a->pl.c + c : c;
    v = v * (a->scale ? SIGE_KP(a->scale)[k] : 1.0f) + (a->shift ? SIGE_KP(a->shift)[k] : 0.0f);
  }
  SIGE_KP(a->y)[i] = sige_k_act(a->act, v);
}

/* y = x * (1 + g) + b (SPADE), or y = x + g when b is NULL. */
typedef struct {
  const float *x, *g, *b;
  float *y;
} sige_k_binary_args;

SIGE_KFN void sige_k_modulate(const sige_k_binary_args *a, uint32_t i) {
  SIGE_KP(a->y)[i] = SIGE_KP(a->x)[i] * (1.0f + SIGE_KP(a->g)[i]) + SIGE_KP(a->b)[i];
}

SIGE_KFN void sige_k_add(const sige_k_binary_args *a, uint32_t i) {
  SIGE_KP(a->y)[i] = SIGE_KP(a->x)[i] + SIGE_KP(a->g)[i];
}

/* y = vals[channel]: a bias written ahead of a GEMM that accumulates. */
typedef struct {
  float *y;
  sige_k_planes pl;
  const float *vals;
} sige_k_fill_args;

SIGE_KFN void sige_k_channel_fill(const sige_k_fill_args *a, uint32_t i) {
  SIGE_KP(a->y)[i] = SIGE_KP(a->vals)[sige_k_chan(&a->pl, i)];
}

/* Storage conversions; round_trip: dst (F32) = src rounded through half. */
typedef struct {
  const void *src;
  void *dst;
} sige_k_convert_args;

SIGE_KFN void sige_k_f32_to_f16(const sige_k_convert_args *a, uint32_t i) {
  SIGE_KP((uint16_t *)a->dst)[i] = sige_k_f2h(SIGE_KP((const float *)a->src)[i]);
}

SIGE_KFN void sige_k_f16_to_f32(const sige_k_convert_args *a, uint32_t i) {
  SIGE_KP((float *)a->dst)[i] = sige_k_h2f(SIGE_KP((const uint16_t *)a->src)[i]);
}

/* out[p][r][j] = src[p][rows[r]][cols[j]] over planes p (nearest resampling
 * through index maps, e.g. a logically upsampled tensor); src F32 or F16. */
typedef struct {
  const void *src;
  int32_t half;
  int32_t src_h, src_w;
  int32_t h, w;
  const int32_t *rows, *cols;
  float *out;
} sige_k_resample_args;

SIGE_KFN void sige_k_resample(const sige_k_resample_args *a, uint32_t i) {
  const uint32_t hw = (uint32_t)a->h * (uint32_t)a->w;
  const uint32_t p = i / hw, rem = i % hw;
  const uint32_t r = rem / (uint32_t)a->w, j = rem % (uint32_t)a->w;
  const size_t at = ((size_t)p * (size_t)a->src_h + (size_t)SIGE_KP(a->rows)[r]) * (size_t)a->src_w +
                    (size_t)SIGE_KP(a->cols)[j];
  SIGE_KP(a->out)[i] = sige_k_load(a->src, a->half, at);
}

typedef struct {
  const float *src;
  float *out;
  int32_t in_h, in_w, h, w;
  const sige_k_tap *taps; /* h row taps, then w column taps */
} sige_k_bilinear_args;

SIGE_KFN void sige_k_bilinear(const sige_k_bilinear_args *a, uint32_t i) {
  const uint32_t hw = (uint32_t)a->h * (uint32_t)a->w;
  const uint32_t p = i / hw, rem = i % hw;
  const sige_k_tap r = SIGE_KP(a->taps)[rem / (uint32_t)a->w];
  const sige_k_tap c = SIGE_KP(a->taps)[(uint32_t)a->h + rem % (uint32_t)a->w];
  const float *s = SIGE_KP(a->src) + (size_t)p * (size_t)a->in_h * (size_t)a->in_w;
  const float *ra = s + (size_t)r.i0 * a->in_w, *rb = s + (size_t)r.i1 * a->in_w;
  SIGE_KP(a->out)[i] =
      r.l0 * (c.l0 * ra[c.i0] + c.l1 * ra[c.i1]) + r.l1 * (c.l0 * rb[c.i0] + c.l1 * rb[c.i1]);
}

/* 2x2 average pooling, stride 2, per plane. */
typedef struct {
  const float *src;
  float *out;
  int32_t h, w; /* of src, both even */
} sige_k_pool_args;

SIGE_KFN void sige_k_avg_pool2(const sige_k_pool_args *a, uint32_t i) {
  const uint32_t wo = (uint32_t)a->w / 2, ho = (uint32_t)a->h / 2;
  const uint32_t p = i / (ho * wo), rem = i % (ho * wo);
  const uint32_t r = rem / wo, j = rem % wo;
  const float *s = SIGE_KP(a->src) + (size_t)p * (size_t)a->h * (size_t)a->w +
                   (size_t)(2 * r) * (size_t)a->w + 2 * j;
  SIGE_KP(a->out)[i] = (s[0] + s[1] + s[a->w] + s[a->w + 1]) * 0.25f;
}

/* ---- convolution ------------------------------------------------------------ */

/* im2col of a band of output rows [r0, r0 + band) of images [n0, n0 + nimg):
 * buf[r][col], r = (channel, ki, kj) over all input channels, col = (image,
 * output row, output column).  Taps outside the input read 0 (padding). */
typedef struct {
  const float *x;
  float *buf;
  uint32_t x_cs, x_is; /* channel and image strides of x (layout) */
  int32_t h, w, kh, kw, sh, sw, pt, pl;
  int32_t n0, nimg, r0, band, wo;
} sige_k_im2col_args;

/* Offset in x of element i of the im2col buffer, or -1 for padding. */
SIGE_KFN int64_t sige_k_im2col_src(const sige_k_im2col_args *a, uint32_t i) {
  const uint32_t img_cols = (uint32_t)a->band * (uint32_t)a->wo;
  const uint32_t ncols = img_cols * (uint32_t)a->nimg;
  const uint32_t r = i / ncols, col = i % ncols;
  const uint32_t im = col / img_cols, rem = col % img_cols;
  const int32_t ho = a->r0 + (int32_t)(rem / (uint32_t)a->wo), wo = (int32_t)(rem % (uint32_t)a->wo);
  const uint32_t kk = (uint32_t)(a->kh * a->kw);
  const int32_t c = (int32_t)(r / kk), ki = (int32_t)((r % kk) / (uint32_t)a->kw),
                kj = (int32_t)(r % (uint32_t)a->kw);
  const int32_t hi = ho * a->sh - a->pt + ki, wi = wo * a->sw - a->pl + kj;
  if (hi < 0 || hi >= a->h || wi < 0 || wi >= a->w) return -1;
  return (int64_t)(a->n0 + (int32_t)im) * a->x_is + (int64_t)c * a->x_cs + (int64_t)hi * a->w + wi;
}

SIGE_KFN void sige_k_im2col(const sige_k_im2col_args *a, uint32_t i) {
  const int64_t at = sige_k_im2col_src(a, i);
  SIGE_KP(a->buf)[i] = at < 0 ? 0.0f : SIGE_KP(a->x)[at];
}

/* Depthwise convolution (groups = Cin = Cout), directly: one output element
 * per thread, taps in the CPU kernel's order. */
typedef struct {
  const float *x, *w, *bias;
  float *out;
  uint32_t x_cs, x_is, o_cs, o_is;
  int32_t c, h, wd, kh, kw, sh, sw, pt, pl, ho, wo;
} sige_k_depthwise_args;

SIGE_KFN void sige_k_depthwise(const sige_k_depthwise_args *a, uint32_t i) {
  const uint32_t ox = i % (uint32_t)a->wo, oy = (i / (uint32_t)a->wo) % (uint32_t)a->ho;
  const uint32_t plane = i / ((uint32_t)a->wo * (uint32_t)a->ho);
  const uint32_t img = plane / (uint32_t)a->c, ch = plane % (uint32_t)a->c;
  const float *src = SIGE_KP(a->x) + (size_t)img * a->x_is + (size_t)ch * a->x_cs;
  const float *wc = SIGE_KP(a->w) + (size_t)ch * (size_t)(a->kh * a->kw);
  float acc = a->bias ? SIGE_KP(a->bias)[ch] : 0.0f;
  for (int32_t ki = 0; ki < a->kh; ki++) {
    const int32_t iy = (int32_t)oy * a->sh - a->pt + ki;
    if (iy < 0 || iy >= a->h) continue;
    for (int32_t kj = 0; kj < a->kw; kj++) {
      const int32_t ix = (int32_t)ox * a->sw - a->pl + kj;
      if (ix < 0 || ix >= a->wd) continue;
      acc += wc[ki * a->kw + kj] * src[(size_t)iy * a->wd + ix];
    }
  }
  SIGE_KP(a->out)[(size_t)img * a->o_is + (size_t)ch * a->o_cs + oy * (uint32_t)a->wo + ox] = acc;
}

/* ---- sparse kernels (sparse/gather_scatter.c) -------------------------------- */

/* Gather: block batch out [c][nb][b][b] (CNHW) from a full [1, c, H, W]
 * source read through optional index maps (logical size lh x lw).  Outside
 * the logical tensor: 0, untransformed; inside: act(v * scale + shift). */
typedef struct {
  const void *src;
  int32_t half;
  int32_t src_w;
  uint32_t plane; /* H * W of src */
  int32_t lh, lw;
  const int32_t *rows, *cols; /* NULL: identity */
  const int32_t *corners;     /* nb (top, left) pairs */
  int32_t b, nb, c;
  const float *scale, *shift;
  int32_t transform, act;
  float *out;
} sige_k_gather_args;

/* Offset in src of element i of the block batch, or -1 outside. */
SIGE_KFN int64_t sige_k_gather_src(const sige_k_gather_args *a, uint32_t i, uint32_t *ch) {
  const uint32_t b = (uint32_t)a->b;
  const uint32_t j = i % b, ii = (i / b) % b;
  const uint32_t blk = (i / (b * b)) % (uint32_t)a->nb;
  *ch = i / (b * b * (uint32_t)a->nb);
  const int32_t r = SIGE_KP(a->corners)[2 * blk] + (int32_t)ii;
  const int32_t col = SIGE_KP(a->corners)[2 * blk + 1] + (int32_t)j;
  if (r < 0 || r >= a->lh || col < 0 || col >= a->lw) return -1;
  const int32_t sr = a->rows ? SIGE_KP(a->rows)[r] : r;
  const int32_t sc = a->cols ? SIGE_KP(a->cols)[col] : col;
  return (int64_t)*ch * a->plane + (int64_t)sr * a->src_w + sc;
}

SIGE_KFN void sige_k_gather(const sige_k_gather_args *a, uint32_t i) {
  uint32_t ch;
  const int64_t at = sige_k_gather_src(a, i, &ch);
  float v = 0.0f;
  if (at >= 0) {
    v = sige_k_load(a->src, a->half, (size_t)at);
    if (a->transform) {
      v = v * (a->scale ? SIGE_KP(a->scale)[ch] : 1.0f) + (a->shift ? SIGE_KP(a->shift)[ch] : 0.0f);
      v = sige_k_act(a->act, v);
    }
  }
  SIGE_KP(a->out)[i] = v;
}

/* Scatter: element i of the block batch [c][nb][o][o] lands at
 * ((offset + corner) / stride + (row, col)) of the full [1, c, h, w] dst,
 * clipped; optionally + a residual read through index maps. */
typedef struct {
  const float *blocks;
  int32_t o, nb, c;
  const int32_t *corners;
  int32_t stride, offset;
  int32_t h, w;
  void *dst;
  int32_t half_dst;
  const void *res; /* NULL: none */
  int32_t half_res, res_w;
  uint32_t res_plane;
  const int32_t *rrows, *rcols; /* NULL: identity */
} sige_k_scatter_args;

/* Offset in dst of element i of the block batch, or -1 when clipped; *ch,
 * *r, *col receive its channel and position. */
SIGE_KFN int64_t sige_k_scatter_dst(const sige_k_scatter_args *a, uint32_t i, uint32_t *ch,
                                    int32_t *r, int32_t *col) {
  const uint32_t o = (uint32_t)a->o;
  const uint32_t jj = i % o, ii = (i / o) % o;
  const uint32_t blk = (i / (o * o)) % (uint32_t)a->nb;
  *ch = i / (o * o * (uint32_t)a->nb);
  *r = (a->offset + SIGE_KP(a->corners)[2 * blk]) / a->stride + (int32_t)ii;
  *col = (a->offset + SIGE_KP(a->corners)[2 * blk + 1]) / a->stride + (int32_t)jj;
  if (*r < 0 || *r >= a->h || *col < 0 || *col >= a->w) return -1;
  return ((int64_t)*ch * a->h + *r) * a->w + *col;
}

SIGE_KFN void sige_k_scatter(const sige_k_scatter_args *a, uint32_t i) {
  uint32_t ch;
  int32_t r, col;
  const int64_t at = sige_k_scatter_dst(a, i, &ch, &r, &col);
  if (at < 0) return;
  float v = SIGE_KP(a->blocks)[i];
  if (a->res) {
    const int32_t rr = a->rrows ? SIGE_KP(a->rrows)[r] : r;
    const int32_t rc = a->rcols ? SIGE_KP(a->rcols)[col] : col;
    v = v + sige_k_load(a->res, a->half_res, (size_t)ch * a->res_plane + (size_t)rr * a->res_w + rc);
  }
  sige_k_store(a->dst, a->half_dst, (size_t)at, v);
}

/* The shortcut half of scatter_block_residual: in the shortcut blocks,
 * dst += sc - res_cache, then res_cache = sc.  Uses the scatter geometry
 * fields of sige_k_scatter_args (res = the residual cache, half_dst for
 * both). */
SIGE_KFN void sige_k_block_residual(const sige_k_scatter_args *a, uint32_t i) {
  uint32_t ch;
  int32_t r, col;
  const int64_t at = sige_k_scatter_dst(a, i, &ch, &r, &col);
  if (at < 0) return;
  const float b = SIGE_KP(a->blocks)[i];
  void *res = (void *)a->res;
  const float d = sige_k_load(a->dst, a->half_dst, (size_t)at);
  const float rv = sige_k_load(res, a->half_dst, (size_t)at);
  sige_k_store(a->dst, a->half_dst, (size_t)at, d + (b - rv));
  sige_k_store(res, a->half_dst, (size_t)at, b);
}

/* The undo log's tiles: saved[i] <-> the element of tile t (t such that
 * offs[t] <= i < offs[t + 1]) at (channel, row, col), channel-major within
 * a tile.  tiles: (r0, c0, rows, cols) per tile. */
typedef struct {
  char *base;
  int32_t esize; /* 2 or 4 */
  int32_t w;
  uint32_t plane;
  const int32_t *tiles;
  const uint32_t *offs;
  int32_t ntiles;
  char *saved;
} sige_k_tiles_args;

SIGE_KFN size_t sige_k_tile_at(const sige_k_tiles_args *a, uint32_t i) {
  int32_t lo = 0, hi = a->ntiles - 1;
  while (lo < hi) { /* the last tile whose offset is <= i */
    const int32_t mid = (lo + hi + 1) / 2;
    if (SIGE_KP(a->offs)[mid] <= i)
      lo = mid;
    else
      hi = mid - 1;
  }
  const int32_t *t = SIGE_KP(a->tiles) + 4 * lo;
  const uint32_t k = i - SIGE_KP(a->offs)[lo];
  const uint32_t rc = (uint32_t)t[2] * (uint32_t)t[3];
  const uint32_t ch = k / rc, rem = k % rc;
  return (size_t)ch * a->plane + (size_t)(t[0] + (int32_t)(rem / (uint32_t)t[3])) * (size_t)a->w +
         (size_t)t[1] + rem % (uint32_t)t[3];
}

SIGE_KFN void sige_k_copy_elem(char *dst, const char *src, int32_t esize) {
  if (esize == 2)
    *(uint16_t *)dst = *(const uint16_t *)src;
  else
    *(uint32_t *)dst = *(const uint32_t *)src;
}

SIGE_KFN void sige_k_tiles_pack(const sige_k_tiles_args *a, uint32_t i) {
  const size_t at = sige_k_tile_at(a, i);
  sige_k_copy_elem(SIGE_KP(a->saved) + (size_t)i * a->esize, SIGE_KP(a->base) + at * a->esize,
                   a->esize);
}

SIGE_KFN void sige_k_tiles_unpack(const sige_k_tiles_args *a, uint32_t i) {
  const size_t at = sige_k_tile_at(a, i);
  sige_k_copy_elem(SIGE_KP(a->base) + at * a->esize, SIGE_KP(a->saved) + (size_t)i * a->esize,
                   a->esize);
}

/* ---- token sequences ------------------------------------------------------ */

/* LayerNorm of row i of x [rows, c] (one element = one row: the rows of a
 * text encoder are few and short; two passes in double as the CPU). */
typedef struct {
  const float *x;
  float *y;
  const float *gamma, *beta; /* either may be NULL: 1 / 0 */
  int32_t c;
  float eps;
} sige_k_layer_norm_args;

SIGE_KFN void sige_k_layer_norm(const sige_k_layer_norm_args *a, uint32_t i) {
  const float *x = SIGE_KP(a->x) + (size_t)i * (size_t)a->c;
  float *y = SIGE_KP(a->y) + (size_t)i * (size_t)a->c;
  double s = 0.0;
  for (int32_t j = 0; j < a->c; j++) s += x[j];
  const double mean = s / (double)a->c;
  double s2 = 0.0;
  for (int32_t j = 0; j < a->c; j++) s2 += (x[j] - mean) * (x[j] - mean);
  const float inv = (float)(1.0 / sqrt(s2 / (double)a->c + (double)a->eps));
  const float m = (float)mean;
  for (int32_t j = 0; j < a->c; j++) {
    const float v = (x[j] - m) * inv;
    y[j] = v * (a->gamma ? SIGE_KP(a->gamma)[j] : 1.0f) + (a->beta ? SIGE_KP(a->beta)[j] : 0.0f);
  }
}

/* out[r][j] = table[ids[r]][j] + pos[r % tokens][j] (pos may be NULL). */
typedef struct {
  const float *table, *pos;
  const int32_t *ids;
  float *out;
  int32_t c, tokens;
} sige_k_embedding_args;

SIGE_KFN void sige_k_embedding(const sige_k_embedding_args *a, uint32_t i) {
  const uint32_t r = i / (uint32_t)a->c, j = i % (uint32_t)a->c;
  float v = SIGE_KP(a->table)[(size_t)SIGE_KP(a->ids)[r] * (size_t)a->c + j];
  if (a->pos) v += SIGE_KP(a->pos)[(size_t)(r % (uint32_t)a->tokens) * (size_t)a->c + j];
  SIGE_KP(a->out)[i] = v;
}

/* The causal mask on a tile of scores [rows][cols] whose first row is query
 * row0: key j > query i becomes -inf (the softmax then gives it 0). */
typedef struct {
  float *s;
  int32_t cols, row0;
} sige_k_causal_args;

SIGE_KFN void sige_k_causal_mask(const sige_k_causal_args *a, uint32_t i) {
  const int32_t r = (int32_t)(i / (uint32_t)a->cols), j = (int32_t)(i % (uint32_t)a->cols);
  if (j > a->row0 + r) SIGE_KP(a->s)[i] = -INFINITY;
}

/* GEGLU: out[r][j] = a * gelu_erf(g), a = x[r][j], g = x[r][c + j]. */
typedef struct {
  const float *x;
  float *out;
  int32_t c;
} sige_k_geglu_args;

SIGE_KFN void sige_k_geglu(const sige_k_geglu_args *a, uint32_t i) {
  const uint32_t r = i / (uint32_t)a->c, j = i % (uint32_t)a->c;
  const float *xr = SIGE_KP(a->x) + (size_t)r * 2 * (size_t)a->c;
  const float g = xr[a->c + j];
  SIGE_KP(a->out)[i] = xr[j] * (0.5f * g * (1.0f + erff(g * 0.70710678118654752f)));
}

/* out (cols x rows) = the transpose of x (rows x cols); element i of out. */
typedef struct {
  const float *x;
  float *out;
  uint32_t rows, cols;
} sige_k_transpose_args;

SIGE_KFN void sige_k_transpose(const sige_k_transpose_args *a, uint32_t i) {
  const uint32_t c = i / a->rows, r = i % a->rows;
  SIGE_KP(a->out)[i] = SIGE_KP(a->x)[(size_t)r * a->cols + c];
}

/* The kernel table, spelled once: X(id, argument struct, body) for every
 * kernel a device backend launches (sige_prims.launch).  The enum below, the
 * simulated device's host loop (sim.c) and the CUDA launcher (gpu/kernels.cu)
 * are expansions of it, so a kernel added here exists in all three. */
#define SIGE_KERNELS(X)                                        \
  X(SIGE_K_AFFINE, sige_k_affine_args, sige_k_affine)          \
  X(SIGE_K_MODULATE, sige_k_binary_args, sige_k_modulate)      \
  X(SIGE_K_ADD, sige_k_binary_args, sige_k_add)                \
  X(SIGE_K_CHANNEL_FILL, sige_k_fill_args, sige_k_channel_fill) \
  X(SIGE_K_F32_TO_F16, sige_k_convert_args, sige_k_f32_to_f16) \
  X(SIGE_K_F16_TO_F32, sige_k_convert_args, sige_k_f16_to_f32) \
  X(SIGE_K_RESAMPLE, sige_k_resample_args, sige_k_resample)    \
  X(SIGE_K_BILINEAR, sige_k_bilinear_args, sige_k_bilinear)    \
  X(SIGE_K_AVG_POOL2, sige_k_pool_args, sige_k_avg_pool2)      \
  X(SIGE_K_IM2COL, sige_k_im2col_args, sige_k_im2col)          \
  X(SIGE_K_DEPTHWISE, sige_k_depthwise_args, sige_k_depthwise) \
  X(SIGE_K_GATHER, sige_k_gather_args, sige_k_gather)          \
  X(SIGE_K_SCATTER, sige_k_scatter_args, sige_k_scatter)       \
  X(SIGE_K_BLOCK_RESIDUAL, sige_k_scatter_args, sige_k_block_residual) \
  X(SIGE_K_TILES_PACK, sige_k_tiles_args, sige_k_tiles_pack)   \
  X(SIGE_K_TILES_UNPACK, sige_k_tiles_args, sige_k_tiles_unpack) \
  X(SIGE_K_LAYER_NORM, sige_k_layer_norm_args, sige_k_layer_norm) \
  X(SIGE_K_EMBEDDING, sige_k_embedding_args, sige_k_embedding) \
  X(SIGE_K_CAUSAL_MASK, sige_k_causal_args, sige_k_causal_mask) \
  X(SIGE_K_GEGLU, sige_k_geglu_args, sige_k_geglu)             \
  X(SIGE_K_TRANSPOSE, sige_k_transpose_args, sige_k_transpose)

typedef enum {
#define SIGE_K_ENUM_ENTRY(id, args, body) id,
  SIGE_KERNELS(SIGE_K_ENUM_ENTRY)
#undef SIGE_K_ENUM_ENTRY
  SIGE_K_COUNT
} sige_kernel;

/* Largest element count of one launch: indices are 32-bit. */
#define SIGE_K_MAX_ELEMS ((size_t)INT32_MAX)
