/* Gather (full tensor -> CNHW block batch), scatter (block batch -> cached
 * full tensor) and the fused residual scatter of blocks with a 1x1 shortcut.
 * Work is split over (channel, block), channel-major: block batches are
 * CNHW, so the batch side is walked sequentially, and on the full-tensor side
 * consecutive blocks of one channel plane are neighbours (corners come in
 * raster order) that share cache lines.  Each task walks contiguous rows, and
 * all clipping is resolved once per block, never per element.
 *
 * Full tensors (sources, destinations, residuals) may have F16 storage (the
 * fp16 activation caches); block batches are always float32.  Half rows are
 * converted in short chunks through stack buffers so that the conversion
 * runs vectorised whether or not a resample map scatters the reads, and the
 * arithmetic stays in float32 in the same order as the float path. */
#include <math.h>
#include <string.h>

#include "../../short_copy.h"
#include "../../sparse/sparse_internal.h"
#include "cpu_internal.h"

/* One contiguous row: the ops' vectorised activation loops. */
static void act_row(float *v, int n, sige_act act) { sige_act_inplace(v, (size_t)n, act); }

static gboolean is_f16(const sige_tensor *t) { return t->storage == SIGE_STORAGE_F16; }

#define F16_CHUNK 64

/* dst[j] = row[cols[j]] widened, j < n. */
static void f16_row_gather(const uint16_t *row, const int *cols, int n, float *dst) {
  uint16_t tmp[F16_CHUNK];
  for (int j0 = 0; j0 < n; j0 += F16_CHUNK) {
    const int m = MIN(F16_CHUNK, n - j0);
    for (int j = 0; j < m; j++) tmp[j] = row[cols[j0 + j]];
    sige_f16_to_f32_n(tmp, dst + j0, (size_t)m);
  }
}

/* n residual values of row `r` of channel plane `plane_at` starting at
 * logical column c0, widened to float (read through rmap when given). */
static void residual_chunk(const sige_tensor *res, size_t plane_at, const sige_resample_map *rmap,
                           int r, int c0, int n, float *out) {
  const int rw = SIGE_W(res);
  const int *cols = rmap ? rmap->cols + c0 : NULL;
  const size_t row_at = plane_at + (size_t)(rmap ? rmap->rows[r] : r) * rw;
  if (is_f16(res)) {
    const uint16_t *row = res->data16 + row_at;
    if (cols)
      f16_row_gather(row, cols, n, out);
    else
      sige_f16_to_f32_n(row + c0, out, (size_t)n);
  } else {
    const float *row = res->data + row_at;
    if (cols)
      for (int j = 0; j < n; j++) out[j] = row[cols[j]];
    else
      sige_copy_row(out, row + c0, n);
  }
}

void sige_cpu_gather(sige_ctx *ctx, const sige_tensor *src, const sige_resample_map *map,
                     const sige_block_geometry *g, const sige_active_blocks *ab,
                     const float *scale, const float *shift, sige_act act, sige_tensor *out) {
  const int c = SIGE_C(src), b = g->block, nb = ab->n;
  const int lh = map ? map->h : SIGE_H(src), lw = map ? map->w : SIGE_W(src);
  const int sw = SIGE_W(src);
  const size_t plane = (size_t)SIGE_H(src) * (size_t)sw;
  const gboolean transform = scale || shift || act != SIGE_ACT_NONE;
  const gboolean half = is_f16(src);

#pragma omp parallel for collapse(2) schedule(static) num_threads(sige_ctx_threads(ctx))
  for (int ch = 0; ch < c; ch++) {
    for (int blk = 0; blk < nb; blk++) {
      const int top = ab->corners[2 * blk], left = ab->corners[2 * blk + 1];
      int skip_c;
      const int ncols = sige_clip_span(left, b, lw, &skip_c);
      const float s = scale ? scale[ch] : 1.0f, t = shift ? shift[ch] : 0.0f;
      /* only the pointer of the actual storage is formed: the other would
       * point past a half buffer */
      const float *sp = half ? NULL : src->data + (size_t)ch * plane;
      const uint16_t *sp16 = half ? src->data16 + (size_t)ch * plane : NULL;
      float *op = out->data + ((size_t)ch * nb + blk) * (size_t)b * b;
      /* A block wholly inside the logical source (most of them) is one
       * contiguous b x b run: transformed in one call after the copies, so
       * that the activation runs in full vector lanes (b-wide rows, e.g. 6,
       * left it to the scalar remainder loop: a sixth of the sparse
       * decoder's time).  Same per-element arithmetic either way. */
      const gboolean whole = transform && ncols == b && top >= 0 && top + b <= lh;
      float *const block0 = op;
      for (int i = 0; i < b; i++, op += b) {
        const int r = top + i;
        if (r < 0 || r >= lh || ncols == 0) {
          memset(op, 0, (size_t)b * sizeof(float));
          continue;
        }
        float *dst = op + skip_c;
        if (half) {
          if (map)
            f16_row_gather(sp16 + (size_t)map->rows[r] * sw, map->cols + left + skip_c, ncols, dst);
          else
            sige_f16_to_f32_n(sp16 + (size_t)r * sw + left + skip_c, dst, (size_t)ncols);
        } else if (map) {
          const float *row = sp + (size_t)map->rows[r] * sw;
          const int *cols = map->cols + left + skip_c;
          for (int j = 0; j < ncols; j++) dst[j] = row[cols[j]];
        } else {
          sige_copy_row(dst, sp + (size_t)r * sw + left + skip_c, ncols);
        }
        /* positions outside the tensor stay 0, untransformed (zero padding
         * of the transformed tensor) */
        if (transform && !whole) {
          for (int j = 0; j < ncols; j++) dst[j] = dst[j] * s + t;
          act_row(dst, ncols, act);
        }
        if (skip_c > 0) memset(op, 0, (size_t)skip_c * sizeof(float));
        const int tail = b - skip_c - ncols;
        if (tail > 0) memset(dst + ncols, 0, (size_t)tail * sizeof(float));
      }
      if (whole) {
        const int n = b * b;
        for (int j = 0; j < n; j++) block0[j] = block0[j] * s + t;
        act_row(block0, n, act);
      }
    }
  }
}

