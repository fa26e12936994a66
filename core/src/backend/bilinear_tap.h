/* The taps of a bilinear resize, computed on the host for either backend.
 * Plain C that nvcc also compiles (device/kernels.h includes it). */
#pragma once
#include <stdint.h>

/* One output coordinate of a bilinear resize: source index and weights,
 * following torch's area_pixel_compute_source_index for align_corners=False
 * in float.  The CPU backend (cpu/resize.c) and the device kernel
 * (device/kernels.h) share it, so both resize with the same taps. */
typedef struct {
  int32_t i0, i1;
  float l0, l1;
} sige_k_tap;

static inline sige_k_tap sige_k_bilinear_tap(int dst, int in, int out) {
  const float scale = (float)in / (float)out;
  float src = scale * ((float)dst + 0.5f) - 0.5f;
  if (src < 0.0f) src = 0.0f;
  sige_k_tap t;
  t.i0 = (int32_t)src;
  if (t.i0 > in - 1) t.i0 = in - 1;
  t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
  t.l1 = src - (float)t.i0;
  t.l0 = 1.0f - t.l1;
  return t;
}
