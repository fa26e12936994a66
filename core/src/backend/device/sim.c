/* The simulated device: the device backend's primitives executed on the
 * CPU.  Memory is host memory handed out behind a tag (kernels.h,
 * SIGE_SIM_TAG) that makes any dereference outside these primitives fault;
 * the element kernels are the bodies the GPU runs, in a host loop; SGEMM is
 * OpenBLAS called with cuBLAS's column-major arguments.  It exists so that
 * the CPU tests cover everything of the device path but the CUDA launches. */
#define SIGE_KERNELS_UNTAG 1
#include <cblas.h>
#include <string.h>

#include "../softmax_row.h"
#include "device_impl.h"
#include "sige/error.h"

static void *tag(void *p) { return p ? (void *)((uintptr_t)p ^ SIGE_SIM_TAG) : NULL; }
static void *untag(const void *p) { return p ? (void *)((uintptr_t)p ^ SIGE_SIM_TAG) : NULL; }

static void *sim_malloc(sige_dev_backend *be, size_t bytes) {
  (void)be;
  return tag(sige_aligned_alloc(bytes));
}

static void sim_free(sige_dev_backend *be, void *p) {
  (void)be;
  sige_aligned_free(untag(p));
}

static gboolean sim_upload(sige_dev_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  if (bytes) memcpy(untag(dst), src, bytes);
  return TRUE;
}

static gboolean sim_download(sige_dev_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  if (bytes) memcpy(dst, untag(src), bytes);
  return TRUE;
}

static gboolean sim_copy(sige_dev_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  if (bytes) memmove(untag(dst), untag(src), bytes);
  return TRUE;
}

static gboolean sim_zero(sige_dev_backend *be, void *dst, size_t bytes) {
  (void)be;
  if (bytes) memset(untag(dst), 0, bytes);
  return TRUE;
}

/* One body over [0, n); elements are independent, as on the GPU. */
#define EACH(type, body)                                                     \
  do {                                                                       \
    const type *a_ = args;                                                   \
    const long n_ = (long)n;                                                 \
    _Pragma("omp parallel for num_threads(be->n_threads) schedule(static)") \
    for (long i_ = 0; i_ < n_; i_++) body(a_, (uint32_t)i_);                 \
  } while (0)

static gboolean sim_launch(sige_dev_backend *be, sige_kernel k, const void *args, size_t n) {
  switch (k) {
#define SIM_KERNEL_CASE(id, args_type, body) \
  case id: EACH(args_type, body); break;
    SIGE_KERNELS(SIM_KERNEL_CASE)
#undef SIM_KERNEL_CASE
    default: return sige_dev_fail(be, "unknown kernel %d", (int)k);
  }
  return TRUE;
}

static gboolean sim_plane_sums(sige_dev_backend *be, const float *x, sige_k_planes pl, double *out) {
  const int planes = pl.n * pl.c;
  const float *xs = untag(x);
  double *o = untag(out);
#pragma omp parallel for num_threads(be->n_threads) schedule(static)
  for (int p = 0; p < planes; p++) {
    const float *v = xs + sige_k_plane_at(&pl, (uint32_t)(p / pl.c), (uint32_t)(p % pl.c));
    const double pivot = pl.hw ? v[0] : 0.0;
    double s1 = 0.0, s2 = 0.0;
    for (uint32_t i = 0; i < pl.hw; i++) {
      const double d = (double)v[i] - pivot;
      s1 += d;
      s2 += d * d;
    }
    o[3 * p] = pivot;
    o[3 * p + 1] = s1;
    o[3 * p + 2] = s2;
  }
  return TRUE;
}

static gboolean sim_softmax_rows(sige_dev_backend *be, float *s, int rows, int cols) {
  float *base = untag(s);
#pragma omp parallel for num_threads(be->n_threads) schedule(static)
  for (int i = 0; i < rows; i++) sige_softmax_row(base + (size_t)i * cols, cols);
  return TRUE;
}

static gboolean sim_sgemm(sige_dev_backend *be, int transa, int transb, int m, int n, int k,
                          float alpha, const float *a, int lda, const float *b, int ldb,
                          float beta, float *c, int ldc) {
  (void)be;
  cblas_sgemm(CblasColMajor, transa ? CblasTrans : CblasNoTrans, transb ? CblasTrans : CblasNoTrans,
              m, n, k, alpha, untag(a), lda, untag(b), ldb, beta, untag(c), ldc);
  return TRUE;
}

static gboolean sim_sgemm_batched(sige_dev_backend *be, int transa, int transb, int m, int n, int k,
                                  float alpha, const float *a, int lda, long long stride_a,
                                  const float *b, int ldb, long long stride_b, float beta,
                                  float *c, int ldc, long long stride_c, int batch) {
  for (int i = 0; i < batch; i++)
    sim_sgemm(be, transa, transb, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
              beta, c + i * stride_c, ldc);
  return TRUE;
}

static const sige_prims sim_prims = {
    .name = "sim",
    .destroy = NULL,
    .malloc = sim_malloc,
    .free = sim_free,
    .upload = sim_upload,
    .download = sim_download,
    .copy = sim_copy,
    .zero = sim_zero,
    .launch = sim_launch,
    .plane_sums = sim_plane_sums,
    .softmax_rows = sim_softmax_rows,
    .sgemm = sim_sgemm,
    .sgemm_batched = sim_sgemm_batched,
};

gboolean sige_sim_init(sige_dev_backend *be, GError **error) {
  (void)error;
  be->prims = &sim_prims;
  be->base.info = g_strdup_printf("sim (the device backend on the CPU, %d thread%s; for tests)",
                             be->n_threads, be->n_threads == 1 ? "" : "s");
  return TRUE;
}
