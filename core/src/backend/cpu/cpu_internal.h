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

/* The entries of sige_cpu_iface (backend_impl.h gives their contracts). */
G_GNUC_INTERNAL gboolean sige_cpu_conv2d(sige_ctx *ctx, const sige_tensor *x,
                                         const sige_tensor *weight, const sige_tensor *bias,
                                         const sige_conv2d_params *p, sige_tensor *out,
                                         GError **error);
G_GNUC_INTERNAL gboolean sige_cpu_linear(sige_ctx *ctx, const sige_tensor *x,
                                         const sige_tensor *weight, const sige_tensor *bias,
                                         sige_tensor *out, GError **error);
G_GNUC_INTERNAL void sige_cpu_activation(sige_ctx *ctx, const sige_tensor *x, sige_act act,
                                         sige_tensor *out);
G_GNUC_INTERNAL void sige_cpu_channel_affine(sige_ctx *ctx, const sige_tensor *x,
                                             const float *scale, const float *shift,
                                             gboolean per_sample, sige_act act,
                                             sige_tensor *out);
G_GNUC_INTERNAL void sige_cpu_binary(sige_ctx *ctx, gboolean modulate, const sige_tensor *x,
                                     const sige_tensor *g, const sige_tensor *b,
                                     sige_tensor *out);
G_GNUC_INTERNAL void sige_cpu_concat_channels(sige_ctx *ctx, const sige_tensor *a,
                                              const sige_tensor *b, sige_tensor *out);
G_GNUC_INTERNAL void sige_cpu_group_norm_affine(sige_ctx *ctx, const sige_tensor *x, int groups,
                                                float eps, const sige_tensor *gamma,
                                                const sige_tensor *beta, float *scale,
                                                float *shift);
G_GNUC_INTERNAL void sige_cpu_channel_moments(sige_ctx *ctx, const sige_tensor *x, double *sum,
                                              double *sumsq);
G_GNUC_INTERNAL void sige_cpu_resize_nearest(sige_ctx *ctx, const sige_tensor *x,
                                             sige_tensor *out);
G_GNUC_INTERNAL void sige_cpu_resize_bilinear(sige_ctx *ctx, const sige_tensor *x,
                                              sige_tensor *out);
G_GNUC_INTERNAL void sige_cpu_avg_pool2x2(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
G_GNUC_INTERNAL gboolean sige_cpu_attention(sige_ctx *ctx, const sige_tensor *x,
                                            const sige_attention_params *p, const float *scale,
                                            const float *shift, gboolean per_sample,
                                            sige_tensor *out, GError **error);
G_GNUC_INTERNAL gboolean sige_cpu_multihead_attention(
    sige_ctx *ctx, const sige_tensor *x, const sige_tensor *qkv_w, const sige_tensor *qkv_b,
    const sige_tensor *proj_w, const sige_tensor *proj_b, int heads, int head_dim,
    const float *scale, const float *shift, sige_tensor *out, GError **error);
G_GNUC_INTERNAL sige_tensor *sige_cpu_materialize(const sige_tensor *src,
                                                  const sige_resample_map *map, GError **error);
G_GNUC_INTERNAL sige_gather_fn sige_cpu_gather;
G_GNUC_INTERNAL sige_scatter_fn sige_cpu_scatter;
G_GNUC_INTERNAL sige_scatter_block_residual_fn sige_cpu_scatter_block_residual;
G_GNUC_INTERNAL void *sige_cpu_undo_pack(sige_backend *be, void *base, int esize, int c, int w,
                                         size_t plane, const int *tiles, int ntiles,
                                         size_t elems, GError **error);
G_GNUC_INTERNAL void sige_cpu_undo_unpack(sige_backend *be, void *base, int esize, int c, int w,
                                          size_t plane, const int *tiles, int ntiles,
                                          size_t elems, void *saved);
