/* The launchers the CUDA sources of gpu/ export to backend_cuda.c.  Each
 * returns a cudaError_t (0 = success); sige_cuda_launch returns -1 for a
 * kernel that is not in the table.  stream is a cudaStream_t. */
#pragma once
#include <stddef.h>

#include "backend/device/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* element kernel `kernel` (a sige_kernel) over n elements (kernels.cu) */
int sige_cuda_launch(int kernel, const void *args, size_t n, void *stream);
/* prims.plane_sums and prims.softmax_rows (backend/device/device_impl.h) */
int sige_cuda_plane_sums(const float *x, sige_k_planes pl, double *out, void *stream);
int sige_cuda_softmax_rows(float *s, int rows, int cols, void *stream);

#ifdef __cplusplus
}
#endif
