/* Element-wise ops, concatenation and resampling on a device. */
#include <math.h>

#include "device_impl.h"
#include "sige/error.h"

void sige_dev_channel_affine(sige_ctx *ctx, const sige_tensor *x, const float *scale, const float *shift,
                     gboolean per_sample, sige_act act, sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "channel_affine")) return;
  const size_t k = per_sample ? (size_t)SIGE_N(x) * SIGE_C(x) : (size_t)SIGE_C(x);
  sige_k_affine_args a = {.x = x->data, .y = out->data, .pl = sige_dev_planes(x),
                          .per_sample = per_sample, .act = (int32_t)act};
  const sige_dev_arg parts[] = {{scale, k * sizeof(float)}, {shift, k * sizeof(float)}};
  const void *dev[2];
  if (!sige_dev_args(be, parts, 2, dev)) return;
  a.scale = dev[0];
  a.shift = dev[1];
  sige_dev_launch(be, SIGE_K_AFFINE, &a, x->numel);
}

void sige_dev_binary(sige_ctx *ctx, gboolean modulate, const sige_tensor *x, const sige_tensor *g,
                     const sige_tensor *b, sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(x);
  const char *op = modulate ? "spade_modulate" : "add";
  if (!sige_dev_on(be, g, op) || !sige_dev_on(be, b, op) || !sige_dev_on(be, out, op)) return;
  const sige_k_binary_args a = {x->data, g->data, b ? b->data : NULL, out->data};
  sige_dev_launch(be, modulate ? SIGE_K_MODULATE : SIGE_K_ADD, &a, x->numel);
}

void sige_dev_concat_channels(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b,
                              sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(a);
  if (!sige_dev_on(be, b, "concat_channels") || !sige_dev_on(be, out, "concat_channels")) return;
  if (a->layout == SIGE_LAYOUT_CNHW) { /* channel-major: a followed by b */
    if (be->prims->copy(be, out->data, a->data, a->numel * sizeof(float)))
      be->prims->copy(be, out->data + a->numel, b->data, b->numel * sizeof(float));
    return;
  }
  const size_t sa = a->numel / (size_t)SIGE_N(a), sb = b->numel / (size_t)SIGE_N(b);
  for (int n = 0; n < SIGE_N(a); n++) {
    float *dst = out->data + (size_t)n * (sa + sb);
    if (!be->prims->copy(be, dst, a->data + (size_t)n * sa, sa * sizeof(float)) ||
        !be->prims->copy(be, dst + sa, b->data + (size_t)n * sb, sb * sizeof(float)))
      return;
  }
}

/* Planes of x resampled through rows / cols (host index arrays) into out. */
static gboolean resample(sige_dev_backend *be, const sige_tensor *x, const int *rows, int h,
                         const int *cols, int w, float *out) {
  sige_k_resample_args a = {.src = x->data, .half = x->storage == SIGE_STORAGE_F16,
                            .src_h = SIGE_H(x), .src_w = SIGE_W(x), .h = h, .w = w, .out = out};
  const sige_dev_arg parts[] = {{rows, (size_t)h * sizeof(int)}, {cols, (size_t)w * sizeof(int)}};
  const void *dev[2];
  if (!sige_dev_args(be, parts, 2, dev)) return FALSE;
  a.rows = dev[0];
  a.cols = dev[1];
  const size_t planes = x->numel / ((size_t)SIGE_H(x) * SIGE_W(x));
  return sige_dev_launch(be, SIGE_K_RESAMPLE, &a, planes * (size_t)h * w);
}

void sige_dev_resize_nearest(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "resize_nearest")) return;
  const int ho = SIGE_H(out), wo = SIGE_W(out);
  g_autofree int *idx = g_new(int, (size_t)ho + wo);
  sige_nearest_indices(SIGE_H(x), ho, idx);
  sige_nearest_indices(SIGE_W(x), wo, idx + ho);
  resample(be, x, idx, ho, idx + ho, wo, out->data);
}

/* torch's area_pixel_compute_source_index, align_corners=False (resize.c) */
void sige_dev_resize_bilinear(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "resize_bilinear")) return;
  const int h = SIGE_H(x), w = SIGE_W(x), ho = SIGE_H(out), wo = SIGE_W(out);
  g_autofree sige_k_tap *taps = g_new(sige_k_tap, (size_t)ho + wo);
  for (int i = 0; i < ho; i++) taps[i] = sige_k_bilinear_tap(i, h, ho);
  for (int j = 0; j < wo; j++) taps[ho + j] = sige_k_bilinear_tap(j, w, wo);
  sige_k_bilinear_args a = {.src = x->data, .out = out->data, .in_h = h, .in_w = w, .h = ho,
                            .w = wo};
  const sige_dev_arg part = {taps, ((size_t)ho + wo) * sizeof(sige_k_tap)};
  const void *dev[1];
  if (!sige_dev_args(be, &part, 1, dev)) return;
  a.taps = dev[0];
  sige_dev_launch(be, SIGE_K_BILINEAR, &a, out->numel);
}

void sige_dev_avg_pool2x2(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out) {
  (void)ctx;
  sige_dev_backend *be = sige_dev_of(x);
  if (!sige_dev_on(be, out, "avg_pool2x2")) return;
  const sige_k_pool_args a = {x->data, out->data, SIGE_H(x), SIGE_W(x)};
  sige_dev_launch(be, SIGE_K_AVG_POOL2, &a, out->numel);
}

sige_tensor *sige_dev_materialize(const sige_tensor *src, const sige_resample_map *map,
                                  GError **error) {
  sige_dev_backend *be = sige_dev_of(src);
  sige_tensor *out = sige_tensor_new4_like(src, 1, SIGE_C(src), map->h, map->w, error);
  if (!out) return NULL;
  resample(be, src, map->rows, map->h, map->cols, map->w, out->data);
  if (!sige_dev_check(be, error)) g_clear_pointer(&out, sige_tensor_free);
  return out;
}
