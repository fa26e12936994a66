/* The execution context: thread count, scratch memory, the MAC counter and
 * the compute device.  Everything an op needs besides its operands lives
 * here; libsige keeps no global mutable state of its own. */
#pragma once
#include <glib.h>
#include <stdint.h>

#include "sige/device.h"

G_BEGIN_DECLS

typedef struct sige_ctx sige_ctx;

/* n_threads <= 0: the SIGE_NUM_THREADS environment variable if set, else all
 * online cores.  Also sets OpenBLAS's thread count (a process-wide setting of
 * that library). */
sige_ctx *sige_ctx_new(int n_threads);
/* A context on a device (device.h).  SIGE_DEVICE_CPU is sige_ctx_new;
 * CUDA fails with SIGE_ERROR_DEVICE ("no CUDA device: ...") when it cannot
 * be used; AUTO then falls back to the CPU and records why.  On a device,
 * model passes run there (sige_model_forward_dense, sessions) and the
 * parameters they read are mirrored into device memory once, keyed by
 * their address: free a device context before (or with) the models it ran,
 * never after re-using their memory for other weights. */
sige_ctx *sige_ctx_new_device(int n_threads, sige_device device, GError **error);
void sige_ctx_free(sige_ctx *ctx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_ctx, sige_ctx_free)

int sige_ctx_threads(const sige_ctx *ctx);
/* The device that runs this context's passes: CPU, CUDA or SIM (never AUTO). */
sige_device sige_ctx_device(const sige_ctx *ctx);
/* One line for users: which device runs and, after an AUTO fallback, why
 * not CUDA, e.g. "cuda: NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)" or
 * "cpu, 16 threads (auto: no CUDA device: ...)". */
const char *sige_ctx_device_info(const sige_ctx *ctx);
/* The context's device backend, NULL on the CPU: where sige_tensor_to_backend
 * puts a tensor for ops to run there. */
sige_backend *sige_ctx_backend(const sige_ctx *ctx);

/* A 64-byte aligned scratch buffer of at least n_floats, owned by the context
 * and reused across calls (its contents are undefined).  Each slot (0..4) is an
 * independent buffer so that an op can hold two at once (slot 4: the CPU's
 * widened half weights).  NULL + GError on OOM. */
float *sige_ctx_scratch(sige_ctx *ctx, int slot, size_t n_floats, GError **error);
#define SIGE_CTX_SCRATCH_SLOTS 5

/* Follows what the CPUs have free: from the busy time of other processes
 * at nice <= 0 on this process's CPUs since the last call (/proc/stat; a
 * window under 50 ms keeps the count), runs with the free CPUs, rounded,
 * between 1 and the count the context was made with; niced work is left
 * out (it yields to us).  Waiting workers do not give cores back at once,
 * so on a 2-core machine with one other busy process, 1 thread beats 2
 * (docs/PERFORMANCE.md, "Contention").  Sessions call it before each pass.
 * Returns the thread count now in use (sige_ctx_threads). */
int sige_ctx_fit_threads(sige_ctx *ctx);

/* Multiply-accumulates executed by conv and matmul ops since the last reset. */
void sige_ctx_add_macs(sige_ctx *ctx, uint64_t macs);
uint64_t sige_ctx_macs(const sige_ctx *ctx);
void sige_ctx_reset_macs(sige_ctx *ctx);

/* How the CPU backend ran a convolution (bits of sige_ctx_conv_algos). */
typedef enum {
  SIGE_CONV_IM2COL = 1 << 0,     /* im2col + sgemm */
  SIGE_CONV_1X1 = 1 << 1,        /* 1x1: sgemm on the planes */
  SIGE_CONV_DEPTHWISE = 1 << 2,  /* direct depthwise loop */
  SIGE_CONV_SMALL_COUT = 1 << 3, /* direct loop for <= 4 output channels */
  SIGE_CONV_WINO4 = 1 << 4,      /* Winograd F(4x4, 3x3) */
  SIGE_CONV_WINO2 = 1 << 5,      /* Winograd F(2x2, 3x3) */
  SIGE_CONV_WINO4_FUSED = 1 << 6, /* F(4x4) inside a sparse gather / scatter (sige_sparse_conv) */
} sige_conv_algo;

