/* How a convolution's im2col is cut into tiles that fit a scratch limit,
 * and the order the tiles run in, shared by the CPU backend (cpu/conv2d.c)
 * and the device (device/dev_conv.c) so that both run the same GEMMs (and so
 * sum in the same order). */
#pragma once
#include <stddef.h>

typedef struct {
  size_t imgs;   /* whole images per tile (1 when cut into bands) */
  int band;      /* output rows per tile */
  size_t floats; /* the scratch a tile takes */
  int n, ho, wo; /* the images and output plane tiled */
} sige_im2col_tiling;

/* One tile: images [n0, n0 + nimg), output rows [r0, r1), cols im2col
 * columns.  nimg == 0: past the last tile. */
typedef struct {
  int n0, nimg, r0, r1;
  size_t cols;
} sige_im2col_tile;

/* rows: im2col rows (cin * kh * kw); limit: the scratch limit in floats.
 * Whole images per tile when one fits (in CNHW they also share the GEMM),
 * otherwise bands of output rows of a single image. */
static inline sige_im2col_tiling sige_im2col_tiles(size_t limit, size_t rows, int n, int ho,
                                                   int wo, int cnhw) {
  const size_t row_floats = rows * (size_t)wo;
  sige_im2col_tiling t = {limit / (row_floats * (size_t)ho), ho, 0, n, ho, wo};
  if (t.imgs == 0) {
    t.imgs = 1;
    const size_t r = limit / row_floats;
    t.band = r == 0 ? 1 : (r < (size_t)ho ? (int)r : ho);
  }
  if (!cnhw) t.imgs = 1;
  if (t.imgs > (size_t)n) t.imgs = (size_t)n;
  t.floats = row_floats * (size_t)t.band * t.imgs;
  return t;
}

static inline sige_im2col_tile sige_im2col_tile_at(const sige_im2col_tiling *tl, int n0, int r0) {
  sige_im2col_tile t = {n0, 0, r0, r0, 0};
  if (n0 >= tl->n || r0 >= tl->ho) return t;
  t.nimg = tl->n - n0 < (int)tl->imgs ? tl->n - n0 : (int)tl->imgs;
  t.r1 = r0 + tl->band < tl->ho ? r0 + tl->band : tl->ho;
  t.cols = (size_t)t.nimg * (size_t)(t.r1 - t.r0) * tl->wo;
  return t;
}

/* The bands of one group of images, then the next group. */
static inline sige_im2col_tile sige_im2col_next(const sige_im2col_tiling *tl, sige_im2col_tile t) {
  return t.r1 < tl->ho ? sige_im2col_tile_at(tl, t.n0, t.r1)
                       : sige_im2col_tile_at(tl, t.n0 + (int)tl->imgs, 0);
}
