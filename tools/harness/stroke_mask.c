/* Stroke masks and their PNG form (libpng's simplified API: it converts any
 * stored format to 8-bit gray for us). */
#include "stroke_mask.h"

#include <math.h>
#include <png.h>
#include <string.h>

#include "random_weights.h"
#include "sige/error.h"

static size_t stamp(guint8 *m, int h, int w, double cy, double cx, double r) {
  size_t added = 0;
  const int y0 = MAX(0, (int)floor(cy - r)), y1 = MIN(h - 1, (int)ceil(cy + r));
  const int x0 = MAX(0, (int)floor(cx - r)), x1 = MIN(w - 1, (int)ceil(cx + r));
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) {
      const double dy = y - cy, dx = x - cx;
      if (dy * dy + dx * dx <= r * r && !m[(size_t)y * w + x]) {
        m[(size_t)y * w + x] = 1;
        added++;
      }
    }
  return added;
}

guint8 *sige_stroke_mask(int h, int w, double fraction, uint64_t seed, double *covered,
                         GError **error) {
  if (h < 8 || w < 8 || !(fraction > 0.0) || fraction > 0.5) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "stroke mask: edit ratio %g on %dx%d is out of range (0 < ratio <= 0.5)",
                fraction, w, h);
    return NULL;
  }
  const size_t total = (size_t)h * w, target = (size_t)llround(fraction * (double)total);
  /* a stamp of ~3% of the target keeps the final overshoot small; the floor
   * keeps strokes stroke-like on tiny targets */
  const double r = MAX(1.5, sqrt(0.03 * (double)target / G_PI));
  /* a step advances r/2 and so adds ~r^2 pixels: a third of the target per
   * stroke gives "a few" strokes */
  const int steps_per_stroke = MAX(4, (int)(target / (3.0 * r * r)));
  guint8 *m = g_malloc0(total);
  sige_rng rng;
  sige_rng_init(&rng, seed ^ 0x5172u);
  size_t n = 0;
  for (int stroke = 0; n < target && stroke < 1000; stroke++) {
    double cy = h * (0.15 + 0.7 * sige_rng_uniform(&rng));
    double cx = w * (0.15 + 0.7 * sige_rng_uniform(&rng));
    double dir = 2.0 * G_PI * sige_rng_uniform(&rng);
    for (int s = 0; s < steps_per_stroke && n < target; s++) {
      n += stamp(m, h, w, cy, cx, r);
      dir += 0.35 * sige_rng_normal(&rng); /* a brush turns slowly */
      cy += 0.5 * r * sin(dir);
      cx += 0.5 * r * cos(dir);
      /* bounce off the borders instead of leaving the image */
      if (cy < r || cy > h - 1 - r) {
        dir = -dir;
        cy = CLAMP(cy, r, h - 1 - r);
      }
      if (cx < r || cx > w - 1 - r) {
        dir = G_PI - dir;
        cx = CLAMP(cx, r, w - 1 - r);
      }
    }
  }
  const double got = (double)n / (double)total;
  if (fabs(got - fraction) > 0.1 * fraction) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "stroke mask: covered %.4f%% of %dx%d, requested %.4f%% (not within 10%%)",
                100.0 * got, w, h, 100.0 * fraction);
    g_free(m);
    return NULL;
  }
  if (covered) *covered = got;
  return m;
}

gboolean sige_mask_save_png(const char *path, const guint8 *mask, int h, int w, GError **error) {
  const size_t total = (size_t)h * w;
  g_autofree guint8 *px = g_malloc(total);
  for (size_t i = 0; i < total; i++) px[i] = mask[i] ? 255 : 0;
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = (png_uint_32)w;
  img.height = (png_uint_32)h;
  img.format = PNG_FORMAT_GRAY;
  if (!png_image_write_to_file(&img, path, 0, px, w, NULL)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot write PNG: %s", path,
                img.message);
    png_image_free(&img);
    return FALSE;
  }
  return TRUE;
}

guint8 *sige_mask_load_png(const char *path, int h, int w, GError **error) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot read PNG: %s", path, img.message);
    return NULL;
  }
  if ((int)img.width != w || (int)img.height != h) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "%s: mask is %ux%u; the model's input is %dx%d (width x height)", path,
                img.width, img.height, w, h);
    png_image_free(&img);
    return NULL;
  }
  img.format = PNG_FORMAT_GRAY;
  guint8 *px = g_malloc((size_t)h * w);
  if (!png_image_finish_read(&img, NULL, px, w, NULL)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: cannot decode PNG: %s", path,
                img.message);
    png_image_free(&img);
    g_free(px);
    return NULL;
  }
  for (size_t i = 0; i < (size_t)h * w; i++) px[i] = px[i] > 127;
  return px;
}
