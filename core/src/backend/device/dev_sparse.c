/* Gather, scatter and the residual scatter on a device (the semantics of
 * sparse/gather_scatter.c), and the undo log's tile copies.  Block corners,
 * index maps and per-channel scale / shift travel in one argument upload
 * per launch. */
#include <string.h>

#include "device_impl.h"
#include "sige/error.h"

void sige_dev_gather(sige_ctx *ctx, const sige_tensor *src, const sige_resample_map *map,
                     const sige_block_geometry *g, const sige_active_blocks *ab,
                     const float *scale, const float *shift, sige_act act, sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(src);
  if (!sige_dev_on(be, out, "gather") || ab->n == 0) return;
  const int c = SIGE_C(src);
  sige_k_gather_args a = {
      .src = src->data, .half = src->storage == SIGE_STORAGE_F16, .src_w = SIGE_W(src),
      .plane = (uint32_t)(SIGE_H(src) * SIGE_W(src)),
      .lh = map ? map->h : SIGE_H(src), .lw = map ? map->w : SIGE_W(src),
      .b = g->block, .nb = ab->n, .c = c,
      .transform = scale || shift || act != SIGE_ACT_NONE, .act = (int32_t)act, .out = out->data};
  const sige_dev_arg parts[] = {
      {ab->corners, 2 * (size_t)ab->n * sizeof(int)},
      {map ? map->rows : NULL, map ? (size_t)map->h * sizeof(int) : 0},
      {map ? map->cols : NULL, map ? (size_t)map->w * sizeof(int) : 0},
      {scale, (size_t)c * sizeof(float)},
      {shift, (size_t)c * sizeof(float)}};
  const void *dev[5];
  if (!sige_dev_args(be, parts, 5, dev)) return;
  a.corners = dev[0];
  a.rows = dev[1];
  a.cols = dev[2];
  a.scale = dev[3];
  a.shift = dev[4];
  sige_dev_launch(be, SIGE_K_GATHER, &a, out->numel);
}

/* The scatter geometry of (g, ab) into dst; corners and the residual's maps
 * uploaded. */
static gboolean scatter_args(sige_dev_backend *be, const sige_tensor *blocks,
                             const sige_block_geometry *g, const sige_active_blocks *ab,
                             const sige_tensor *res, const sige_resample_map *rmap,
                             sige_tensor *dst, sige_k_scatter_args *a) {
  *a = (sige_k_scatter_args){
      .blocks = blocks->data, .o = g->out_block, .nb = ab->n, .c = SIGE_C(dst),
      .stride = g->stride, .offset = g->offset, .h = SIGE_H(dst), .w = SIGE_W(dst),
      .dst = dst->data, .half_dst = dst->storage == SIGE_STORAGE_F16,
      .res = res ? res->data : NULL, .half_res = res && res->storage == SIGE_STORAGE_F16,
      .res_w = res ? SIGE_W(res) : 0,
      .res_plane = res ? (uint32_t)(SIGE_H(res) * SIGE_W(res)) : 0};
  const sige_dev_arg parts[] = {
      {ab->corners, 2 * (size_t)ab->n * sizeof(int)},
      {rmap ? rmap->rows : NULL, rmap ? (size_t)rmap->h * sizeof(int) : 0},
      {rmap ? rmap->cols : NULL, rmap ? (size_t)rmap->w * sizeof(int) : 0}};
  const void *dev[3];
  if (!sige_dev_args(be, parts, 3, dev)) return FALSE;
  a->corners = dev[0];
  a->rrows = dev[1];
  a->rcols = dev[2];
  return TRUE;
}

void sige_dev_scatter(sige_ctx *ctx, const sige_tensor *blocks, const sige_block_geometry *g,
                      const sige_active_blocks *ab, const sige_tensor *residual,
                      const sige_resample_map *rmap, sige_tensor *dst) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(dst);
  if (!sige_dev_on(be, blocks, "scatter") || !sige_dev_on(be, residual, "scatter") || ab->n == 0)
    return;
  sige_k_scatter_args a;
  if (scatter_args(be, blocks, g, ab, residual, rmap, dst, &a))
    sige_dev_launch(be, SIGE_K_SCATTER, &a, blocks->numel);
}

