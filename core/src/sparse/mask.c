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

/* The one difference scan (the reference check and sessions both run it):
 * per row, mask |= any_channel(|a - b| > eps) when mask is given, and
 * changed[y] = whether row y differs at all (any channel, any bit).  Each
 * task owns whole rows, so the result does not depend on n_threads. */
static void diff_scan(const sige_tensor *a, const sige_tensor *b, float eps, int n_threads,
                      sige_mask *mask, guint8 *changed) {
  const int c = SIGE_C(a), h = SIGE_H(a), w = SIGE_W(a);
  const size_t plane = (size_t)h * (size_t)w;
#pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static)
  for (int y = 0; y < h; y++) {
    guint8 *mr = mask ? mask->data + (size_t)y * w : NULL;
    for (int ch = 0; ch < c; ch++) {
      const float *pa = a->data + (size_t)ch * plane + (size_t)y * w;
      const float *pb = b->data + (size_t)ch * plane + (size_t)y * w;
      /* |a - b| > eps in float, as torch.abs(t1 - t2) > eps does; NaN stays 0 */
      if (mr)
        for (int i = 0; i < w; i++) mr[i] |= fabsf(pa[i] - pb[i]) > eps;
      if (!changed[y]) changed[y] = memcmp(pa, pb, (size_t)w * sizeof(float)) != 0;
      else if (!mr) break;
    }
  }
}

static gboolean diff_args_ok(const sige_tensor *a, const sige_tensor *b) {
  return a && b && a->ndim == 4 && sige_tensor_same_shape(a, b) && SIGE_N(a) == 1 &&
         a->layout == SIGE_LAYOUT_NCHW && !a->backend && !b->backend;
}

static void changed_span(const guint8 *changed, int h, int *row0, int *row1) {
  int r0 = 0, r1 = h;
  while (r0 < h && !changed[r0]) r0++;
  while (r1 > r0 && !changed[r1 - 1]) r1--;
  if (row0) *row0 = r0;
  if (row1) *row1 = r1;
}

sige_mask *sige_mask_from_diff_rows(const sige_tensor *a, const sige_tensor *b, float eps,
                                    int n_threads, int *row0, int *row1) {
  g_return_val_if_fail(diff_args_ok(a, b), NULL);
  const int h = SIGE_H(a);
  sige_mask *m = sige_mask_new(h, SIGE_W(a));
  g_autofree guint8 *changed = g_new0(guint8, (size_t)h + 1);
  diff_scan(a, b, eps, n_threads, m, changed);
  changed_span(changed, h, row0, row1);
  return m;
}

sige_mask *sige_mask_from_diff(const sige_tensor *a, const sige_tensor *b, float eps) {
  return sige_mask_from_diff_rows(a, b, eps, 1, NULL, NULL);
}

void sige_diff_rows(const sige_tensor *a, const sige_tensor *b, int n_threads, int *row0,
                    int *row1) {
  g_return_if_fail(diff_args_ok(a, b) && row0 && row1);
  const int h = SIGE_H(a);
  g_autofree guint8 *changed = g_new0(guint8, (size_t)h + 1);
  diff_scan(a, b, 0.0f, n_threads, NULL, changed);
  changed_span(changed, h, row0, row1);
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
