/* Copies of short float rows, shared by im2col, the gather/scatter kernels
 * and the undo log.
 *
 * Rows of block batches are 4 to 8 floats wide and are copied millions of
 * times per sparse pass: a libc memcpy call per row cost more than the copy
 * itself (perf: a quarter of a sparse GauGAN pass).  Fixed-size chunks
 * compile to plain vector moves. */
#pragma once
#include <string.h>

static inline void sige_copy_row(float *dst, const float *src, int n) {
  if (n > 64) {
    memcpy(dst, src, (size_t)n * sizeof(float));
    return;
  }
  for (; n >= 8; n -= 8, dst += 8, src += 8) __builtin_memcpy(dst, src, 8 * sizeof(float));
  if (n >= 4) {
    __builtin_memcpy(dst, src, 4 * sizeof(float));
    n -= 4, dst += 4, src += 4;
  }
  if (n >= 2) {
    __builtin_memcpy(dst, src, 2 * sizeof(float));
    n -= 2, dst += 2, src += 2;
  }
  if (n) *dst = *src;
}

/* The same for rows of raw elements (floats or halves) in bytes. */
static inline void sige_copy_row_bytes(char *dst, const char *src, size_t n) {
  if (n > 256) {
    memcpy(dst, src, n);
    return;
  }
  for (; n >= 32; n -= 32, dst += 32, src += 32) __builtin_memcpy(dst, src, 32);
  if (n >= 16) {
    __builtin_memcpy(dst, src, 16);
    n -= 16, dst += 16, src += 16;
  }
  if (n >= 8) {
    __builtin_memcpy(dst, src, 8);
    n -= 8, dst += 8, src += 8;
  }
  if (n >= 4) {
    __builtin_memcpy(dst, src, 4);
    n -= 4, dst += 4, src += 4;
  }
  if (n >= 2) {
    __builtin_memcpy(dst, src, 2);
    n -= 2, dst += 2, src += 2;
  }
  if (n) *dst = *src;
}
