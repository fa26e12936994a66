/* Gather, scatter and the fused residual scatter (sparse.h), and the
 * resampled read of a full tensor: argument checks; the backends compute
 * them (cpu/gather_scatter.c, device/dev_sparse.c). */
#include "../backend/backend_impl.h"
#include "sparse_internal.h"

static gboolean is_block_batch(const sige_tensor *t, int nb, int c, int side) {
  return t->ndim == 4 && t->layout == SIGE_LAYOUT_CNHW && SIGE_N(t) == nb && SIGE_C(t) == c &&
         SIGE_H(t) == side && SIGE_W(t) == side && t->storage == SIGE_STORAGE_F32;
}

static gboolean is_full(const sige_tensor *t) {
  return t->ndim == 4 && t->layout == SIGE_LAYOUT_NCHW && SIGE_N(t) == 1 &&
         (t->storage == SIGE_STORAGE_F32 || t->storage == SIGE_STORAGE_F16);
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
  sige_tensor_iface(src)->gather(ctx, src, map, g, ab, scale, shift, act, out);
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
  sige_tensor_iface(dst)->scatter(ctx, blocks, g, ab, residual, rmap, dst);
}

void sige_scatter_block_residual(sige_ctx *ctx, const sige_tensor *main_blocks,
                                 const sige_block_geometry *g_main,
                                 const sige_active_blocks *ab_main, const sige_tensor *sc_blocks,
                                 const sige_block_geometry *g_sc, const sige_active_blocks *ab_sc,
                                 sige_tensor *dst, sige_tensor *res_cache) {
  g_return_if_fail(ctx && main_blocks && g_main && ab_main && sc_blocks && g_sc && ab_sc);
  g_return_if_fail(dst && res_cache && is_full(dst) && sige_tensor_same_shape(dst, res_cache) &&
                   res_cache->layout == SIGE_LAYOUT_NCHW && res_cache->storage == dst->storage);
  const int c = SIGE_C(dst);
  const int os = g_sc->out_block, ns = ab_sc->n;
  g_return_if_fail(is_block_batch(sc_blocks, ns, c, os));
  /* checked here too: a refused main scatter must not be followed by the
   * shortcut correction */
  g_return_if_fail(is_block_batch(main_blocks, ab_main->n, c, g_main->out_block));
  /* dst = main + cached residual in the main blocks, then the shortcut
   * correction, which must follow the first as a whole */
  const sige_backend_iface *be = sige_tensor_iface(dst);
  be->scatter(ctx, main_blocks, g_main, ab_main, res_cache, NULL, dst);
  be->block_residual(ctx, sc_blocks, g_sc, ab_sc, dst, res_cache);
}

sige_tensor *sige_sparse_materialize(const sige_tensor *src, const sige_resample_map *map,
                                     GError **error) {
  return sige_tensor_iface(src)->materialize(src, map, error);
}
