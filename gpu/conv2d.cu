// Convolution kernels: im2col (the GEMM itself is cuBLAS, backend_cuda.c)
// and the direct depthwise convolution.
#include "cuda_kernels.h"
#include "launch.cuh"

extern "C" int sige_cuda_launch_conv(int kernel, const void *args, size_t n, void *stream) {
  cudaStream_t s = (cudaStream_t)stream;
  switch (kernel) {
    case SIGE_K_IM2COL: return sige_launch_each<sige_k_im2col_args, sige_k_im2col>(args, n, s);
    case SIGE_K_DEPTHWISE:
      return sige_launch_each<sige_k_depthwise_args, sige_k_depthwise>(args, n, s);
  }
  return -1;
}