/* A convolution that counted `macs` direct-convolution MACs (added to
 * sige_ctx_macs, the published definition) ran with algorithm algo and
 * executed `mults` multiplications in its products (Winograd: fewer). */
void sige_ctx_add_conv(sige_ctx *ctx, sige_conv_algo algo, uint64_t macs, uint64_t mults);
/* The multiplications executed since the last reset: sige_ctx_macs less
 * what the convolutions saved (equal to it without Winograd). */
uint64_t sige_ctx_mults(const sige_ctx *ctx);
/* The sige_conv_algo bits of the convolutions since the last reset or
 * take, which clears them. */
unsigned sige_ctx_take_conv_algos(sige_ctx *ctx);
/* Which algorithm the CPU runs stride-1 3x3 convolutions with:
 * AUTO (the default) picks Winograd F(4x4, 3x3) by the measured rule of
 * cpu/conv2d.c and im2col + sgemm elsewhere; IM2COL never uses Winograd;
 * WINO4 / WINO2 use F(4x4) / F(2x2) on every 3x3 stride-1 groups-1 conv
 * with more than 4 output channels (for tests and benchmarks).  A new
 * context starts with the policy the environment variable SIGE_CONV names
 * (auto, im2col, wino4, wino2), AUTO without it. */
typedef enum {
  SIGE_CONV_POLICY_AUTO,
  SIGE_CONV_POLICY_IM2COL,
  SIGE_CONV_POLICY_WINO4,
  SIGE_CONV_POLICY_WINO2,
} sige_conv_policy;
void sige_ctx_set_conv_policy(sige_ctx *ctx, sige_conv_policy policy);
sige_conv_policy sige_ctx_conv_policy(const sige_ctx *ctx);

/* Bytes of derived weight data (Winograd-transformed kernels) that ops of
 * this context made and keep on the weight tensors; never reset. */
size_t sige_ctx_prepared_bytes(const sige_ctx *ctx);
void sige_ctx_add_prepared_bytes(sige_ctx *ctx, size_t bytes);

/* Winograd-transformed weights (4x the bytes of a 3x3 layer's weights for
 * F(4x4)) are kept on the weight tensors while this context's prepared
 * bytes stay within this limit, and made per call beyond it: less memory,
 * more time (docs/PERFORMANCE.md, "Kept or per-call Winograd weights").
 * A new context starts with the environment's SIGE_WINOGRAD_KEEP_MB
 * (MiB, 0 = never keep), else 1024 MiB: all of GauGAN's and DDPM's. */
void sige_ctx_set_winograd_keep_bytes(sige_ctx *ctx, size_t bytes);
size_t sige_ctx_winograd_keep_bytes(const sige_ctx *ctx);

/* Rows per band of the banded recording passes (SPADE blocks with fp16
 * caches write each layer band by band, so no whole float32 layer exists):
 * SIGE_BAND_ROWS_AUTO picks them from an 8 MiB band, 0 runs those blocks
 * unbanded, n > 0 takes n rows (rounded up to a multiple of 4).  A new
 * context starts with the environment's SIGE_SPADE_BAND_ROWS, else auto. */
#define SIGE_BAND_ROWS_AUTO (-1)
void sige_ctx_set_band_rows(sige_ctx *ctx, int rows);
int sige_ctx_band_rows(const sige_ctx *ctx);

/* Half weights (sige_weights_keep_half) widened per use by this context's
 * ops: values and nanoseconds spent, since it was made; never reset.  What
 * keeping weights half costs in time (docs/PERFORMANCE.md). */
void sige_ctx_widen_stats(const sige_ctx *ctx, uint64_t *values, uint64_t *ns);
void sige_ctx_add_widen(sige_ctx *ctx, uint64_t values, uint64_t ns);

G_END_DECLS
