/* The device implementations of the ops (ops.h, sparse.h): the public op
 * checks its arguments as for the CPU, then hands a device tensor here.
 * Arguments are as in the public op; parameters (weights, biases, norm
 * affines) may be host tensors (mirrored once, backend_internal.h); host
 * float arrays (scale / shift) are uploaded per call.  Void ops latch
 * failures in the backend. */
#pragma once
#include "sige/ops.h"
#include "sige/sparse.h"
#include "backend_internal.h"

/* Whether t lives on a device: the op then dispatches here. */
#define SIGE_ON_DEVICE(t) ((t) && (t)->backend != NULL)

gboolean sige_dev_conv2d(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                         const sige_tensor *bias, const sige_conv2d_params *p, sige_tensor *out,
                         GError **error);
gboolean sige_dev_linear(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                         const sige_tensor *bias, sige_tensor *out, GError **error);

void sige_dev_affine(sige_ctx *ctx, const sige_tensor *x, const float *scale, const float *shift,
                     gboolean per_sample, sige_act act, sige_tensor *out);
void sige_dev_binary(sige_ctx *ctx, gboolean modulate, const sige_tensor *x, const sige_tensor *g,
                     const sige_tensor *b, sige_tensor *out);
void sige_dev_concat_channels(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b,
                              sige_tensor *out);
void sige_dev_resize_nearest(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
void sige_dev_resize_bilinear(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
void sige_dev_avg_pool2x2(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
/* src (F32 or F16, [1, C, H, W]) read through map into a new F32 tensor on
 * the same device. */
sige_tensor *sige_dev_materialize(const sige_tensor *src, const sige_resample_map *map,
                                  GError **error);

void sige_dev_group_norm_affine(sige_ctx *ctx, const sige_tensor *x, int groups, float eps,
                                const sige_tensor *gamma, const sige_tensor *beta, float *scale,
                                float *shift);
void sige_dev_channel_moments(sige_ctx *ctx, const sige_tensor *x, double *sum, double *sumsq);

gboolean sige_dev_attention(sige_ctx *ctx, const sige_tensor *x, const sige_attention_params *p,
                            const float *scale, const float *shift, gboolean per_sample,
                            sige_tensor *out, GError **error);
gboolean sige_dev_multihead_attention(sige_ctx *ctx, const sige_tensor *x,
                                      const sige_tensor *qkv_w, const sige_tensor *qkv_b,
                                      const sige_tensor *proj_w, const sige_tensor *proj_b,
                                      int heads, int head_dim, const float *scale,
                                      const float *shift, sige_tensor *out, GError **error);

void sige_dev_gather(sige_ctx *ctx, const sige_tensor *src, const sige_resample_map *map,
                     const sige_block_geometry *g, const sige_active_blocks *ab,
                     const float *scale, const float *shift, sige_act act, sige_tensor *out);
void sige_dev_scatter(sige_ctx *ctx, const sige_tensor *blocks, const sige_block_geometry *g,
                      const sige_active_blocks *ab, const sige_tensor *residual,
                      const sige_resample_map *rmap, sige_tensor *dst);
void sige_dev_scatter_block_residual(sige_ctx *ctx, const sige_tensor *main_blocks,
                                     const sige_block_geometry *g_main,
                                     const sige_active_blocks *ab_main,
                                     const sige_tensor *sc_blocks,
                                     const sige_block_geometry *g_sc,
                                     const sige_active_blocks *ab_sc, sige_tensor *dst,
                                     sige_tensor *res_cache);

/* The undo log's records on a device.  A record saves the elements of
 * ntiles tiles (r0, c0, rows, cols: 4 ints each) of the c channel planes
 * of the tensor data at base (esize bytes per element, rows of w, planes of
 * `plane` elements), elems in all, channel-major within each tile.  save returns a device
 * buffer holding the tile table and the elements (free it with
 * sige_dev_free), or NULL + error; restore writes them back. */
void *sige_dev_undo_save(sige_backend *be, void *base, int esize, int c, int w, size_t plane,
                         const int *tiles, int ntiles, size_t elems, GError **error);
void sige_dev_undo_restore(sige_backend *be, void *base, int esize, int w, size_t plane,
                           int ntiles, size_t elems, void *saved);
