/* cuBLAS, opened when a CUDA backend starts rather than linked: linking it
 * (and with it cuBLASLt, 540 MB) cost every process of a CUDA build 216 MB
 * of resident memory and 0.4 s at start, GPU or not (`sige --version`
 * 226 MB against 9 MB; docs/PERFORMANCE.md, "cuBLAS opened on demand").
 * The kernels and the runtime API stay linked (cudart is 0.7 MB). */
#pragma once
#include <cublas_v2.h>
#include <glib.h>
#include <gmodule.h>

typedef struct {
  GModule *module;
  cublasStatus_t (*create)(cublasHandle_t *handle);
  cublasStatus_t (*destroy)(cublasHandle_t handle);
  cublasStatus_t (*set_stream)(cublasHandle_t handle, cudaStream_t stream);
  const char *(*status_string)(cublasStatus_t status);
  cublasStatus_t (*sgemm)(cublasHandle_t handle, cublasOperation_t transa,
                          cublasOperation_t transb, int m, int n, int k, const float *alpha,
                          const float *a, int lda, const float *b, int ldb, const float *beta,
                          float *c, int ldc);
  cublasStatus_t (*sgemm_strided_batched)(cublasHandle_t handle, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k,
                                          const float *alpha, const float *a, int lda,
                                          long long stride_a, const float *b, int ldb,
                                          long long stride_b, const float *beta, float *c,
                                          int ldc, long long stride_c, int batch);
} sige_cublas;

/* Opens the first of `paths` (NULL-terminated; NULL: this build's cuBLAS,
 * by its configure-time path, then by its soname through the loader's
 * paths) and resolves the functions the backend calls.  FALSE with a
 * SIGE_ERROR_DEVICE error naming each path tried and why (no file, a
 * missing symbol) when none serves; `lib` is then cleared. */
gboolean sige_cublas_open(sige_cublas *lib, const char *const *paths, GError **error);
void sige_cublas_close(sige_cublas *lib);
