/* The device backends (simulated device and CUDA): their state, the
 * primitives their executors provide, and the helpers the device ops of
 * this folder (dev_*.c) orchestrate them with.
 *
 * Two layers.  The backend interface (../backend_impl.h) hands ops on
 * tensors that live on a device to the implementations in dev_*.c, which
 * orchestrate them from a small set of primitives: memory, the element
 * kernels of kernels.h, two reductions and column-major SGEMM.  The
 * primitives have two executors:
 *   CUDA (gpu/backend_cuda.c and the CUDA sources in gpu/: cudart, the
 *   kernels, cuBLAS), and
 *   the simulated device (sim.c: host memory behind tagged pointers, the same
 *   kernel bodies in host loops, OpenBLAS), which lets the CPU tests run all
 *   of the device path except the CUDA launches themselves.
 *
 * One stream: every primitive is ordered after the previous one, so memory
 * freed to the allocator's cache, the argument arena and the scratch buffers
 * can be reused by the next op without waiting; only downloads wait.
 *
 * Failures of ops that return void (CUDA launch errors, out of memory) are
 * latched in the backend and reported by the next call that can fail: each
 * layer of a model pass checks, and so does the final download. */
#pragma once
#include <glib.h>
#include <stdint.h>

#include "../backend_impl.h"
#include "kernels.h"

typedef struct sige_dev_backend sige_dev_backend;

typedef struct {
  const char *name;
  void (*destroy)(sige_dev_backend *be);
  /* memory; all return FALSE after latching the failure (sige_dev_fail) */
  void *(*malloc)(sige_dev_backend *be, size_t bytes); /* NULL: out of memory (not latched) */
  void (*free)(sige_dev_backend *be, void *p);
  /* host -> device in stream order; src can be reused as soon as it returns */
  gboolean (*upload)(sige_dev_backend *be, void *dst, const void *src, size_t bytes);
  /* device -> host: waits for everything queued before it */
  gboolean (*download)(sige_dev_backend *be, void *dst, const void *src, size_t bytes);
  gboolean (*copy)(sige_dev_backend *be, void *dst, const void *src, size_t bytes);
  gboolean (*zero)(sige_dev_backend *be, void *dst, size_t bytes);
  /* element kernel k over n elements (n <= SIGE_K_MAX_ELEMS) */
  gboolean (*launch)(sige_dev_backend *be, sige_kernel k, const void *args, size_t n);
  /* per plane of x (pl): out[3 p] = x_p[0] (the pivot), out[3 p + 1] =
   * sum(x_p - pivot), out[3 p + 2] = sum((x_p - pivot)^2), in double */
  gboolean (*plane_sums)(sige_dev_backend *be, const float *x, sige_k_planes pl, double *out);
  /* softmax of each row of s in place (max-subtracted, sum in double) */
  gboolean (*softmax_rows)(sige_dev_backend *be, float *s, int rows, int cols);
  /* column-major SGEMM (cuBLAS / BLAS conventions); trans: 0 = N, 1 = T */
  gboolean (*sgemm)(sige_dev_backend *be, int transa, int transb, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c,
                    int ldc);
  gboolean (*sgemm_batched)(sige_dev_backend *be, int transa, int transb, int m, int n, int k,
                            float alpha, const float *a, int lda, long long stride_a,
                            const float *b, int ldb, long long stride_b, float beta, float *c,
                            int ldc, long long stride_c, int batch);
} sige_prims;

#define SIGE_DEV_SCRATCH_SLOTS 4

struct sige_dev_backend {
  sige_backend base; /* iface: sige_device_iface; info: "cuda: NVIDIA H100 ... (sm_90, 79 GiB)" */
  const sige_prims *prims;
  void *impl;    /* the executor's own state */
  int n_threads; /* host threads of the simulated device */
  GError *failure;
  GHashTable *mirrors; /* host parameter data -> mirror */
  GHashTable *pool;    /* size class -> GPtrArray of free device blocks */
  GHashTable *sizes;   /* live device block -> its size class */
  size_t in_use, cached;
  void *args;          /* argument arena */
  size_t args_bytes;
  void *scratch[SIGE_DEV_SCRATCH_SLOTS];
  size_t scratch_bytes[SIGE_DEV_SCRATCH_SLOTS];
};

/* The device backend of a tensor (its backend is a device one). */
static inline sige_dev_backend *sige_dev_of(const sige_tensor *t) {
  return (sige_dev_backend *)t->backend;
}

