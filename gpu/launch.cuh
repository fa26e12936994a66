// One launcher for every element kernel of core/src/backend/device/kernels.h: a
// grid-stride loop calling the body for each element, one stream.
#pragma once
#include <cuda_runtime.h>
#include <string.h>

#include "backend/device/kernels.h"

// __grid_constant__: the bodies take the arguments by address; this keeps
// them in parameter memory instead of a per-thread local copy.
template <typename A, void (*F)(const A *, uint32_t)>
__global__ void sige_each(const __grid_constant__ A a, uint32_t n) {
  // i < 2^31 and the stride < 2^31: the sum cannot wrap
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    F(&a, i);
}

template <typename A, void (*F)(const A *, uint32_t)>
static cudaError_t sige_launch_each(const void *args, size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  A a;
  memcpy(&a, args, sizeof a);
  const unsigned threads = 256;
  // beyond a few waves the grid-stride loop does the rest
  size_t blocks = (n + threads - 1) / threads;
  if (blocks > (1u << 20)) blocks = 1u << 20;
  sige_each<A, F><<<(unsigned)blocks, threads, 0, stream>>>(a, (uint32_t)n);
  return cudaGetLastError();
}
