// The sparse kernels: gather, scatter, the residual block's shortcut
// correction, and the undo log's tile copies.
#include "cuda_kernels.h"
#include "launch.cuh"

extern "C" int sige_cuda_launch_sparse(int kernel, const void *args, size_t n, void *stream) {
  cudaStream_t s = (cudaStream_t)stream;
  switch (kernel) {
    case SIGE_K_GATHER: return sige_launch_each<sige_k_gather_args, sige_k_gather>(args, n, s);
    case SIGE_K_SCATTER: return sige_launch_each<sige_k_scatter_args, sige_k_scatter>(args, n, s);
    case SIGE_K_BLOCK_RESIDUAL:
      return sige_launch_each<sige_k_scatter_args, sige_k_block_residual>(args, n, s);
    case SIGE_K_TILES_PACK:
      return sige_launch_each<sige_k_tiles_args, sige_k_tiles_pack>(args, n, s);
    case SIGE_K_TILES_UNPACK:
      return sige_launch_each<sige_k_tiles_args, sige_k_tiles_unpack>(args, n, s);
  }
  return -1;
}
