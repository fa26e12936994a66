/* What tensors and contexts know of backends: an opaque owner of memory.
 *
 * A tensor's data belongs to a backend (sige_tensor.backend); NULL is host
 * memory, which the CPU backend owns.  Everything a tensor does with its
 * memory (allocate, free, copy, convert its storage, move it between the
 * host and a device) goes through these functions, which hand it to the
 * owning backend (core/src/backend/backend_impl.h); the tensor never looks
 * inside.  A context holds one backend, created and freed here.
 *
 * Device backends run in stream order and latch failures of calls that
 * cannot report them (copy_bytes); sige_buffer_check reports and clears the
 * first one. */
#pragma once
#include <glib.h>
#include <stddef.h>

#include "sige/device.h"
#include "sige/tensor.h"

/* bytes of memory on be (zero-filled when zero); NULL + SIGE_ERROR_NOMEM. */
void *sige_buffer_alloc(sige_backend *be, size_t bytes, gboolean zero, GError **error);
void sige_buffer_free(sige_backend *be, void *p);

/* n elements from src (storage ss, on src_be) to dst (storage ds, on dst_be),
 * converting the storage; both on one backend, or one on the host.  Waits
 * for a device when the destination is the host; FALSE + error (a latched
 * device failure included). */
gboolean sige_buffer_copy_elems(sige_backend *dst_be, void *dst, sige_storage ds,
                                sige_backend *src_be, const void *src, sige_storage ss, size_t n,
                                GError **error);
/* bytes as they are, same pairings; a failure is latched (sige_buffer_check). */
gboolean sige_buffer_copy_bytes(sige_backend *dst_be, void *dst, sige_backend *src_be,
                                const void *src, size_t bytes);
/* FALSE + the failure be latched (then cleared); TRUE when there is none. */
gboolean sige_buffer_check(sige_backend *be, GError **error);

/* The backend of a context on `device` (not CPU or AUTO: the CPU backend has
 * no state, a context on it holds NULL).  NULL + SIGE_ERROR_DEVICE ("no CUDA
 * device: ...") when the device cannot be used. */
sige_backend *sige_backend_new(sige_device device, int n_threads, GError **error);
void sige_backend_free(sige_backend *be);
sige_device sige_backend_device(const sige_backend *be);
/* One line for users, e.g. "cuda: NVIDIA H100 ... (sm_90, 79 GiB)". */
const char *sige_backend_info(const sige_backend *be);

/* What a backend keeps in sige_tensor.derived: its own struct starts with
 * this.  fingerprint is of the contents it was derived from (the op that
 * made it compares before each use and remakes it on a mismatch); bytes is
 * what it holds, for the memory reports. */
struct sige_tensor_derived {
  void (*destroy)(struct sige_tensor_derived *d);
  size_t bytes;
  guint64 fingerprint;
};
