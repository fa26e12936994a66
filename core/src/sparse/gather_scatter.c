/* Gather (full tensor -> CNHW block batch), scatter (block batch -> cached
 * full tensor) and the fused residual scatter of blocks with a 1x1 shortcut.
 * Work is split over (block, channel); each task walks contiguous rows, and
 * all clipping is resolved once per block, never per element. */
#include <math.h>
#include <string.h>

#include "sparse_internal.h"

/* The definitions of sige_act_apply, applied to one contiguous row so that
 * the switch stays out of the element loop. */
static void act_row(float *v, int n, sige_act act) {
  switch (act) {
    case SIGE_ACT_NONE: break;
    case SIGE_ACT_RELU:
      for (int i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
      break;
    case SIGE_ACT_LEAKY_RELU:
      for (int i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : v[i] * SIGE_LEAKY_SLOPE;
      break;
    case SIGE_ACT_SWISH:
      for (int i = 0; i < n; i++) v[i] = v[i] / (1.0f + expf(-v[i]));
      break;
    case SIGE_ACT_TANH:
      for (int i = 0; i < n; i++) v[i] = tanhf(v[i]);
      break;
    case SIGE_ACT_SIGMOID:
      for (int i = 0; i < n; i++) v[i] = 1.0f / (1.0f + expf(-v[i]));
      break;
  }
}

static gboolean is_block_batch(const sige_tensor *t, int nb, int c, int side) {
  return t->ndim == 4 && t->layout == SIGE_LAYOUT_CNHW && SIGE_N(t) == nb && SIGE_C(t) == c &&
         SIGE_H(t) == side && SIGE_W(t) == side;
}

static gboolean is_full(const sige_tensor *t) {
  return t->ndim == 4 && t->layout == SIGE_LAYOUT_NCHW && SIGE_N(t) == 1;
}

static gboolean map_ok(const sige_resample_map *map, const sige_tensor *src) {
  if (!map) return TRUE;
  if (map->h < 0 || map->w < 0 || !map->rows || !map->cols) return FALSE;
  for (int i = 0; i < map->h; i++)
    if (map->rows[i] < 0 || map->rows[i] >= SIGE_H(src)) return FALSE;
  for (int i = 0; i < map->w; i++)
    if (map->cols[i] < 0 || map->cols[i] >= SIGE_W(src)) return FALSE;
  return TRUE;
}

void sige_gather(sige_ctx *ctx, const sige_tensor *src, const sige_resample_map *map,
                 const sige_block_geometry *g, const sige_active_blocks *ab,
                 const float *scale, const float *shift, sige_act act, sige_tensor *out) {
  g_return_if_fail(ctx && src && g && ab && out && is_full(src));
  const int c = SIGE_C(src), b = g->block, nb = ab->n;
  g_return_if_fail(is_block_batch(out, nb, c, b));
  g_return_if_fail(map_ok(map, src));
  const int lh = map ? map->h : SIGE_H(src), lw = map ? map->w : SIGE_W(src);
  const int sw = SIGE_W(src);
  const size_t plane = (size_t)SIGE_H(src) * (size_t)sw;
  const gboolean transform = scale || shift || act != SIGE_ACT_NONE;

#pragma omp parallel for collapse(2) schedule(static) num_threads(sige_ctx_threads(ctx))
  for (int blk = 0; blk < nb; blk++) {
    for (int ch = 0; ch < c; ch++) {
      const int top = ab->corners[2 * blk], left = ab->corners[2 * blk + 1];
      int skip_c;
      const int ncols = sige_clip_span(left, b, lw, &skip_c);
      const float s = scale ? scale[ch] : 1.0f, t = shift ? shift[ch] : 0.0f;
      const float *sp = src->data + (size_t)ch * plane;
      float *op = out->data + ((size_t)ch * nb + blk) * (size_t)b * b;
      for (int i = 0; i < b; i++, op += b) {
        const int r = top + i;
        if (r < 0 || r >= lh || ncols == 0) {
          memset(op, 0, (size_t)b * sizeof(float));
          continue;
        }
        float *dst = op + skip_c;
        if (map) {
          const float *row = sp + (size_t)map->rows[r] * sw;
          const int *cols = map->cols + left + skip_c;
          for (int j = 0; j < ncols; j++) dst[j] = row[cols[j]];
        } else {
          memcpy(dst, sp + (size_t)r * sw + left + skip_c, (size_t)ncols * sizeof(float));
        }
        /* positions outside the tensor stay 0, untransformed (zero padding
         * of the transformed tensor) */
        if (transform) {
          for (int j = 0; j < ncols; j++) dst[j] = dst[j] * s + t;
          act_row(dst, ncols, act);
        }
        if (skip_c > 0) memset(op, 0, (size_t)skip_c * sizeof(float));
        const int tail = b - skip_c - ncols;
        if (tail > 0) memset(dst + ncols, 0, (size_t)tail * sizeof(float));
      }
    }
  }
}

void sige_scatter(sige_ctx *ctx, const sige_tensor *blocks, const sige_block_geometry *g,
                  const sige_active_blocks *ab, const sige_tensor *residual,
                  const sige_resample_map *rmap, sige_tensor *dst) {
  g_return_if_fail(ctx && blocks && g && ab && dst && is_full(dst));
  const int c = SIGE_C(dst), h = SIGE_H(dst), w = SIGE_W(dst), o = g->out_block, nb = ab->n;
  g_return_if_fail(is_block_batch(blocks, nb, c, o));
  if (residual) {
    g_return_if_fail(is_full(residual) && SIGE_C(residual) == c && map_ok(rmap, residual));
    g_return_if_fail(rmap ? (rmap->h == h && rmap->w == w)
                          : (SIGE_H(residual) == h && SIGE_W(residual) == w));
  }
  const size_t plane = (size_t)h * (size_t)w;
  const int rw = residual ? SIGE_W(residual) : 0;
  const size_t rplane = residual ? (size_t)SIGE_H(residual) * (size_t)rw : 0;

#pragma omp parallel for collapse(2) schedule(static) num_threads(sige_ctx_threads(ctx))
  for (int blk = 0; blk < nb; blk++) {
    for (int ch = 0; ch < c; ch++) {
      const sige_tile t = sige_block_tile(g, ab->corners + 2 * blk, h, w);
      if (t.rows == 0) continue; /* keeps the pointers below inside dst */
      const float *bp = blocks->data + ((size_t)ch * nb + blk) * (size_t)o * o +
                        (size_t)t.br * o + t.bc;
      float *dp = dst->data + (size_t)ch * plane + (size_t)t.r0 * w + t.c0;
      for (int i = 0; i < t.rows; i++, bp += o, dp += w) {
        if (!residual) {
          memcpy(dp, bp, (size_t)t.cols * sizeof(float));
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

void sige_scatter_block_residual(sige_ctx *ctx, const sige_tensor *main_blocks,
                                 const sige_block_geometry *g_main,
                                 const sige_active_blocks *ab_main, const sige_tensor *sc_blocks,
                                 const sige_block_geometry *g_sc, const sige_active_blocks *ab_sc,
                                 sige_tensor *dst, sige_tensor *res_cache) {
  g_return_if_fail(ctx && main_blocks && g_main && ab_main && sc_blocks && g_sc && ab_sc);
  g_return_if_fail(dst && res_cache && is_full(dst) && sige_tensor_same_shape(dst, res_cache) &&
                   res_cache->layout == SIGE_LAYOUT_NCHW);
  const int c = SIGE_C(dst), h = SIGE_H(dst), w = SIGE_W(dst);
  const int os = g_sc->out_block, ns = ab_sc->n;
  g_return_if_fail(is_block_batch(sc_blocks, ns, c, os));
  /* checked here too: a refused main scatter must not be followed by the
   * shortcut correction */
  g_return_if_fail(is_block_batch(main_blocks, ab_main->n, c, g_main->out_block));

  /* dst = main + cached residual in the main blocks */
  sige_scatter(ctx, main_blocks, g_main, ab_main, res_cache, NULL, dst);

  /* Then correct the shortcut blocks by the change of the residual and
   * record the new residual.  Output tiles of one geometry never overlap, so
   * tasks do not race; this pass must follow the one above as a whole. */
  const size_t plane = (size_t)h * (size_t)w;
#pragma omp parallel for collapse(2) schedule(static) num_threads(sige_ctx_threads(ctx))
  for (int blk = 0; blk < ns; blk++) {
    for (int ch = 0; ch < c; ch++) {
      const sige_tile t = sige_block_tile(g_sc, ab_sc->corners + 2 * blk, h, w);
      if (t.rows == 0) continue;
      const float *bp = sc_blocks->data + ((size_t)ch * ns + blk) * (size_t)os * os +
                        (size_t)t.br * os + t.bc;
      const size_t at = (size_t)ch * plane + (size_t)t.r0 * w + t.c0;
      float *dp = dst->data + at, *rp = res_cache->data + at;
      for (int i = 0; i < t.rows; i++, bp += os, dp += w, rp += w) {
        for (int j = 0; j < t.cols; j++) {
          dp[j] += bp[j] - rp[j];
          rp[j] = bp[j];
        }
      }
    }
  }
}