/* Block blk's tile, clipped to the full tensor (h x w): its first value in
 * channel ch of the block batch (CNHW [C][nb][o][o]) and its first position
 * in channel ch of the full tensor.  rows == 0 when the block lies outside,
 * and then the positions must not be formed (they could point past dst). */
typedef struct {
  sige_tile t;
  const float *bp;
  size_t at;
} block_tile;

static inline block_tile tile_of(const sige_tensor *blocks, const sige_block_geometry *g,
                                 const sige_active_blocks *ab, int ch, int blk, int h, int w) {
  const int o = g->out_block;
  block_tile bt = {sige_block_tile(g, ab->corners + 2 * blk, h, w), NULL, 0};
  if (bt.t.rows == 0) return bt;
  bt.bp = blocks->data + ((size_t)ch * ab->n + blk) * (size_t)o * o + (size_t)bt.t.br * o + bt.t.bc;
  bt.at = ((size_t)ch * h + (size_t)bt.t.r0) * w + bt.t.c0;
  return bt;
}

/* One tile of sige_scatter when dst or the residual is F16: the sum is
 * formed in float32, then rounded once into a half dst.  rp_at: the
 * residual's channel plane. */
static void scatter_tile_f16(const block_tile *bt, int o, const sige_tensor *residual,
                             size_t rp_at, const sige_resample_map *rmap, sige_tensor *dst) {
  const sige_tile t = bt->t;
  const int w = SIGE_W(dst);
  const gboolean half_dst = is_f16(dst);
  const float *bp = bt->bp;
  float sum[F16_CHUNK];
  for (int i = 0; i < t.rows; i++, bp += o) {
    const size_t row_at = bt->at + (size_t)i * w;
    for (int j0 = 0; j0 < t.cols; j0 += F16_CHUNK) {
      const int m = MIN(F16_CHUNK, t.cols - j0);
      const float *src = bp + j0;
      if (residual) {
        residual_chunk(residual, rp_at, rmap, t.r0 + i, t.c0 + j0, m, sum);
        for (int j = 0; j < m; j++) sum[j] = bp[j0 + j] + sum[j];
        src = sum;
      }
      if (half_dst)
        sige_f32_to_f16_n(src, dst->data16 + row_at + j0, (size_t)m);
      else
        sige_copy_row(dst->data + row_at + j0, src, m);
    }
  }
}

