/* The execution context: thread count, scratch memory and the MAC counter.
 * Everything an op needs besides its operands lives here; libsige keeps no
 * global mutable state of its own. */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct sige_ctx sige_ctx;

/* n_threads <= 0: the SIGE_NUM_THREADS environment variable if set, else all
 * online cores.  Also sets OpenBLAS's thread count (a process-wide setting of
 * that library). */
sige_ctx *sige_ctx_new(int n_threads);
void sige_ctx_free(sige_ctx *ctx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_ctx, sige_ctx_free)

int sige_ctx_threads(const sige_ctx *ctx);

/* A 64-byte aligned scratch buffer of at least n_floats, owned by the context
 * and reused across calls (its contents are undefined).  Each slot (0..3) is an
 * independent buffer so that an op can hold two at once.  NULL + GError on OOM. */
float *sige_ctx_scratch(sige_ctx *ctx, int slot, size_t n_floats, GError **error);
#define SIGE_CTX_SCRATCH_SLOTS 4

/* Multiply-accumulates executed by conv and matmul ops since the last reset. */
void sige_ctx_add_macs(sige_ctx *ctx, uint64_t macs);
uint64_t sige_ctx_macs(const sige_ctx *ctx);
void sige_ctx_reset_macs(sige_ctx *ctx);

G_END_DECLS