void sige_dev_block_residual(sige_ctx *ctx, const sige_tensor *blocks,
                             const sige_block_geometry *g, const sige_active_blocks *ab,
                             sige_tensor *dst, sige_tensor *res_cache) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(dst);
  const char *op = "block_residual";
  if (!sige_dev_on(be, blocks, op) || !sige_dev_on(be, res_cache, op) || ab->n == 0) return;
  sige_k_scatter_args a;
  if (scatter_args(be, blocks, g, ab, res_cache, NULL, dst, &a))
    sige_dev_launch(be, SIGE_K_BLOCK_RESIDUAL, &a, blocks->numel);
}

/* The record buffer: the tile table (4 ints per tile), the element offsets
 * of the tiles (ntiles + 1), then the elements, each part 16-byte aligned. */
static size_t align16(size_t b) { return (b + 15) & ~(size_t)15; }

static void record_layout(int ntiles, size_t elems, int esize, size_t *offs_at, size_t *data_at,
                          size_t *total) {
  *offs_at = align16((size_t)ntiles * 4 * sizeof(int32_t));
  *data_at = *offs_at + align16(((size_t)ntiles + 1) * sizeof(uint32_t));
  *total = *data_at + elems * (size_t)esize;
}

static sige_k_tiles_args tiles_args(void *base, int esize, int w, size_t plane, int ntiles,
                                    char *rec, size_t offs_at, size_t data_at) {
  const sige_k_tiles_args a = {.base = base, .esize = esize, .w = w, .plane = (uint32_t)plane,
                               .tiles = (const int32_t *)rec,
                               .offs = (const uint32_t *)(rec + offs_at), .ntiles = ntiles,
                               .saved = rec + data_at};
  return a;
}

void *sige_dev_undo_save(sige_dev_backend *be, void *base, int esize, int c, int w, size_t plane,
                         const int *tiles, int ntiles, size_t elems, GError **error) {
  if (elems > SIGE_K_MAX_ELEMS) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "undo record of %zu elements is too large for the device", elems);
    return NULL;
  }
  size_t offs_at, data_at, total;
  record_layout(ntiles, elems, esize, &offs_at, &data_at, &total);
  char *rec = sige_dev_alloc(be, total, error);
  if (!rec) return NULL;
  /* the table goes up with the record: it must outlive the argument arena */
  g_autofree char *table = g_malloc0(data_at);
  memcpy(table, tiles, (size_t)ntiles * 4 * sizeof(int32_t));
  uint32_t *offs = (uint32_t *)(table + offs_at);
  for (int t = 0; t < ntiles; t++)
    offs[t + 1] = offs[t] + (uint32_t)c * (uint32_t)tiles[4 * t + 2] * (uint32_t)tiles[4 * t + 3];
  const sige_k_tiles_args a = tiles_args(base, esize, w, plane, ntiles, rec, offs_at, data_at);
  if (be->prims->upload(be, rec, table, data_at))
    sige_dev_launch(be, SIGE_K_TILES_PACK, &a, elems);
  if (!sige_dev_check(be, error)) { /* a failed upload or launch latched its cause */
    sige_dev_free(be, rec);
    return NULL;
  }
  return rec;
}

void sige_dev_undo_restore(sige_dev_backend *be, void *base, int esize, int w, size_t plane,
                           int ntiles, size_t elems, void *saved) {
  size_t offs_at, data_at, total;
  record_layout(ntiles, elems, esize, &offs_at, &data_at, &total);
  const sige_k_tiles_args a = tiles_args(base, esize, w, plane, ntiles, saved, offs_at, data_at);
  sige_dev_launch(be, SIGE_K_TILES_UNPACK, &a, elems);
}