void sige_cpu_scatter(sige_ctx *ctx, const sige_tensor *blocks, const sige_block_geometry *g,
                      const sige_active_blocks *ab, const sige_tensor *residual,
                      const sige_resample_map *rmap, sige_tensor *dst) {
  const int c = SIGE_C(dst), h = SIGE_H(dst), w = SIGE_W(dst), o = g->out_block, nb = ab->n;
  const int rw = residual ? SIGE_W(residual) : 0;
  const size_t rplane = residual ? (size_t)SIGE_H(residual) * (size_t)rw : 0;
  const gboolean half = is_f16(dst) || (residual && is_f16(residual));

#pragma omp parallel for collapse(2) schedule(static) num_threads(sige_ctx_threads(ctx))
  for (int ch = 0; ch < c; ch++) {
    for (int blk = 0; blk < nb; blk++) {
      const block_tile bt = tile_of(blocks, g, ab, ch, blk, h, w);
      const sige_tile t = bt.t;
      if (t.rows == 0) continue;
      if (half) {
        scatter_tile_f16(&bt, o, residual, (size_t)ch * rplane, rmap, dst);
        continue;
      }
      const float *bp = bt.bp;
      float *dp = dst->data + bt.at;
      for (int i = 0; i < t.rows; i++, bp += o, dp += w) {
        if (!residual) {
          sige_copy_row(dp, bp, t.cols);
          continue;
        }
        const float *rp = residual->data + (size_t)ch * rplane;
        if (rmap) {
          const float *row = rp + (size_t)rmap->rows[t.r0 + i] * rw;
          const int *cols = rmap->cols + t.c0;
          for (int j = 0; j < t.cols; j++) dp[j] = bp[j] + row[cols[j]];
        } else {
          const float *row = rp + (size_t)(t.r0 + i) * rw + t.c0;
          for (int j = 0; j < t.cols; j++) dp[j] = bp[j] + row[j];
        }
      }
    }
  }
}

/* The shortcut correction of one tile on F16 caches: the same float32
 * expression as the float path, each cached value rounded once when stored. */
static void block_residual_tile_f16(const block_tile *bt, int os, int w, uint16_t *dst,
                                    uint16_t *res_cache) {
  const sige_tile t = bt->t;
  const float *bp = bt->bp;
  uint16_t *dp = dst + bt->at, *rp = res_cache + bt->at;
  float d[F16_CHUNK], r[F16_CHUNK];
  for (int i = 0; i < t.rows; i++, bp += os, dp += w, rp += w) {
    for (int j0 = 0; j0 < t.cols; j0 += F16_CHUNK) {
      const int m = MIN(F16_CHUNK, t.cols - j0);
      sige_f16_to_f32_n(dp + j0, d, (size_t)m);
      sige_f16_to_f32_n(rp + j0, r, (size_t)m);
      for (int j = 0; j < m; j++) d[j] += bp[j0 + j] - r[j];
      sige_f32_to_f16_n(d, dp + j0, (size_t)m);
      sige_f32_to_f16_n(bp + j0, rp + j0, (size_t)m);
    }
  }
}

void sige_cpu_block_residual(sige_ctx *ctx, const sige_tensor *blocks,
                             const sige_block_geometry *g, const sige_active_blocks *ab,
                             sige_tensor *dst, sige_tensor *res_cache) {
  const int c = SIGE_C(dst), h = SIGE_H(dst), w = SIGE_W(dst);
  const int os = g->out_block, ns = ab->n;
  const gboolean half = is_f16(dst);
#pragma omp parallel for collapse(2) schedule(static) num_threads(sige_ctx_threads(ctx))
  for (int ch = 0; ch < c; ch++) {
    for (int blk = 0; blk < ns; blk++) {
      const block_tile bt = tile_of(blocks, g, ab, ch, blk, h, w);
      const sige_tile t = bt.t;
      if (t.rows == 0) continue;
      if (half) {
        block_residual_tile_f16(&bt, os, w, dst->data16, res_cache->data16);
        continue;
      }
      const float *bp = bt.bp;
      float *dp = dst->data + bt.at, *rp = res_cache->data + bt.at;
      for (int i = 0; i < t.rows; i++, bp += os, dp += w, rp += w) {
        for (int j = 0; j < t.cols; j++) {
          dp[j] += bp[j] - rp[j];
          rp[j] = bp[j];
        }
      }
    }
  }
}

sige_tensor *sige_cpu_materialize(const sige_tensor *src, const sige_resample_map *map,
                                  GError **error) {
  const int C = SIGE_C(src), H = SIGE_H(src), W = SIGE_W(src);
  sige_tensor *out = sige_tensor_new4_uninit(1, C, map->h, map->w, error);
  if (!out) return NULL;
  const gboolean half = src->storage == SIGE_STORAGE_F16;
  for (int c = 0; c < C; c++)
    for (int r = 0; r < map->h; r++) {
      const size_t at = ((size_t)c * H + map->rows[r]) * W;
      float *drow = out->data + ((size_t)c * map->h + r) * map->w;
      if (half)
        for (int j = 0; j < map->w; j++) drow[j] = sige_f16_to_f32(src->data16[at + map->cols[j]]);
      else
        for (int j = 0; j < map->w; j++) drow[j] = src->data[at + map->cols[j]];
    }
  return out;
}
