/* The mask pyramid of sige/utils.py downsample_mask.  The float mask of each
 * level is a bilinear resize of the previous level's float mask, done with
 * PyTorch's CPU index/weight rule in float32 so that the thresholded masks
 * match the reference bit for bit. */
#include <math.h>
#include <string.h>

#include "sige/sparse.h"

struct sige_mask_pyramid {
  int n;
  sige_mask **levels;
};

typedef struct {
  int i0, i1;
  float l0, l1;
} lin_tap;

/* upsample_bilinear2d, align_corners = False, no explicit scale factor:
 * scale = in / out in float, src = scale * (dst + 0.5) - 0.5 clamped at 0. */
static void linear_taps(int in, int out, lin_tap *taps) {
  const float scale = (float)in / (float)out;
  for (int d = 0; d < out; d++) {
    float src = scale * ((float)d + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int i0 = (int)floorf(src);
    if (i0 > in - 1) i0 = in - 1;
    float lambda = src - (float)i0;
    if (lambda < 0.0f) lambda = 0.0f;
    if (lambda > 1.0f) lambda = 1.0f;
    taps[d].i0 = i0;
    taps[d].i1 = i0 < in - 1 ? i0 + 1 : i0;
    taps[d].l1 = lambda;
    taps[d].l0 = 1.0f - lambda;
  }
}

/* Same evaluation order as PyTorch's Interpolate<2>: the width pair inside,
 * then the height pair, each as t * w0 + t2 * w1. */
static float *resize_bilinear(const float *src, int h, int w, int oh, int ow) {
  lin_tap *th = g_new(lin_tap, oh), *tw = g_new(lin_tap, ow);
  linear_taps(h, oh, th);
  linear_taps(w, ow, tw);
  float *dst = g_new(float, (gsize)oh * (gsize)ow);
  for (int y = 0; y < oh; y++) {
    const float *r0 = src + (size_t)th[y].i0 * w, *r1 = src + (size_t)th[y].i1 * w;
    for (int x = 0; x < ow; x++) {
      const float a = r0[tw[x].i0] * tw[x].l0 + r0[tw[x].i1] * tw[x].l1;
      const float b = r1[tw[x].i0] * tw[x].l0 + r1[tw[x].i1] * tw[x].l1;
      dst[(size_t)y * ow + x] = a * th[y].l0 + b * th[y].l1;
    }
  }
  g_free(th);
  g_free(tw);
  return dst;
}

static sige_mask *threshold_level(const float *m, int h, int w, int dilation, float threshold) {
  const size_t n = (size_t)h * (size_t)w;
  float mx = -INFINITY;
  for (size_t i = 0; i < n; i++) mx = m[i] > mx ? m[i] : mx;
  /* torch: min(threshold, max - eps), all in float32 */
  const float cand = mx - 1e-3f;
  const float t = cand < threshold ? cand : threshold;
  g_autoptr(sige_mask) bin = sige_mask_new(h, w);
  for (size_t i = 0; i < n; i++) bin->data[i] = m[i] > t;
  return sige_mask_cross_dilate(bin, dilation);
}

sige_mask_pyramid *sige_mask_pyramid_new(const sige_mask *full, int min_h, int min_w,
                                         int dilation, float threshold) {
  g_return_val_if_fail(full != NULL && full->h > 0 && full->w > 0, NULL);
  GPtrArray *levels = g_ptr_array_new();
  int h = full->h, w = full->w;
  float *m = g_new(float, (gsize)h * (gsize)w);
  for (size_t i = 0; i < (size_t)h * (size_t)w; i++) m[i] = full->data[i] ? 1.0f : 0.0f;
  for (;;) {
    g_ptr_array_add(levels, threshold_level(m, h, w, dilation, threshold));
    const int nh = h / 2, nw = w / 2;
    /* both below the minimum, as downsample_mask's `and` says; a zero
     * extent would leave nothing to resize, so it stops there too */
    if ((nh < min_h && nw < min_w) || nh == 0 || nw == 0) break;
    float *next = resize_bilinear(m, h, w, nh, nw);
    g_free(m);
    m = next;
    h = nh;
    w = nw;
  }
  g_free(m);
  sige_mask_pyramid *p = g_new0(sige_mask_pyramid, 1);
  p->n = (int)levels->len;
  p->levels = (sige_mask **)g_ptr_array_free(levels, FALSE);
  return p;
}

void sige_mask_pyramid_free(sige_mask_pyramid *p) {
  if (!p) return;
  for (int i = 0; i < p->n; i++) sige_mask_free(p->levels[i]);
  g_free(p->levels);
  g_free(p);
}

int sige_mask_pyramid_levels(const sige_mask_pyramid *p) {
  g_return_val_if_fail(p != NULL, 0);
  return p->n;
}

const sige_mask *sige_mask_pyramid_level(const sige_mask_pyramid *p, int i) {
  g_return_val_if_fail(p != NULL && i >= 0 && i < p->n, NULL);
  return p->levels[i];
}

const sige_mask *sige_mask_pyramid_get(const sige_mask_pyramid *p, int h, int w) {
  g_return_val_if_fail(p != NULL, NULL);
  for (int i = 0; i < p->n; i++)
    if (p->levels[i]->h == h && p->levels[i]->w == w) return p->levels[i];
  return NULL;
}