/* The backend interface of every device backend (device_iface.c). */
extern const sige_backend_iface sige_device_iface;

/* Releases everything the backend holds (the iface's destroy). */
void sige_dev_destroy(sige_dev_backend *be);

/* The executors' constructors fill prims, impl and base.info. */
gboolean sige_sim_init(sige_dev_backend *be, GError **error);
gboolean sige_cuda_init(sige_dev_backend *be, GError **error); /* gpu/backend_cuda.c */

/* Latches the first failure (later ones are dropped: the first one is the
 * cause).  Returns FALSE for `return sige_dev_fail(...)`. */
gboolean sige_dev_fail(sige_dev_backend *be, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* FALSE + the latched failure (cleared) in error; TRUE when there is none. */
gboolean sige_dev_check(sige_dev_backend *be, GError **error);

/* Device memory through the backend's cache of freed blocks: cudaMalloc and
 * cudaFree synchronise the device, so blocks are reused by size class. */
void *sige_dev_alloc(sige_dev_backend *be, size_t bytes, GError **error);
void sige_dev_free(sige_dev_backend *be, void *p);

/* The device copy of a parameter tensor (weights, biases, norm affines):
 * its own data when it already lives on be; a host tensor is uploaded once
 * and mirrored, keyed by its data pointer (so parameters must not change or
 * be freed while the backend lives); a host F16 tensor (half weights kept
 * half) is widened on upload, so device kernels read float32 always.  NULL
 * for NULL; NULL + latched failure when it cannot be uploaded. */
const float *sige_dev_param(sige_dev_backend *be, const sige_tensor *t);

/* Small host arrays (block corners, index maps, per-channel scale / shift)
 * for one launch: packed into one upload to the argument arena; dev[i]
 * receives the device address of parts[i] (NULL for a NULL host array).
 * FALSE + latched failure. */
typedef struct {
  const void *host;
  size_t bytes;
} sige_dev_arg;
gboolean sige_dev_args(sige_dev_backend *be, const sige_dev_arg *parts, int n, const void **dev);

/* A device scratch buffer reused across ops (contents undefined). */
void *sige_dev_scratch(sige_dev_backend *be, int slot, size_t bytes);

/* Launches with the element-count limit checked. */
gboolean sige_dev_launch(sige_dev_backend *be, sige_kernel k, const void *args, size_t n);

/* Row-major SGEMM (the cblas_sgemm CblasRowMajor calls of the CPU code)
 * mapped onto the column-major primitive. */
gboolean sige_dev_gemm_rm(sige_dev_backend *be, int transa, int transb, int m, int n, int k,
                          float alpha, const float *a, int lda, const float *b, int ldb,
                          float beta, float *c, int ldc);

/* The same for a batch of products, each operand advancing by its stride. */
gboolean sige_dev_gemm_rm_batched(sige_dev_backend *be, int transa, int transb, int m, int n, int k,
                                  float alpha, const float *a, int lda, long long stride_a,
                                  const float *b, int ldb, long long stride_b, float beta,
                                  float *c, int ldc, long long stride_c, int batch);

/* The planes descriptor of a 4-D tensor. */
sige_k_planes sige_dev_planes(const sige_tensor *t);

/* TRUE when t (may be NULL) is on be; otherwise latches a failure naming op. */
gboolean sige_dev_on(sige_dev_backend *be, const sige_tensor *t, const char *op);

/* n elements of storage ss at src to storage ds at dst, both on be. */
gboolean sige_dev_convert(sige_dev_backend *be, void *dst, sige_storage ds, const void *src,
                          sige_storage ss, size_t n);

/* The device implementations of the ops (the entries of sige_device_iface,
 * contracts in ../backend_impl.h).  Parameters (weights, biases, norm
 * affines) may be host tensors (mirrored once); host float arrays (scale /
 * shift) are uploaded per call.  Void ops latch failures in the backend. */
SIGE_BACKEND_DECLARE(sige_dev_mem, sige_dev)

/* The undo log's records (the iface's undo_pack / undo_unpack): the
 * record buffer holds the tile table and the elements, channel-major within
 * each tile. */
void *sige_dev_undo_save(sige_dev_backend *be, void *base, int esize, int c, int w, size_t plane,
                         const int *tiles, int ntiles, size_t elems, GError **error);
void sige_dev_undo_restore(sige_dev_backend *be, void *base, int esize, int w, size_t plane,
                           int ntiles, size_t elems, void *saved);
