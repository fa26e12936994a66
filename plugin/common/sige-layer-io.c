#include "sige-layer-io.h"

#include <string.h>

#include "sige/error.h"
#include "sige-i18n.h"

char *sige_plugin_options_change(const sige_session_options *old,
                                 const sige_session_options *now) {
  g_autoptr(GPtrArray) names = g_ptr_array_new();
  if (old->sdedit != now->sdedit) {
    g_ptr_array_add(names, (gpointer)_("model kind"));
  } else if (now->sdedit) {
    /* Each step's caches were recorded at that step's timestep on the
     * snapshot's noised trajectory: all of these move it. */
    if (old->sampler.sample_steps != now->sampler.sample_steps)
      g_ptr_array_add(names, (gpointer)_("steps"));
    if (old->sampler.noise_level != now->sampler.noise_level)
      g_ptr_array_add(names, (gpointer)_("strength"));
    if (old->seed != now->seed) g_ptr_array_add(names, (gpointer)_("seed"));
    if (old->sampler.kind != now->sampler.kind) g_ptr_array_add(names, (gpointer)_("sampler"));
  }
  if (old->fp16_caches != now->fp16_caches)
    g_ptr_array_add(names, (gpointer)_("cache precision"));
  /* the caches live on the device that made them */
  if (old->device != now->device) g_ptr_array_add(names, (gpointer)_("device"));
  if (names->len == 0) return NULL;
  g_ptr_array_add(names, NULL);
  /* TRANSLATORS: separates the names of changed settings ("steps, seed") */
  return g_strjoinv(_(", "), (gchar **)names->pdata);
}

sige_rect sige_pixels_diff_rect(const sige_pixels *a, const sige_pixels *b) {
  sige_rect r = {0, 0, 0, 0};
  int x0 = a->width, y0 = a->height, x1 = -1, y1 = -1;
  const size_t row = (size_t)a->width * a->bpp;
  for (int y = 0; y < a->height; y++) {
    const guint8 *pa = a->data + y * row, *pb = b->data + y * row;
    if (memcmp(pa, pb, row) == 0) continue;
    for (int x = 0; x < a->width; x++)
      if (memcmp(pa + x * a->bpp, pb + x * a->bpp, a->bpp)) {
        x0 = MIN(x0, x), x1 = MAX(x1, x);
        y0 = MIN(y0, y), y1 = MAX(y1, y);
      }
  }
  if (x1 >= 0) r = (sige_rect){x0, y0, x1 - x0 + 1, y1 - y0 + 1};
  return r;
}

int sige_edit_margin(int width, int height) { return MAX(4, MIN(width, height) / 16); }

/* Square dilation by `r` of a w x h 0/1 mask, separable: a row pass then a
 * column pass, each a sliding count over 2r + 1 cells. */
static void dilate_square(guint8 *m, int w, int h, int r) {
  g_autofree guint8 *tmp = g_malloc((size_t)w * h);
  for (int y = 0; y < h; y++) {
    const guint8 *row = m + (size_t)y * w;
    int count = 0;
    for (int x = 0; x < MIN(r, w); x++) count += row[x];
    for (int x = 0; x < w; x++) {
      if (x + r < w) count += row[x + r];
      if (x - r - 1 >= 0) count -= row[x - r - 1];
      tmp[(size_t)y * w + x] = count > 0;
    }
  }
  for (int x = 0; x < w; x++) {
    int count = 0;
    for (int y = 0; y < MIN(r, h); y++) count += tmp[(size_t)y * w + x];
    for (int y = 0; y < h; y++) {
      if (y + r < h) count += tmp[(size_t)(y + r) * w + x];
      if (y - r - 1 >= 0) count -= tmp[(size_t)(y - r - 1) * w + x];
      m[(size_t)y * w + x] = count > 0;
    }
  }
}

gint64 sige_pixels_keep_untouched(const sige_pixels *src, const guint8 *base_src,
                                  const guint8 *base_out, guint8 *out, int margin) {
  const int w = src->width, h = src->height, bpp = src->bpp;
  const size_t n = (size_t)w * h;
  g_autofree guint8 *reach = g_malloc(n);
  for (size_t i = 0; i < n; i++)
    reach[i] = memcmp(src->data + i * bpp, base_src + i * bpp, bpp) != 0;
  dilate_square(reach, w, h, margin);
  gint64 kept = 0;
  for (size_t i = 0; i < n; i++)
    if (!reach[i]) {
      memcpy(out + i * bpp, base_out + i * bpp, bpp);
      kept++;
    }
  return kept;
}
