// Element-wise kernels: affine + activation, SPADE modulation, add, the
// bias fill ahead of a GEMM, storage conversions and resampling.
#include "cuda_kernels.h"
#include "launch.cuh"

extern "C" int sige_cuda_launch_elementwise(int kernel, const void *args, size_t n, void *stream) {
  cudaStream_t s = (cudaStream_t)stream;
  switch (kernel) {
    case SIGE_K_AFFINE: return sige_launch_each<sige_k_affine_args, sige_k_affine>(args, n, s);
    case SIGE_K_MODULATE: return sige_launch_each<sige_k_binary_args, sige_k_modulate>(args, n, s);
    case SIGE_K_ADD: return sige_launch_each<sige_k_binary_args, sige_k_add>(args, n, s);
    case SIGE_K_CHANNEL_FILL:
      return sige_launch_each<sige_k_fill_args, sige_k_channel_fill>(args, n, s);
    case SIGE_K_F32_TO_F16:
      return sige_launch_each<sige_k_convert_args, sige_k_f32_to_f16>(args, n, s);
    case SIGE_K_F16_TO_F32:
      return sige_launch_each<sige_k_convert_args, sige_k_f16_to_f32>(args, n, s);
    case SIGE_K_RESAMPLE:
      return sige_launch_each<sige_k_resample_args, sige_k_resample>(args, n, s);
    case SIGE_K_BILINEAR:
      return sige_launch_each<sige_k_bilinear_args, sige_k_bilinear>(args, n, s);
    case SIGE_K_AVG_POOL2: return sige_launch_each<sige_k_pool_args, sige_k_avg_pool2>(args, n, s);
  }
  return -1;
}
