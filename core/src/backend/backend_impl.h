/* The backend interface: what libsige needs from something that holds
 * tensors and runs ops on them.  Every backend fills one sige_backend_iface;
 * the public ops (core/src/ops, core/src/sparse) validate their arguments
 * once and call the iface of the backend their tensor lives on, the tensor
 * layer reaches the memory half through buffer.h.  Three backends:
 *   cpu/     the CPU (OpenBLAS + OpenMP); host memory, no state;
 *   device/  the device orchestration (im2col + SGEMM, argument uploads,
 *            latched failures, a caching allocator) over a small set of
 *            primitives, run by two executors: the simulated device
 *            (device/sim.c, host memory behind tagged pointers) and CUDA
 *            (gpu/).
 *
 * Host memory has no backend object (a tensor's backend is NULL, as the
 * public API spells it): it belongs to the CPU backend, which keeps no
 * state, so sige_backend_iface_of maps NULL to it.
 *
 * Op entries receive arguments the public op has checked (shapes, layouts,
 * storage), with the same meaning as the public op; the first tensor
 * argument lives on this backend, parameters (weights, biases, norm
 * affines) may be host tensors, host float arrays (scale / shift) are host
 * memory.  Ops that return void cannot fail on the CPU; a device latches
 * their failures for the next call that can report them (check). */
#pragma once
#include <glib.h>
#include <stddef.h>

#include "../buffer.h"
#include "sige/context.h"
#include "sige/device.h"
#include "sige/ops.h"
#include "sige/sparse.h"
#include "sige/tensor.h"

/* The memory slots (be is the owner: NULL for the host). */
typedef void *sige_alloc_fn(sige_backend *be, size_t bytes, gboolean zero, GError **error);
typedef void sige_free_fn(sige_backend *be, void *p);
/* upload: host -> be, download: be -> host (waits for everything before
 * it), copy: within be */
typedef gboolean sige_transfer_fn(sige_backend *be, void *dst, const void *src, size_t bytes);
/* n elements of storage ss at src to storage ds at dst, both on be */
typedef gboolean sige_convert_fn(sige_backend *be, void *dst, sige_storage ds, const void *src,
                                 sige_storage ss, size_t n);
/* FALSE + the latched failure (cleared); TRUE when there is none */
typedef gboolean sige_check_fn(sige_backend *be, GError **error);

/* The op slots, each as a function type (contracts below and in ops.h /
 * sparse.h): the backends declare their entries by these types, so an
 * entry's signature is written once and cannot drift from its slot. */
typedef gboolean sige_conv2d_fn(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                                const sige_tensor *bias, const sige_conv2d_params *p,
                                sige_tensor *out, GError **error);
typedef gboolean sige_linear_fn(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                                const sige_tensor *bias, sige_tensor *out, GError **error);
typedef void sige_activation_fn(sige_ctx *ctx, const sige_tensor *x, sige_act act,
                                sige_tensor *out);
typedef void sige_channel_affine_fn(sige_ctx *ctx, const sige_tensor *x, const float *scale,
                                    const float *shift, gboolean per_sample, sige_act act,
                                    sige_tensor *out);
/* modulate: out = x * (1 + g) + b (SPADE); else out = x + g */
typedef void sige_binary_fn(sige_ctx *ctx, gboolean modulate, const sige_tensor *x,
                            const sige_tensor *g, const sige_tensor *b, sige_tensor *out);
typedef void sige_concat_channels_fn(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b,
                                     sige_tensor *out);
typedef void sige_group_norm_affine_fn(sige_ctx *ctx, const sige_tensor *x, int groups,
                                       float eps, const sige_tensor *gamma,
                                       const sige_tensor *beta, float *scale, float *shift);
typedef void sige_channel_moments_fn(sige_ctx *ctx, const sige_tensor *x, double *sum,
                                     double *sumsq);
