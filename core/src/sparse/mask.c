/* Binary masks: allocation, the difference mask and the cross dilation of
 * sige/utils.py (dilate_mask on a 2-D mask). */
#include <math.h>
#include <string.h>

#include "sige/sparse.h"

sige_mask *sige_mask_new(int h, int w) {
  g_return_val_if_fail(h >= 0 && w >= 0, NULL);
  sige_mask *m = g_new0(sige_mask, 1);
  m->h = h;
  m->w = w;
  /* never NULL, even for an empty mask, so callers need no special case */
  m->data = g_malloc0((gsize)h * (gsize)w + 1);
  return m;
}

sige_mask *sige_mask_dup(const sige_mask *m) {
  g_return_val_if_fail(m != NULL, NULL);
  sige_mask *r = sige_mask_new(m->h, m->w);
  memcpy(r->data, m->data, (size_t)m->h * (size_t)m->w);
  return r;
}

void sige_mask_free(sige_mask *m) {
  if (!m) return;
  g_free(m->data);
  g_free(m);
}

int64_t sige_mask_count(const sige_mask *m) {
  g_return_val_if_fail(m != NULL, 0);
  const size_t n = (size_t)m->h * (size_t)m->w;
  int64_t c = 0;
  for (size_t i = 0; i < n; i++) c += m->data[i] != 0;
  return c;
}

sige_mask *sige_mask_from_diff(const sige_tensor *a, const sige_tensor *b, float eps) {
  g_return_val_if_fail(a && b && a->ndim == 4 && sige_tensor_same_shape(a, b), NULL);
  g_return_val_if_fail(SIGE_N(a) == 1 && a->layout == SIGE_LAYOUT_NCHW, NULL);
  const int c = SIGE_C(a), h = SIGE_H(a), w = SIGE_W(a);
  const size_t plane = (size_t)h * (size_t)w;
  sige_mask *m = sige_mask_new(h, w);
  for (int ch = 0; ch < c; ch++) {
    const float *pa = a->data + (size_t)ch * plane, *pb = b->data + (size_t)ch * plane;
    /* |a - b| > eps in float, as torch.abs(t1 - t2) > eps does; NaN stays 0 */
    for (size_t i = 0; i < plane; i++) m->data[i] |= fabsf(pa[i] - pb[i]) > eps;
  }
  return m;
}

sige_mask *sige_mask_from_diff_rows(const sige_tensor *a, const sige_tensor *b, float eps,
                                    int n_threads, int *row0, int *row1) {
  g_return_val_if_fail(a && b && a->ndim == 4 && sige_tensor_same_shape(a, b), NULL);
  g_return_val_if_fail(SIGE_N(a) == 1 && a->layout == SIGE_LAYOUT_NCHW, NULL);
  g_return_val_if_fail(!a->backend && !b->backend, NULL);
  const int c = SIGE_C(a), h = SIGE_H(a), w = SIGE_W(a);
  const size_t plane = (size_t)h * (size_t)w;
  sige_mask *m = sige_mask_new(h, w);
  g_autofree guint8 *changed = g_new0(guint8, (size_t)h + 1);
  /* by rows: each task owns its mask row, so the result is the serial one */
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static)
  for (int y = 0; y < h; y++) {
    guint8 *mr = m->data + (size_t)y * w;
    for (int ch = 0; ch < c; ch++) {
      const float *pa = a->data + (size_t)ch * plane + (size_t)y * w;
      const float *pb = b->data + (size_t)ch * plane + (size_t)y * w;
      for (int i = 0; i < w; i++) mr[i] |= fabsf(pa[i] - pb[i]) > eps;
      changed[y] |= memcmp(pa, pb, (size_t)w * sizeof(float)) != 0;
    }
  }
  *row0 = 0;
  while (*row0 < h && !changed[*row0]) (*row0)++;
  *row1 = h;
  while (*row1 > *row0 && !changed[*row1 - 1]) (*row1)--;
  return m;
}

static void or_into(guint8 *dst, const guint8 *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] |= src[i];
}

sige_mask *sige_mask_cross_dilate(const sige_mask *m, int radius) {
  g_return_val_if_fail(m != NULL, NULL);
  sige_mask *r = sige_mask_dup(m);
  if (radius <= 0) return r;
  const int h = m->h, w = m->w;
  /* Every shift reads the undilated m, so the result is a cross of arm
   * `radius`, not the box an iterated dilation would grow. */
  for (int i = 1; i <= radius && i < h; i++) {
    const size_t n = (size_t)(h - i) * (size_t)w;
    or_into(r->data, m->data + (size_t)i * w, n);        /* ret[:-i] |= m[i:] */
    or_into(r->data + (size_t)i * w, m->data, n);        /* ret[i:] |= m[:-i] */
  }
  for (int y = 0; y < h; y++) {
    guint8 *dr = r->data + (size_t)y * w;
    const guint8 *sr = m->data + (size_t)y * w;
    for (int i = 1; i <= radius && i < w; i++) {
      or_into(dr, sr + i, (size_t)(w - i));
      or_into(dr + i, sr, (size_t)(w - i));
    }
  }
  return r;
}
