/* Element-wise ops on the CPU: activations, per-channel affine maps,
 * binary ops and channel concatenation. */
#include <string.h>

#include "cpu_internal.h"

#define EW_CHUNK ((size_t)1 << 14)

void sige_cpu_affine_act(const float *x, float *y, size_t n, float s, float b, sige_act act) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] * s + b;
  sige_act_inplace(y, n, act);
}


/* Splits large tensors into chunks so that both threads get work even when the
 * tensor is a single plane. */
#define ACT_CHUNK ((size_t)1 << 14)

void sige_cpu_activation(sige_ctx *ctx, const sige_tensor *x, sige_act act, sige_tensor *out) {
  const size_t n = x->numel;
  const long chunks = (long)((n + ACT_CHUNK - 1) / ACT_CHUNK);
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (long ch = 0; ch < chunks; ch++) {
    const size_t a = (size_t)ch * ACT_CHUNK, len = n - a < ACT_CHUNK ? n - a : ACT_CHUNK;
    if (out->data != x->data)
      for (size_t i = 0; i < len; i++) out->data[a + i] = x->data[a + i];
    sige_act_inplace(out->data + a, len, act);
  }
}

void sige_cpu_channel_affine(sige_ctx *ctx, const sige_tensor *x, const float *scale,
                             const float *shift, gboolean per_sample, sige_act act,
                             sige_tensor *out) {
  const int n_img = SIGE_N(x), c_all = SIGE_C(x);
  const size_t hw = (size_t)SIGE_H(x) * (size_t)SIGE_W(x);
  const int planes = n_img * c_all;
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (int pc = 0; pc < planes; pc++) {
    const int n = pc / c_all, c = pc % c_all;
    const size_t k = per_sample ? (size_t)n * c_all + c : (size_t)c;
    sige_cpu_affine_act(sige_cpu_plane(x, n, c), sige_cpu_plane(out, n, c), hw, scale[k],
                        shift[k], act);
  }
}

/* out = a + b */
static void add(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b, sige_tensor *out) {
  const size_t n = a->numel;
  const long chunks = (long)((n + EW_CHUNK - 1) / EW_CHUNK);
  const float *pa = a->data, *pb = b->data;
  float *po = out->data;
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (long ch = 0; ch < chunks; ch++) {
    const size_t s = (size_t)ch * EW_CHUNK, e = n - s < EW_CHUNK ? n : s + EW_CHUNK;
    for (size_t i = s; i < e; i++) po[i] = pa[i] + pb[i];
  }
}

/* out = x * (1 + gamma) + beta */
static void spade_modulate(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *gamma,
                           const sige_tensor *beta, sige_tensor *out) {
  const size_t n = x->numel;
  const long chunks = (long)((n + EW_CHUNK - 1) / EW_CHUNK);
  const float *px = x->data, *pg = gamma->data, *pb = beta->data;
  float *po = out->data;
#pragma omp parallel for num_threads(sige_ctx_threads(ctx)) schedule(static)
  for (long ch = 0; ch < chunks; ch++) {
    const size_t s = (size_t)ch * EW_CHUNK, e = n - s < EW_CHUNK ? n : s + EW_CHUNK;
    /* Same expression as torch's x * (1 + gamma) + beta, in the same order. */
    for (size_t i = s; i < e; i++) po[i] = px[i] * (1.0f + pg[i]) + pb[i];
  }
}

void sige_cpu_binary(sige_ctx *ctx, gboolean modulate, const sige_tensor *x,
                     const sige_tensor *g, const sige_tensor *b, sige_tensor *out) {
  if (modulate)
    spade_modulate(ctx, x, g, b, out);
  else
    add(ctx, x, g, out);
}

void sige_cpu_concat_channels(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b,
                              sige_tensor *out) {
  (void)ctx;
  if (a->layout == SIGE_LAYOUT_CNHW) {
    /* Channel-major: the result is simply a followed by b. */
    memcpy(out->data, a->data, a->numel * sizeof(float));
    memcpy(out->data + a->numel, b->data, b->numel * sizeof(float));
    return;
  }
  const size_t sa = sige_cpu_img_stride(a), sb = sige_cpu_img_stride(b);
  for (int n = 0; n < SIGE_N(a); n++) {
    float *dst = out->data + (size_t)n * (sa + sb);
    memcpy(dst, a->data + (size_t)n * sa, sa * sizeof(float));
    memcpy(dst + sa, b->data + (size_t)n * sb, sb * sizeof(float));
  }
}