/* resize_nearest, resize_bilinear, avg_pool2x2 */
typedef void sige_resample_fn(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
/* scale / shift per (sample, channel) when per_sample, else per channel */
typedef gboolean sige_attention_fn(sige_ctx *ctx, const sige_tensor *x,
                                   const sige_attention_params *p, const float *scale,
                                   const float *shift, gboolean per_sample, sige_tensor *out,
                                   GError **error);
typedef gboolean sige_multihead_attention_fn(sige_ctx *ctx, const sige_tensor *x,
                                             const sige_tensor *qkv_w, const sige_tensor *qkv_b,
                                             const sige_tensor *proj_w,
                                             const sige_tensor *proj_b, int heads, int head_dim,
                                             const float *scale, const float *shift,
                                             sige_tensor *out, GError **error);
/* the token-sequence ops of ops.h, arguments checked (ids in range) */
typedef void sige_layer_norm_fn(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *gamma,
                                const sige_tensor *beta, float eps, sige_tensor *out);
typedef void sige_token_embedding_fn(sige_ctx *ctx, const sige_tensor *table, const int32_t *ids,
                                     int n, int tokens, const sige_tensor *pos, sige_tensor *out);
typedef gboolean sige_token_attention_fn(sige_ctx *ctx, const sige_tensor *q,
                                         const sige_tensor *k, const sige_tensor *v, int n,
                                         int heads, gboolean causal, sige_tensor *out,
                                         GError **error);
/* out [rows, c] = a * gelu_erf(g) of x [rows, 2 c] = (a | g) per row */
typedef void sige_geglu_fn(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
/* x read as a rows x cols row-major matrix, its transpose written to out
 * (cols x rows); both F32, numel rows * cols */
typedef void sige_transpose_fn(sige_ctx *ctx, const sige_tensor *x, int64_t rows, int64_t cols,
                               sige_tensor *out);
/* src (F32 or F16, [1, C, H, W]) read through map into a new F32 tensor on
 * the same backend */
typedef sige_tensor *sige_materialize_fn(const sige_tensor *src, const sige_resample_map *map,
                                         GError **error);
typedef void sige_gather_fn(sige_ctx *ctx, const sige_tensor *src, const sige_resample_map *map,
                            const sige_block_geometry *g, const sige_active_blocks *ab,
                            const float *scale, const float *shift, sige_act act,
                            sige_tensor *out);
typedef void sige_scatter_fn(sige_ctx *ctx, const sige_tensor *blocks,
                             const sige_block_geometry *g, const sige_active_blocks *ab,
                             const sige_tensor *residual, const sige_resample_map *rmap,
                             sige_tensor *dst);
/* sige_sparse_conv, arguments checked (sparse.h) */
typedef gboolean sige_sparse_conv_fn(sige_ctx *ctx, const sige_sparse_conv_io *io,
                                     const sige_block_geometry *g, const sige_active_blocks *ab,
                                     sige_tensor *dst, GError **error);
/* The shortcut half of sige_scatter_block_residual (the public op scatters
 * the main blocks over the cached residual first): in the shortcut blocks,
 * dst += blocks - res_cache, then res_cache = blocks.  Output tiles of one
 * geometry never overlap. */
typedef void sige_block_residual_fn(sige_ctx *ctx, const sige_tensor *blocks,
                                    const sige_block_geometry *g, const sige_active_blocks *ab,
                                    sige_tensor *dst, sige_tensor *res_cache);
/* The undo log's records.  A record holds the elements of ntiles tiles
 * (r0, c0, rows, cols: 4 ints each) of the c channel planes of the data at
 * base (esize bytes per element, rows of w, planes of `plane` elements),
 * elems in all.  pack returns a buffer of be holding them (free it with
 * free), or NULL + error; unpack writes them back. */
typedef void *sige_undo_pack_fn(sige_backend *be, void *base, int esize, int c, int w,
                                size_t plane, const int *tiles, int ntiles, size_t elems,
                                GError **error);
typedef void sige_undo_unpack_fn(sige_backend *be, void *base, int esize, int c, int w,
                                 size_t plane, const int *tiles, int ntiles, size_t elems,
                                 void *saved);

/* The slots, listed once: X(m, slot, type) for the memory slots, X(o, slot,
 * type) for the ops.  The iface struct, each backend's declarations of its
 * entries and each backend's table are expanded from it; m and o are passed
 * through to X (a backend's prefixes for its memory entries and its ops). */
#define SIGE_BACKEND_SLOTS(X, m, o)                                                                \
  X(m, alloc, sige_alloc_fn)                                                                       \
  X(m, free, sige_free_fn)                                                                         \
  X(m, upload, sige_transfer_fn)                                                                   \
  X(m, download, sige_transfer_fn)                                                                 \
  X(m, copy, sige_transfer_fn)                                                                     \
  X(m, convert, sige_convert_fn)                                                                   \
  X(m, check, sige_check_fn)                                                                       \
  X(o, conv2d, sige_conv2d_fn)                                                                     \
  X(o, linear, sige_linear_fn)                                                                     \
  X(o, activation, sige_activation_fn)                                                             \
  X(o, channel_affine, sige_channel_affine_fn)                                                     \
  X(o, binary, sige_binary_fn)                                                                     \
  X(o, concat_channels, sige_concat_channels_fn)                                                   \
  X(o, group_norm_affine, sige_group_norm_affine_fn)                                               \
  X(o, channel_moments, sige_channel_moments_fn)                                                   \
  X(o, resize_nearest, sige_resample_fn)                                                           \
  X(o, resize_bilinear, sige_resample_fn)                                                          \
  X(o, avg_pool2x2, sige_resample_fn)                                                              \
  X(o, attention, sige_attention_fn)                                                               \
  X(o, multihead_attention, sige_multihead_attention_fn)                                           \
  X(o, layer_norm, sige_layer_norm_fn)                                                             \
  X(o, token_embedding, sige_token_embedding_fn)                                                   \
  X(o, token_attention, sige_token_attention_fn)                                                   \
  X(o, geglu, sige_geglu_fn)                                                                       \
  X(o, transpose, sige_transpose_fn)                                                               \
  X(o, materialize, sige_materialize_fn)                                                           \
  X(o, gather, sige_gather_fn)                                                                     \
  X(o, scatter, sige_scatter_fn)                                                                   \
  X(o, block_residual, sige_block_residual_fn)                                                     \
  X(o, sparse_conv, sige_sparse_conv_fn)                                                           \
  X(o, undo_pack, sige_undo_pack_fn)                                                               \
  X(o, undo_unpack, sige_undo_unpack_fn)

#define SIGE_BACKEND_SLOT_(p, slot, type) type *slot;
#define SIGE_BACKEND_ENTRY_(p, slot, type) .slot = p##_##slot,
#define SIGE_BACKEND_DECLARE_(p, slot, type) G_GNUC_INTERNAL type p##_##slot;

/* A backend names its entries <mem>_<slot> for the memory slots and
 * <ops>_<slot> for the ops; its internal header declares them all with
 * SIGE_BACKEND_DECLARE(mem, ops) and its table lists them (after .name and
 * .destroy) with SIGE_BACKEND_ENTRIES(mem, ops). */
#define SIGE_BACKEND_DECLARE(mem, ops) SIGE_BACKEND_SLOTS(SIGE_BACKEND_DECLARE_, mem, ops)
#define SIGE_BACKEND_ENTRIES(mem, ops) SIGE_BACKEND_SLOTS(SIGE_BACKEND_ENTRY_, mem, ops)

typedef struct sige_backend_iface {
  const char *name;
  void (*destroy)(sige_backend *be); /* NULL: nothing to release */

  /* memory, then the ops, in SIGE_BACKEND_SLOTS order */
  SIGE_BACKEND_SLOTS(SIGE_BACKEND_SLOT_, _, _)
} sige_backend_iface;

/* What every backend object starts with (device backends extend it). */
struct sige_backend {
  const sige_backend_iface *iface;
  sige_device device;
  char *info;
};

extern const sige_backend_iface sige_cpu_iface; /* cpu/backend_cpu.c */

/* The backend that owns memory of be: be's own, the CPU's for the host. */
static inline const sige_backend_iface *sige_backend_iface_of(const sige_backend *be) {
  return be ? be->iface : &sige_cpu_iface;
}

/* The backend the op on tensor t runs on. */
static inline const sige_backend_iface *sige_tensor_iface(const sige_tensor *t) {
  return sige_backend_iface_of(t->backend);
}

/* Device backends (device/device.c): sim and CUDA. */
sige_backend *sige_device_backend_new(sige_device device, int n_threads, GError **error);
