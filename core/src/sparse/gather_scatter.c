/* Gather, scatter and the fused residual scatter (sparse.h), and the
 * resampled read of a full tensor: argument checks; the backends compute
 * them (cpu/gather_scatter.c, device/dev_sparse.c). */
#include "../backend/backend_impl.h"
#include "sparse_internal.h"
#include "sige/error.h"

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

gboolean sige_sparse_conv_unfused(sige_ctx *ctx, const sige_sparse_conv_io *io,
                                  const sige_block_geometry *g, const sige_active_blocks *ab,
                                  sige_tensor *dst, GError **error) {
  if (ab->n == 0) return TRUE;
  const int cin = SIGE_C(io->weight), cout = SIGE_N(io->weight), o = g->out_block;
  g_autoptr(sige_tensor) in = NULL;
  const sige_tensor *x = io->blocks;
  if (io->src) {
    if (!(in = sige_tensor_new4_like(dst, ab->n, cin, g->block, g->block, error))) return FALSE;
    in->layout = SIGE_LAYOUT_CNHW;
    sige_gather(ctx, io->src, io->map, g, ab, io->scale, io->shift, io->act_in, in);
    x = in;
  }
  g_autoptr(sige_tensor) y = sige_tensor_new4_like(dst, ab->n, cout, o, o, error);
  if (!y) return FALSE;
  y->layout = SIGE_LAYOUT_CNHW;
  const sige_conv2d_params p = sige_conv2d_params_simple(1, 0);
  if (!sige_conv2d(ctx, x, io->weight, io->bias, &p, y, error)) return FALSE;
  if (io->act_out != SIGE_ACT_NONE) sige_activation(ctx, y, io->act_out, y);
  sige_scatter(ctx, y, g, ab, io->residual, io->rmap, dst);
  return TRUE;
}

static gboolean sparse_conv_refuse(GError **error, const char *what) {
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "sparse_conv: %s", what);
  return FALSE;
}

gboolean sige_sparse_conv(sige_ctx *ctx, const sige_sparse_conv_io *io,
                          const sige_block_geometry *g, const sige_active_blocks *ab,
                          sige_tensor *dst, GError **error) {
  if (!ctx || !io || !g || !ab || !dst || !io->weight)
    return sparse_conv_refuse(error, "missing context, arguments, geometry, blocks, weight or dst");
  if (g->kernel != 3 || g->stride != 1 || g->out_block != g->block - 2)
    return sparse_conv_refuse(error, "the geometry is not that of a 3x3 stride-1 conv");
  if (!is_full(dst)) return sparse_conv_refuse(error, "dst must be a full [1, C, H, W] tensor");
  const sige_tensor *w = io->weight;
  if (w->ndim != 4 || SIGE_H(w) != 3 || SIGE_W(w) != 3 || w->storage != SIGE_STORAGE_F32 ||
      SIGE_N(w) != SIGE_C(dst))
    return sparse_conv_refuse(error, "weight must be F32 [C_dst, Cin, 3, 3]");
  if (io->bias && (io->bias->numel != (size_t)SIGE_N(w) || io->bias->storage != SIGE_STORAGE_F32))
    return sparse_conv_refuse(error, "bias must hold one float per output channel");
  const int cin = SIGE_C(w);
  if (!io->src == !io->blocks)
    return sparse_conv_refuse(error, "give either a source tensor or gathered blocks");
  if (io->src) {
    if (!is_full(io->src) || SIGE_C(io->src) != cin || !map_ok(io->map, io->src))
      return sparse_conv_refuse(error, "src must be a full [1, Cin, H, W] tensor (map in range)");
    if (io->src == dst || io->src->data == dst->data)
      return sparse_conv_refuse(error, "src must not be dst");
    if ((io->map ? io->map->h : SIGE_H(io->src)) != SIGE_H(dst) ||
        (io->map ? io->map->w : SIGE_W(io->src)) != SIGE_W(dst))
      return sparse_conv_refuse(error, "src must have dst's logical size");
  } else if (!is_block_batch(io->blocks, ab->n, cin, g->block)) {
    return sparse_conv_refuse(error, "blocks must be a CNHW [Cin][nb][b][b] F32 batch");
  }
  const sige_tensor *res = io->residual;
  if (res) {
    if (!is_full(res) || SIGE_C(res) != SIGE_C(dst) || !map_ok(io->rmap, res))
      return sparse_conv_refuse(error, "residual must be a full tensor of dst's channels");
    if (io->rmap ? (io->rmap->h != SIGE_H(dst) || io->rmap->w != SIGE_W(dst))
                 : (SIGE_H(res) != SIGE_H(dst) || SIGE_W(res) != SIGE_W(dst)))
      return sparse_conv_refuse(error, "residual must have dst's logical size");
  }
  if (ab->n == 0) return TRUE;
  return sige_tensor_iface(dst)->sparse_conv(ctx, io, g, ab, dst, error);
}
