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

/* The block ops' slots (see sige_gather, sige_scatter and
 * sige_scatter_block_residual in sparse.h) as function types: the backends
 * declare their entries by them (cpu_internal.h, device_impl.h), so an
 * entry's signature is written once and cannot drift from its slot. */
typedef void sige_gather_fn(sige_ctx *ctx, const sige_tensor *src, const sige_resample_map *map,
                            const sige_block_geometry *g, const sige_active_blocks *ab,
                            const float *scale, const float *shift, sige_act act,
                            sige_tensor *out);
typedef void sige_scatter_fn(sige_ctx *ctx, const sige_tensor *blocks,
                             const sige_block_geometry *g, const sige_active_blocks *ab,
                             const sige_tensor *residual, const sige_resample_map *rmap,
                             sige_tensor *dst);
typedef void sige_scatter_block_residual_fn(
    sige_ctx *ctx, const sige_tensor *main_blocks, const sige_block_geometry *g_main,
    const sige_active_blocks *ab_main, const sige_tensor *sc_blocks,
    const sige_block_geometry *g_sc, const sige_active_blocks *ab_sc, sige_tensor *dst,
    sige_tensor *res_cache);

typedef struct sige_backend_iface {
  const char *name;
  void (*destroy)(sige_backend *be); /* NULL: nothing to release */

  /* memory (be is the owner: NULL for the host) */
  void *(*alloc)(sige_backend *be, size_t bytes, gboolean zero, GError **error);
  void (*free)(sige_backend *be, void *p);
  /* host -> be and be -> host; a download waits for everything before it */
  gboolean (*upload)(sige_backend *be, void *dst, const void *src, size_t bytes);
  gboolean (*download)(sige_backend *be, void *dst, const void *src, size_t bytes);
  gboolean (*copy)(sige_backend *be, void *dst, const void *src, size_t bytes);
  /* n elements of storage ss at src to storage ds at dst, both on be */
  gboolean (*convert)(sige_backend *be, void *dst, sige_storage ds, const void *src,
                      sige_storage ss, size_t n);
  /* FALSE + the latched failure (cleared); TRUE when there is none */
  gboolean (*check)(sige_backend *be, GError **error);

  /* dense ops (ops.h) */
  gboolean (*conv2d)(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                     const sige_tensor *bias, const sige_conv2d_params *p, sige_tensor *out,
                     GError **error);
  gboolean (*linear)(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                     const sige_tensor *bias, sige_tensor *out, GError **error);
  void (*activation)(sige_ctx *ctx, const sige_tensor *x, sige_act act, sige_tensor *out);
  void (*channel_affine)(sige_ctx *ctx, const sige_tensor *x, const float *scale,
                         const float *shift, gboolean per_sample, sige_act act,
                         sige_tensor *out);
  /* modulate: out = x * (1 + g) + b (SPADE); else out = x + g */
  void (*binary)(sige_ctx *ctx, gboolean modulate, const sige_tensor *x, const sige_tensor *g,
                 const sige_tensor *b, sige_tensor *out);
  void (*concat_channels)(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b,
                          sige_tensor *out);
  void (*group_norm_affine)(sige_ctx *ctx, const sige_tensor *x, int groups, float eps,
                            const sige_tensor *gamma, const sige_tensor *beta, float *scale,
                            float *shift);
  void (*channel_moments)(sige_ctx *ctx, const sige_tensor *x, double *sum, double *sumsq);
  void (*resize_nearest)(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
  void (*resize_bilinear)(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
  void (*avg_pool2x2)(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
  /* scale / shift per (sample, channel) when per_sample, else per channel */
  gboolean (*attention)(sige_ctx *ctx, const sige_tensor *x, const sige_attention_params *p,
                        const float *scale, const float *shift, gboolean per_sample,
                        sige_tensor *out, GError **error);
  gboolean (*multihead_attention)(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *qkv_w,
                                  const sige_tensor *qkv_b, const sige_tensor *proj_w,
                                  const sige_tensor *proj_b, int heads, int head_dim,
                                  const float *scale, const float *shift, sige_tensor *out,
                                  GError **error);

  /* sparse ops (sparse.h) */
  /* src (F32 or F16, [1, C, H, W]) read through map into a new F32 tensor
   * on the same backend */
  sige_tensor *(*materialize)(const sige_tensor *src, const sige_resample_map *map,
                              GError **error);
  sige_gather_fn *gather;
  sige_scatter_fn *scatter;
  sige_scatter_block_residual_fn *scatter_block_residual;
  /* The undo log's records.  A record holds the elements of ntiles tiles
   * (r0, c0, rows, cols: 4 ints each) of the c channel planes of the data
   * at base (esize bytes per element, rows of w, planes of `plane`
   * elements), elems in all.  pack returns a buffer of be holding them
   * (free it with free), or NULL + error; unpack writes them back. */
  void *(*undo_pack)(sige_backend *be, void *base, int esize, int c, int w, size_t plane,
                     const int *tiles, int ntiles, size_t elems, GError **error);
  void (*undo_unpack)(sige_backend *be, void *base, int esize, int c, int w, size_t plane,
                      const int *tiles, int ntiles, size_t elems, void *saved);
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
