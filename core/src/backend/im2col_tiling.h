/* How a convolution's im2col is cut into tiles that fit a scratch limit,
 * shared by the CPU backend (cpu/conv2d.c) and the device (device/dev_conv.c)
 * so that both run the same GEMMs (and so sum in the same order). */
#pragma once
#include <stddef.h>

typedef struct {
  size_t imgs;   /* whole images per tile (1 when cut into bands) */
  int band;      /* output rows per tile */
  size_t floats; /* the scratch a tile takes */
} sige_im2col_tiling;

/* rows: im2col rows (cin * kh * kw); limit: the scratch limit in floats.
 * Whole images per tile when one fits (in CNHW they also share the GEMM),
 * otherwise bands of output rows of a single image. */
static inline sige_im2col_tiling sige_im2col_tiles(size_t limit, size_t rows, int n, int ho,
                                                   int wo, int cnhw) {
  const size_t row_floats = rows * (size_t)wo;
  sige_im2col_tiling t = {limit / (row_floats * (size_t)ho), ho, 0};
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
