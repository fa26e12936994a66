// The element kernels of core/src/backend/device/kernels.h on the GPU: one launch
// per kernel of the table (SIGE_KERNELS), each body over a grid-stride loop
// (launch.cuh).  The table is expanded here, so this file never lists the
// kernels itself.
#include "cuda_kernels.h"
#include "launch.cuh"

extern "C" int sige_cuda_launch(int kernel, const void *args, size_t n, void *stream) {
  cudaStream_t s = (cudaStream_t)stream;
  switch (kernel) {
#define SIGE_CUDA_KERNEL_CASE(id, args_type, body) \
  case id: return sige_launch_each<args_type, body>(args, n, s);
    SIGE_KERNELS(SIGE_CUDA_KERNEL_CASE)
#undef SIGE_CUDA_KERNEL_CASE
  }
  return -1;
}
