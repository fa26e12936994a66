/* Sinusoidal timestep embeddings: DDPM (get_timestep_embedding) and latent
 * diffusion (openaimodel timestep_embedding, Stable Diffusion). */
#include <math.h>

#include "ops_internal.h"

void sige_timestep_embedding(const float *t, int n, int dim, sige_tensor *out) {
  g_return_if_fail(t && out && out->ndim == 2 && out->shape[0] == n && out->shape[1] == dim);
  g_return_if_fail(out->storage == SIGE_STORAGE_F32);
  const int half = dim / 2;
  /* half == 1 would divide by zero, as it does in the Python original. */
  g_return_if_fail(half >= 2);
  /* Mirrors the float32 tensor maths of the reference: the exponent step is a
   * Python double rounded to float, then every product is float. */
  /* n x dim floats: computed on the host, then written to wherever out
   * lives (the backend latches a failed upload) */
  g_autofree float *host = g_new(float, (size_t)n * dim);
  const float step = (float)(log(10000.0) / (double)(half - 1));
  for (int j = 0; j < n; j++) {
    float *row = host + (size_t)j * dim;
    for (int i = 0; i < half; i++) {
      const float f = expf((float)i * -step);
      const float a = t[j] * f;
      row[i] = sinf(a);
      row[half + i] = cosf(a);
    }
    if (dim % 2) row[dim - 1] = 0.0f;
  }
  sige_buffer_copy_bytes(out->backend, out->data, NULL, host, (size_t)n * dim * sizeof(float));
}

void sige_timestep_embedding_ldm(const float *t, int n, int dim, sige_tensor *out) {
  g_return_if_fail(t && out && out->ndim == 2 && out->shape[0] == n && out->shape[1] == dim);
  g_return_if_fail(out->storage == SIGE_STORAGE_F32);
  const int half = dim / 2;
  g_return_if_fail(half >= 1);
  /* float32 as torch computes it: (-log(10000) as float * i) / half, then
   * exp, t * f, cos and sin, each rounded to float */
  g_autofree float *host = g_new(float, (size_t)n * dim);
  const float neg_log = (float)-log(10000.0);
  for (int j = 0; j < n; j++) {
    float *row = host + (size_t)j * dim;
    for (int i = 0; i < half; i++) {
      const float e = (neg_log * (float)i) / (float)half;
      const float a = t[j] * expf(e);
      row[i] = cosf(a);
      row[half + i] = sinf(a);
    }
    if (dim % 2) row[dim - 1] = 0.0f;
  }
  sige_buffer_copy_bytes(out->backend, out->data, NULL, host, (size_t)n * dim * sizeof(float));
}
