/* The CUDA executor of the device backend's primitives (see
 * core/src/backend/device/device_impl.h): cudart for memory and the one
 * stream, the kernels of the CUDA sources next to this file, cuBLAS for
 * SGEMM (opened when a backend starts: cublas_loader.h says why).  Plain cudaMalloc memory (the backend caches freed blocks), no
 * managed memory.  Written in C against the CUDA runtime's C API; only the
 * kernels are CUDA C++. */
#include <cuda_runtime_api.h>
#include <string.h>

#include "cublas_loader.h"
#include "cuda_kernels.h"
#include "backend/device/device_impl.h"
#include "sige/error.h"

/* Small uploads (block corners, index maps, scale / shift: most launches
 * have one) go through pinned slots so that they stay asynchronous; a
 * pageable cudaMemcpyAsync may wait for the stream.  A slot is reused once
 * the copy that read it has run (its event). */
#define RING_SLOTS 64
#define SLOT_BYTES ((size_t)64 << 10)

typedef struct {
  cudaStream_t stream;
  sige_cublas lib;
  cublasHandle_t blas;
  char *ring;
  cudaEvent_t ring_done[RING_SLOTS];
  int ring_next;
} cuda_state;

static cuda_state *state(sige_dev_backend *be) { return be->impl; }

static gboolean ok(sige_dev_backend *be, cudaError_t e, const char *what) {
  if (e == cudaSuccess) return TRUE;
  return sige_dev_fail(be, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

static gboolean blas_ok(sige_dev_backend *be, cublasStatus_t st, const char *what) {
  if (st == CUBLAS_STATUS_SUCCESS) return TRUE;
  return sige_dev_fail(be, "%s: %s", what, state(be)->lib.status_string(st));
}

gboolean sige_cuda_built(void) { return TRUE; }

gboolean sige_cuda_probe(char **description, GError **error) {
  if (description) *description = NULL;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_DEVICE, "no CUDA device: %s",
                e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
    cudaGetLastError(); /* not sticky: clear it */
    return FALSE;
  }
  struct cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_DEVICE, "no CUDA device: cannot query device 0");
    cudaGetLastError();
    return FALSE;
  }
  /* the build carries sm_80 and sm_90 code and compute_90 PTX */
  if (prop.major < 8) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_DEVICE,
                "no CUDA device: %s is compute capability %d.%d; this build needs 8.0 or newer",
                prop.name, prop.major, prop.minor);
    return FALSE;
  }
  if (description)
    *description = g_strdup_printf("%s (sm_%d%d, %zu GiB)", prop.name, prop.major, prop.minor,
                                   (size_t)prop.totalGlobalMem >> 30);
  return TRUE;
}

static void *cuda_malloc(sige_dev_backend *be, size_t bytes) {
  (void)be;
  void *p = NULL;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError(); /* out of memory is not sticky; the caller reports it */
    return NULL;
  }
  return p;
}

static void cuda_free(sige_dev_backend *be, void *p) {
  (void)be;
  cudaFree(p);
}

static gboolean cuda_upload(sige_dev_backend *be, void *dst, const void *src, size_t bytes) {
  cuda_state *st = state(be);
  if (bytes == 0) return TRUE;
  if (bytes <= SLOT_BYTES) {
    const int slot = st->ring_next;
    st->ring_next = (st->ring_next + 1) % RING_SLOTS;
    char *pinned = st->ring + (size_t)slot * SLOT_BYTES;
    if (!ok(be, cudaEventSynchronize(st->ring_done[slot]), "cudaEventSynchronize")) return FALSE;
    memcpy(pinned, src, bytes);
    return ok(be, cudaMemcpyAsync(dst, pinned, bytes, cudaMemcpyHostToDevice, st->stream),
              "cudaMemcpyAsync (upload)") &&
           ok(be, cudaEventRecord(st->ring_done[slot], st->stream), "cudaEventRecord");
  }
  /* large (weights, inputs): the caller may free src on return, so wait */
  return ok(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st->stream),
            "cudaMemcpyAsync (upload)") &&
         ok(be, cudaStreamSynchronize(st->stream), "cudaStreamSynchronize (upload)");
}

static gboolean cuda_download(sige_dev_backend *be, void *dst, const void *src, size_t bytes) {
  cuda_state *st = state(be);
  if (bytes &&
      !ok(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st->stream),
          "cudaMemcpyAsync (download)"))
    return FALSE;
  /* also where asynchronous kernel faults surface */
  return ok(be, cudaStreamSynchronize(st->stream), "the device (cudaStreamSynchronize)");
}

static gboolean cuda_copy(sige_dev_backend *be, void *dst, const void *src, size_t bytes) {
  return !bytes || ok(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice,
                                          state(be)->stream),
                      "cudaMemcpyAsync (device)");
}

static gboolean cuda_zero(sige_dev_backend *be, void *dst, size_t bytes) {
  return !bytes || ok(be, cudaMemsetAsync(dst, 0, bytes, state(be)->stream), "cudaMemsetAsync");
}

