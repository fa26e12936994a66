/* Block geometry, active blocks (sige/utils.py reduce_mask) and the nearest
 * resampling indices used to gather from a logically resized tensor. */
#include <math.h>

#include "sige/sparse.h"

void sige_block_geometry_init(sige_block_geometry *g, int kernel, int stride, int offset,
                              int requested_block) {
  g_return_if_fail(g != NULL && kernel > 0 && stride > 0 && offset >= 0);
  const int n = (requested_block > kernel ? requested_block - kernel : 0) / stride;
  g->kernel = kernel;
  g->stride = stride;
  g->offset = offset;
  g->block = n * stride + kernel;
  g->block_stride = (n + 1) * stride;
  g->out_block = n + 1;
}

/* max_pool2d (floor mode) over the mask padded with `offset` zeros before and
 * `block` zeros after: pooled cell (i, j) covers mask rows
 * [bs*i - offset, bs*i - offset + block) clipped to the mask.  An integral
 * image makes each cell O(1). */
sige_active_blocks *sige_reduce_mask(const sige_mask *m, const sige_block_geometry *g) {
  g_return_val_if_fail(m != NULL && g != NULL && g->block > 0 && g->block_stride > 0, NULL);
  const int h = m->h, w = m->w, b = g->block, bs = g->block_stride, off = g->offset;
  const int ph = (h + off) / bs + 1, pw = (w + off) / bs + 1;
  const int sw = w + 1;
  gint32 *sat = g_new0(gint32, (gsize)(h + 1) * (gsize)sw);
  for (int y = 0; y < h; y++) {
    gint32 row = 0;
    for (int x = 0; x < w; x++) {
      row += m->data[(size_t)y * w + x] != 0;
      sat[(size_t)(y + 1) * sw + x + 1] = sat[(size_t)y * sw + x + 1] + row;
    }
  }
  GArray *corners = g_array_new(FALSE, FALSE, sizeof(int));
  for (int i = 0; i < ph; i++) {
    const int top = bs * i - off;
    const int y0 = CLAMP(top, 0, h), y1 = CLAMP(top + b, 0, h);
    if (y1 <= y0) continue;
    for (int j = 0; j < pw; j++) {
      const int left = bs * j - off;
      const int x0 = CLAMP(left, 0, w), x1 = CLAMP(left + b, 0, w);
      if (x1 <= x0) continue;
      const gint32 s = sat[(size_t)y1 * sw + x1] - sat[(size_t)y0 * sw + x1] -
                       sat[(size_t)y1 * sw + x0] + sat[(size_t)y0 * sw + x0];
      if (s > 0) {
        g_array_append_val(corners, top);
        g_array_append_val(corners, left);
      }
    }
  }
  g_free(sat);
  sige_active_blocks *ab = g_new0(sige_active_blocks, 1);
  ab->n = (int)(corners->len / 2);
  ab->corners = (int *)g_array_free(corners, FALSE);
  return ab;
}

void sige_active_blocks_free(sige_active_blocks *ab) {
  if (!ab) return;
  g_free(ab->corners);
  g_free(ab);
}

/* PyTorch's legacy nearest rule: the float scale in / out, floor, clamp. */
void sige_nearest_indices(int src, int dst, int *idx) {
  g_return_if_fail(src > 0 && dst >= 0 && (idx != NULL || dst == 0));
  if (src == dst) {
    for (int i = 0; i < dst; i++) idx[i] = i;
    return;
  }
  const float scale = (float)src / (float)dst;
  for (int i = 0; i < dst; i++) {
    const int s = (int)floorf((float)i * scale);
    idx[i] = s < src - 1 ? s : src - 1;
  }
}
