/* Helpers shared by the sparse kernels and the undo log: both must agree on
 * exactly which output pixels a block writes. */
#pragma once
#include "sige/sparse.h"

/* A new F32 [1, C, map->h, map->w] tensor where src lives, holding src (F32
 * or F16, [1, C, H, W]) read through map (sige_materialize of run.h with a
 * map). */
sige_tensor *sige_sparse_materialize(const sige_tensor *src, const sige_resample_map *map,
                                     GError **error);

/* sige_sparse_conv as the ops it fuses, one after the other, on any
 * backend (arguments checked): what backends without a fused kernel run. */
gboolean sige_sparse_conv_unfused(sige_ctx *ctx, const sige_sparse_conv_io *io,
                                  const sige_block_geometry *g, const sige_active_blocks *ab,
                                  sige_tensor *dst, GError **error);

/* The clipped output tile of one active block in a [*, *, h, w] tensor:
 * rows [r0, r0 + rows), cols [c0, c0 + cols).  rows or cols is 0 when the
 * tile lies outside the tensor. */
typedef struct {
  int r0, c0, rows, cols;
  int br, bc; /* first row / column of the tile inside the o x o block */
} sige_tile;

static inline int sige_clip_span(int start, int len, int limit, int *skip) {
  int s = start < 0 ? -start : 0;
  int end = start + len < limit ? start + len : limit;
  *skip = s;
  int n = end - (start + s);
  return n > 0 ? n : 0;
}

/* (offset + corner) / stride is exact for corners produced by reduce_mask
 * (offset + corner is a multiple of block_stride); one division per block. */
static inline sige_tile sige_block_tile(const sige_block_geometry *g, const int *corner, int h,
                                        int w) {
  sige_tile t;
  int r = (g->offset + corner[0]) / g->stride;
  int c = (g->offset + corner[1]) / g->stride;
  t.rows = sige_clip_span(r, g->out_block, h, &t.br);
  t.cols = sige_clip_span(c, g->out_block, w, &t.bc);
  t.r0 = r + t.br;
  t.c0 = c + t.bc;
  if (t.rows == 0 || t.cols == 0) t.rows = t.cols = 0;
  return t;
}