static gboolean launched(sige_dev_backend *be, int e, const char *what) {
  if (e == 0) return TRUE;
  if (e < 0) return sige_dev_fail(be, "%s: no CUDA kernel", what);
  return ok(be, (cudaError_t)e, what);
}

static gboolean cuda_launch(sige_dev_backend *be, sige_kernel k, const void *args, size_t n) {
  const int e = sige_cuda_launch((int)k, args, n, state(be)->stream);
  if (e == 0) return TRUE;
  char what[48];
  g_snprintf(what, sizeof what, "launch of kernel %d", (int)k);
  return launched(be, e, what);
}

static gboolean cuda_plane_sums(sige_dev_backend *be, const float *x, sige_k_planes pl, double *out) {
  return launched(be, sige_cuda_plane_sums(x, pl, out, state(be)->stream), "plane sums");
}

static gboolean cuda_softmax_rows(sige_dev_backend *be, float *s, int rows, int cols) {
  return launched(be, sige_cuda_softmax_rows(s, rows, cols, state(be)->stream), "softmax");
}

static cublasOperation_t op(int trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

static gboolean cuda_sgemm(sige_dev_backend *be, int transa, int transb, int m, int n, int k,
                           float alpha, const float *a, int lda, const float *b, int ldb,
                           float beta, float *c, int ldc) {
  return blas_ok(be,
                 state(be)->lib.sgemm(state(be)->blas, op(transa), op(transb), m, n, k, &alpha, a, lda, b,
                             ldb, &beta, c, ldc),
                 "cublasSgemm");
}

static gboolean cuda_sgemm_batched(sige_dev_backend *be, int transa, int transb, int m, int n, int k,
                                   float alpha, const float *a, int lda, long long stride_a,
                                   const float *b, int ldb, long long stride_b, float beta,
                                   float *c, int ldc, long long stride_c, int batch) {
  return blas_ok(be,
                 state(be)->lib.sgemm_strided_batched(state(be)->blas, op(transa), op(transb),
                                                      m, n, k, &alpha, a, lda, stride_a, b, ldb,
                                                      stride_b, &beta, c, ldc, stride_c, batch),
                 "cublasSgemmStridedBatched");
}

static void cuda_destroy(sige_dev_backend *be) {
  cuda_state *st = state(be);
  if (!st) return;
  if (st->stream) cudaStreamSynchronize(st->stream);
  for (int i = 0; i < RING_SLOTS; i++)
    if (st->ring_done[i]) cudaEventDestroy(st->ring_done[i]);
  if (st->ring) cudaFreeHost(st->ring);
  if (st->blas) st->lib.destroy(st->blas);
  sige_cublas_close(&st->lib);
  if (st->stream) cudaStreamDestroy(st->stream);
  g_free(st);
  be->impl = NULL;
}

static const sige_prims cuda_prims = {
    .name = "cuda",
    .destroy = cuda_destroy,
    .malloc = cuda_malloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .zero = cuda_zero,
    .launch = cuda_launch,
    .plane_sums = cuda_plane_sums,
    .softmax_rows = cuda_softmax_rows,
    .sgemm = cuda_sgemm,
    .sgemm_batched = cuda_sgemm_batched,
};

gboolean sige_cuda_init(sige_dev_backend *be, GError **error) {
  g_autofree char *desc = NULL;
  if (!sige_cuda_probe(&desc, error)) return FALSE;
  cuda_state *st = g_new0(cuda_state, 1);
  be->prims = &cuda_prims;
  be->impl = st;
  const char *step = "cudaSetDevice";
  cudaError_t e = cudaSetDevice(0);
  if (e == cudaSuccess) {
    step = "cudaStreamCreate";
    e = cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking);
  }
  if (e == cudaSuccess) {
    step = "cudaHostAlloc";
    e = cudaHostAlloc((void **)&st->ring, RING_SLOTS * SLOT_BYTES, cudaHostAllocDefault);
  }
  for (int i = 0; i < RING_SLOTS && e == cudaSuccess; i++) {
    step = "cudaEventCreate";
    e = cudaEventCreateWithFlags(&st->ring_done[i], cudaEventDisableTiming);
  }
  if (e == cudaSuccess && !sige_cublas_open(&st->lib, NULL, error)) {
    g_prefix_error(error, "no CUDA device: ");
    cuda_destroy(be);
    be->prims = NULL;
    return FALSE;
  }
  cublasStatus_t bs = CUBLAS_STATUS_SUCCESS;
  if (e == cudaSuccess && (bs = st->lib.create(&st->blas)) == CUBLAS_STATUS_SUCCESS)
    bs = st->lib.set_stream(st->blas, st->stream);
  if (e != cudaSuccess || bs != CUBLAS_STATUS_SUCCESS) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_DEVICE, "no CUDA device: %s: %s",
                e != cudaSuccess ? step : "cuBLAS",
                e != cudaSuccess ? cudaGetErrorString(e) : st->lib.status_string(bs));
    cuda_destroy(be);
    be->prims = NULL;
    return FALSE;
  }
  be->base.info = g_strdup_printf("cuda: %s", desc);
  return TRUE;
}
