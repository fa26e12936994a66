/* Fully connected layer on the CPU: one sgemm against the transposed weight. */
#include <cblas.h>

#include "cpu_internal.h"

gboolean sige_cpu_linear(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                         const sige_tensor *bias, sige_tensor *out, GError **error) {
  const int64_t n = x->shape[0], in = x->shape[1], nout = weight->shape[0];
  if (n == 0 || nout == 0) return TRUE;
  const float *w = sige_cpu_weight_f32(ctx, weight, error);
  if (!w) return FALSE;
  float beta = 0.0f;
  if (bias) {
    /* Seed the result with the bias so sgemm accumulates onto it. */
    for (int64_t i = 0; i < n; i++)
      for (int64_t o = 0; o < nout; o++) out->data[i * nout + o] = bias->data[o];
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)nout, (int)in, 1.0f, x->data,
              (int)in, w, (int)in, beta, out->data, (int)nout);
  sige_ctx_add_macs(ctx, (uint64_t)n * (uint64_t)in * (uint64_t)nout);
  return TRUE;
}
