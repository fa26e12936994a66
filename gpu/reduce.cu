// The two reductions: per-plane sums (normalisation statistics) and the row
// softmax of attention.  One block per plane / row and a fixed reduction
// tree, so that results do not depend on scheduling: a sparse pass that
// recomputes a norm over unchanged data must get the same statistics as the
// full pass did (the session's changed rectangle relies on it).
#include "cuda_kernels.h"
#include "launch.cuh"

#define SIGE_RED_THREADS 512

template <typename T>
__device__ static T block_sum(T v, T *sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  const T r = sh[0];
  __syncthreads();
  return r;
}

__device__ static float block_max(float v, float *sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  const float r = sh[0];
  __syncthreads();
  return r;
}

__global__ static void plane_sums_kernel(const float *x, sige_k_planes pl, double *out) {
  __shared__ double sh[SIGE_RED_THREADS];
  const uint32_t p = blockIdx.x;
  const float *v = x + sige_k_plane_at(&pl, p / (uint32_t)pl.c, p % (uint32_t)pl.c);
  // around the first element: no cancellation when the mean is large
  const double pivot = v[0];
  double s1 = 0.0, s2 = 0.0;
  for (uint32_t i = threadIdx.x; i < pl.hw; i += blockDim.x) {
    const double d = (double)v[i] - pivot;
    s1 += d;
    s2 += d * d;
  }
  s1 = block_sum(s1, sh);
  s2 = block_sum(s2, sh);
  if (threadIdx.x == 0) {
    out[3 * p] = pivot;
    out[3 * p + 1] = s1;
    out[3 * p + 2] = s2;
  }
}

extern "C" int sige_cuda_plane_sums(const float *x, sige_k_planes pl, double *out, void *stream) {
  const unsigned planes = (unsigned)pl.n * (unsigned)pl.c;
  if (planes == 0 || pl.hw == 0) return cudaSuccess;
  plane_sums_kernel<<<planes, SIGE_RED_THREADS, 0, (cudaStream_t)stream>>>(x, pl, out);
  return cudaGetLastError();
}

__global__ static void softmax_rows_kernel(float *s, int cols) {
  __shared__ float shf[SIGE_RED_THREADS];
  __shared__ double shd[SIGE_RED_THREADS];
  float *r = s + (size_t)blockIdx.x * cols;
  float m = -INFINITY;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, r[j]);
  m = block_max(m, shf);
  double sum = 0.0;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) {
    const float e = expf(r[j] - m);
    r[j] = e;
    sum += e;
  }
  sum = block_sum(sum, shd);
  const float inv = (float)(1.0 / sum);
  for (int j = threadIdx.x; j < cols; j += blockDim.x) r[j] *= inv;
}

extern "C" int sige_cuda_softmax_rows(float *s, int rows, int cols, void *stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  softmax_rows_kernel<<<rows, SIGE_RED_THREADS, 0, (cudaStream_t)stream>>>(s, cols);
  return cudaGetLastError();
}
