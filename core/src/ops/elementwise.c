/* Element-wise binary ops and channel concatenation. */
#include <string.h>

#include "ops_internal.h"

#define EW_CHUNK ((size_t)1 << 14)

static gboolean same_layout3(const sige_tensor *a, const sige_tensor *b, const sige_tensor *c) {
  return sige_tensor_same_shape(a, b) && sige_tensor_same_shape(a, c) && a->layout == b->layout &&
         a->layout == c->layout && sige_ops_f32(a) && sige_ops_f32(b) && sige_ops_f32(c);
}

void sige_add(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b, sige_tensor *out) {
  g_return_if_fail(ctx && a && b && out);
  g_return_if_fail(same_layout3(a, b, out));
  if (SIGE_ON_DEVICE(a)) {
    sige_dev_binary(ctx, FALSE, a, b, NULL, out);
    return;
  }
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

void sige_spade_modulate(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *gamma,
                         const sige_tensor *beta, sige_tensor *out) {
  g_return_if_fail(ctx && x && gamma && beta && out && sige_ops_f32(out));
  g_return_if_fail(same_layout3(x, gamma, beta) && sige_tensor_same_shape(x, out) &&
                   x->layout == out->layout);
  if (SIGE_ON_DEVICE(x)) {
    sige_dev_binary(ctx, TRUE, x, gamma, beta, out);
    return;
  }
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

void sige_concat_channels(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b,
                          sige_tensor *out) {
  g_return_if_fail(ctx && sige_ops_is4(a) && sige_ops_is4(b) && sige_ops_is4(out));
  g_return_if_fail(a->shape[0] == b->shape[0] && a->shape[2] == b->shape[2] &&
                   a->shape[3] == b->shape[3] && out->shape[0] == a->shape[0] &&
                   out->shape[1] == a->shape[1] + b->shape[1] && out->shape[2] == a->shape[2] &&
                   out->shape[3] == a->shape[3]);
  g_return_if_fail(a->layout == b->layout && a->layout == out->layout);
  g_return_if_fail(sige_ops_f32(a) && sige_ops_f32(b) && sige_ops_f32(out));
  g_return_if_fail(out->data != a->data && out->data != b->data);
  if (SIGE_ON_DEVICE(a)) {
    sige_dev_concat_channels(ctx, a, b, out);
    return;
  }
  (void)ctx;
  if (a->layout == SIGE_LAYOUT_CNHW) {
    /* Channel-major: the result is simply a followed by b. */
    memcpy(out->data, a->data, a->numel * sizeof(float));
    memcpy(out->data + a->numel, b->data, b->numel * sizeof(float));
    return;
  }
  const size_t sa = sige_ops_img_stride(a), sb = sige_ops_img_stride(b);
  for (int n = 0; n < SIGE_N(a); n++) {
    float *dst = out->data + (size_t)n * (sa + sb);
    memcpy(dst, a->data + (size_t)n * sa, sa * sizeof(float));
    memcpy(dst + sa, b->data + (size_t)n * sb, sb * sizeof(float));
  }
}
