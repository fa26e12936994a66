/* Compute devices.  A context (sige_ctx, and the session that owns one) runs
 * on one device:
 *   cpu   OpenBLAS + OpenMP (the default of every library constructor);
 *   cuda  a CUDA GPU through the device backend (gpu/: CUDA kernels, cuBLAS),
 *         when libsige was built with it and a device and driver are present;
 *   auto  cuda when that works, else cpu (the context says which ran, and
 *         why cuda did not);
 *   sim   for tests: the device backend's own code (the same kernel bodies
 *         and orchestration) executed on the CPU with host memory behind
 *         tagged pointers, so that any host access to device memory crashes
 *         instead of passing unnoticed.  Slow; not for real work.
 * On a device, activations and caches stay in device memory between passes;
 * model inputs and outputs are host tensors, copied at the start and end of
 * a pass. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  SIGE_DEVICE_CPU = 0,
  SIGE_DEVICE_CUDA = 1,
  SIGE_DEVICE_AUTO = 2,
  SIGE_DEVICE_SIM = 3,
} sige_device;

typedef struct sige_backend sige_backend;

/* "cpu", "cuda", "auto", "sim". */
const char *sige_device_name(sige_device d);
/* Parses one of those names; FALSE + SIGE_ERROR_INVALID otherwise. */
gboolean sige_device_parse(const char *name, sige_device *d, GError **error);

/* Whether this build contains the CUDA backend (meson option cuda). */
gboolean sige_cuda_built(void);
/* Whether a CUDA device can be used now.  FALSE + SIGE_ERROR_DEVICE whose
 * message starts with "no CUDA device: " and names the cause (no backend in
 * this build, no driver, no device).  *description (optional) receives the
 * device's name and capability. */
gboolean sige_cuda_probe(char **description, GError **error);

G_END_DECLS
