/* The launchers the CUDA sources of gpu/ export to backend_cuda.c.  Each
 * returns a cudaError_t (0 = success); the element launchers return -1 for
 * a kernel that is not theirs.  stream is a cudaStream_t. */
#pragma once
#include <stddef.h>

#include "device/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

int sige_cuda_launch_elementwise(int kernel, const void *args, size_t n, void *stream);
int sige_cuda_launch_conv(int kernel, const void *args, size_t n, void *stream);
int sige_cuda_launch_sparse(int kernel, const void *args, size_t n, void *stream);
/* prims.plane_sums and prims.softmax_rows (backend_internal.h) */
int sige_cuda_plane_sums(const float *x, sige_k_planes pl, double *out, void *stream);
int sige_cuda_softmax_rows(float *s, int rows, int cols, void *stream);

#ifdef __cplusplus
}
#endif
