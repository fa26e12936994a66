/* The CPU backend's ops (the files of cpu/), as its iface (backend_cpu.c) lists them,
 * and the plane arithmetic they share. */
#pragma once
#include <stddef.h>

#include "../backend_impl.h"

/* Beyond this many floats an im2col / score buffer is tiled: larger buffers stop
 * fitting anywhere near cache and only cost page faults on first use. */
#define SIGE_CPU_SCRATCH_LIMIT ((size_t)16 << 20) /* 64 MiB of floats */

/* A 4-D tensor is addressed as planes of H*W floats; only where the planes sit
 * depends on the layout, so every per-(n, c) op works on both layouts through
 * these two strides. */
static inline size_t sige_cpu_chan_stride(const sige_tensor *t) {
  size_t hw = (size_t)t->shape[2] * (size_t)t->shape[3];
  return t->layout == SIGE_LAYOUT_CNHW ? hw * (size_t)t->shape[0] : hw;
}

static inline size_t sige_cpu_img_stride(const sige_tensor *t) {
  size_t hw = (size_t)t->shape[2] * (size_t)t->shape[3];
  return t->layout == SIGE_LAYOUT_CNHW ? hw : hw * (size_t)t->shape[1];
}

static inline float *sige_cpu_plane(const sige_tensor *t, int n, int c) {
  return t->data + (size_t)n * sige_cpu_img_stride(t) + (size_t)c * sige_cpu_chan_stride(t);
}

/* y = x * s + b then act, over n contiguous floats; y may equal x. */
G_GNUC_INTERNAL void sige_cpu_affine_act(const float *x, float *y, size_t n, float s, float b,
                                         sige_act act);

/* Half weights (storage F16, sige_weights_keep_half) as float32.
 * sige_cpu_weight_f32: w's data when it is F32, else its values widened
 * into the context's weight scratch, valid until the next call (one weight
 * at a time: what conv2d and linear need); NULL + GError on OOM.
 * sige_cpu_param_f32: t when F32, else an owned widened copy stored in *tmp
 * (for ops that read several small weights at once: attention); NULL +
 * GError on OOM.  sige_cpu_widen: n values, parallel over the context's
 * threads. */
#define SIGE_CPU_WEIGHT_SLOT 4
G_GNUC_INTERNAL const float *sige_cpu_weight_f32(sige_ctx *ctx, const sige_tensor *w,
                                                 GError **error);
G_GNUC_INTERNAL const sige_tensor *sige_cpu_param_f32(const sige_tensor *t, sige_tensor **tmp,
                                                      GError **error);
G_GNUC_INTERNAL void sige_cpu_widen(sige_ctx *ctx, const uint16_t *src, float *dst, size_t n);

/* The entries of sige_cpu_iface, sige_cpu_<slot> for each slot
 * (backend_impl.h gives their types and contracts). */
SIGE_BACKEND_DECLARE(sige_cpu, sige_cpu)
