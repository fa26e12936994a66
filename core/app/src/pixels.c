/* Pixels <-> model tensors.  The rounding and the [-1, 1] range are the
 * published models' (v / 127.5 - 1 in, lrint(clamp((v + 1) * 127.5)) out). */
#include "sige-app/pixels.h"

#include <math.h>
#include <string.h>

#include "app-i18n.h"
#include "sige-app/palette.h"
#include "sige/error.h"

/* The gray value of pixel i: 8-bit, or an unscaled 16-bit index. */
static inline int gray_value(const sige_pixels *px, size_t i) {
  if (px->bits == 16) {
    guint16 v;
    memcpy(&v, px->data + 2 * i, 2);
    return v;
  }
  return px->data[i * px->bpp];
}

int32_t *sige_labels_from_pixels(const sige_pixels *px, int label_nc, int64_t *n_nearest,
                                 GError **error) {
  const size_t n = (size_t)px->width * px->height;
  int32_t *labels = g_new(int32_t, n);
  int64_t nearest = 0;
  if (px->bpp <= 2 || px->bits == 16) {
    for (size_t i = 0; i < n; i++) {
      const int v = gray_value(px, i);
      if (v >= label_nc) {
        g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                    _("Pixel (%d, %d) of the gray label map has value %d, but the model knows "
                      "only classes 0 to %d. Use class ids as gray values, or paint the labels "
                      "in the Cityscapes palette in RGB."),
                    (int)(i % (size_t)px->width), (int)(i / (size_t)px->width), v,
                    label_nc - 1);
        g_free(labels);
        return NULL;
      }
      labels[i] = v;
    }
  } else {
    /* The palette lookups are per pixel; consecutive equal colours are the
     * common case in a label map, so remember the last one. */
    guint8 last[3] = {0, 0, 0};
    int last_id = sige_palette_lookup_exact(last);
    gboolean last_exact = last_id >= 0;
    if (!last_exact) last_id = sige_palette_lookup_nearest(last);
    for (size_t i = 0; i < n; i++) {
      const guint8 *p = px->data + i * px->bpp;
      if (p[0] != last[0] || p[1] != last[1] || p[2] != last[2]) {
        memcpy(last, p, 3);
        last_id = sige_palette_lookup_exact(last);
        last_exact = last_id >= 0;
        if (!last_exact) last_id = sige_palette_lookup_nearest(last);
      }
      labels[i] = last_id;
      nearest += !last_exact;
    }
    for (size_t i = 0; i < n; i++)
      if (labels[i] >= label_nc) {
        g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                    _("Pixel (%d, %d) has class %d, but the model knows only %d classes."),
                    (int)(i % (size_t)px->width), (int)(i / (size_t)px->width), labels[i],
                    label_nc);
        g_free(labels);
        return NULL;
      }
  }
  if (n_nearest) *n_nearest = nearest;
  return labels;
}

int64_t sige_labels_count_far(const sige_pixels *px) {
  if (px->bpp <= 2) return 0;
  const sige_palette *pal = sige_palette_cityscapes();
  const int far2 = SIGE_LABEL_FAR_DISTANCE * SIGE_LABEL_FAR_DISTANCE;
  const size_t n = (size_t)px->width * px->height;
  int64_t far = 0;
  /* flat regions are the common case in a label map: remember the last colour */
  guint8 last[3] = {0, 0, 0};
  gboolean last_far = FALSE, have_last = FALSE;
  for (size_t i = 0; i < n; i++) {
    const guint8 *p = px->data + i * px->bpp;
    if (!have_last || p[0] != last[0] || p[1] != last[1] || p[2] != last[2]) {
      int best = G_MAXINT;
      for (int k = 0; k < pal->n && best > far2; k++) {
        const guint8 *c = pal->entries[k].rgb;
        const int d = (p[0] - c[0]) * (p[0] - c[0]) + (p[1] - c[1]) * (p[1] - c[1]) +
                      (p[2] - c[2]) * (p[2] - c[2]);
        best = MIN(best, d);
      }
      memcpy(last, p, 3);
      last_far = best > far2;
      have_last = TRUE;
    }
    far += last_far;
  }
  return far;
}

sige_input_kind sige_pixels_guess_input_kind(const sige_pixels *px) {
  if (px->bpp <= 2 || px->bits == 16) return SIGE_INPUT_LABELS;
  const int64_t n = (int64_t)px->width * px->height;
  return sige_labels_count_far(px) > SIGE_LABEL_FAR_FRACTION * n ? SIGE_INPUT_IMAGE
                                                                 : SIGE_INPUT_LABELS;
}

sige_tensor *sige_image_from_pixels(const sige_pixels *px, GError **error) {
  if (px->bits == 16) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "a 16-bit index map is not a picture: read pictures as 8-bit pixels");
    return NULL;
  }
  sige_tensor *t = sige_tensor_new4_uninit(1, 3, px->height, px->width, error);
  if (!t) return NULL;
  const size_t plane = (size_t)px->width * px->height;
  const gboolean gray = px->bpp <= 2;
  for (int c = 0; c < 3; c++) {
    const int off = gray ? 0 : c;
    for (size_t i = 0; i < plane; i++)
      t->data[c * plane + i] = px->data[i * px->bpp + off] / 127.5f - 1.0f;
  }
  return t;
}

int32_t *sige_instances_from_pixels(const sige_pixels *px) {
  const size_t n = (size_t)px->width * px->height;
  int32_t *inst = g_new(int32_t, n);
  for (size_t i = 0; i < n; i++) {
    const guint8 *p = px->data + i * px->bpp;
    inst[i] = px->bpp <= 2 || px->bits == 16 ? gray_value(px, i) : (p[0] << 16) | (p[1] << 8) | p[2];
  }
  return inst;
}

static sige_tensor *semantic_input(const sige_model *m, const sige_pixels *src,
                                   const sige_pixels *instance, sige_input_report *report,
                                   GError **error) {
  const sige_spade_config *cfg = sige_model_spade_config(m);
  /* Before the palette lookups, which a photo would make for every pixel,
   * and before the pass, which would make garbage of it. */
  const int64_t n_pixels = (int64_t)src->width * src->height;
  const int64_t far = sige_labels_count_far(src);
  if (report) {
    report->n_far = far;
    report->n_pixels = n_pixels;
  }
  if (far > SIGE_LABEL_FAR_FRACTION * n_pixels) {
    g_autofree gchar *count = g_strdup_printf("%" G_GINT64_FORMAT, far);
    g_autofree gchar *total = g_strdup_printf("%" G_GINT64_FORMAT, n_pixels);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                _("This does not look like a label map: %s of its %s pixels (%.0f %%) are "
                  "farther than %d levels from every Cityscapes colour, as in a photo. Give a "
                  "label map painted with the Cityscapes palette colours (the Cityscapes "
                  "palette that comes with Sparse Regenerate), or choose a DDPM model to edit a "
                  "picture."),
                count, total, 100.0 * far / MAX(n_pixels, 1), SIGE_LABEL_FAR_DISTANCE);
    return NULL;
  }
  int64_t nearest = 0;
  g_autofree int32_t *labels = sige_labels_from_pixels(src, cfg->label_nc, &nearest, error);
  if (!labels) return NULL;
  if (report) {
    report->n_nearest = nearest;
    report->n_pixels = (int64_t)src->width * src->height;
  }
  g_autofree int32_t *inst = NULL;
  if (cfg->contain_instance) {
    if (instance) {
      if (instance->width != src->width || instance->height != src->height) {
        g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                    _("The instance map is %d x %d pixels but the label map is %d x %d. Give both "
                      "the same size, or leave out the instance map."),
                    instance->width, instance->height, src->width, src->height);
        return NULL;
      }
      inst = sige_instances_from_pixels(instance);
    } else {
      /* Without instance ids the class boundaries serve as instance edges. */
      inst = g_memdup2(labels, sizeof(int32_t) * (size_t)src->width * src->height);
    }
  }
  return sige_semantic_input(labels, inst, src->height, src->width, cfg->label_nc, error);
}

sige_tensor *sige_model_input_from_pixels(const sige_model *m, const sige_pixels *src,
                                          const sige_pixels *instance, sige_input_report *report,
                                          GError **error) {
  int64_t want[4];
  sige_model_input_shape(m, want);
  if (src->width != want[3] || src->height != want[2]) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                _("The input is %d x %d pixels but the model expects %d x %d. Scale it or choose "
                  "a model trained for this size."),
                src->width, src->height, (int)want[3], (int)want[2]);
    return NULL;
  }
  switch (sige_model_input_kind(m, error)) {
    case SIGE_INPUT_LABELS:
      return semantic_input(m, src, instance, report, error);
    case SIGE_INPUT_IMAGE:
      if (report) {
        report->n_nearest = 0;
        report->n_far = 0;
        report->n_pixels = (int64_t)src->width * src->height;
      }
      return sige_image_from_pixels(src, error);
    case SIGE_INPUT_UNSUPPORTED:
      break;
  }
  return NULL;
}

static inline guint8 to_u8(float v) {
  v = (v + 1.0f) * 127.5f;
  v = v < 0 ? 0 : v > 255 ? 255 : v;
  return (guint8)lrintf(v);
}

gboolean sige_pixels_from_output(const sige_tensor *out, sige_rect r, int dst_bpp, guint8 *dst,
                                 GError **error) {
  const int C = SIGE_C(out), H = SIGE_H(out), W = SIGE_W(out);
  if (C != 3) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                _("The model gave %d output channels; an image needs 3."), C);
    return FALSE;
  }
  if (r.x < 0 || r.y < 0 || r.width < 0 || r.height < 0 || r.x + r.width > W ||
      r.y + r.height > H || dst_bpp < 1 || dst_bpp > 4) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "rectangle %d,%d %dx%d outside %dx%d",
                r.x, r.y, r.width, r.height, W, H);
    return FALSE;
  }
  const size_t plane = (size_t)W * H;
  for (int y = 0; y < r.height; y++)
    for (int x = 0; x < r.width; x++) {
      const size_t s = (size_t)(r.y + y) * W + r.x + x;
      guint8 *d = dst + ((size_t)y * r.width + x) * dst_bpp;
      const guint8 R = to_u8(out->data[s]), G = to_u8(out->data[plane + s]),
                   B = to_u8(out->data[2 * plane + s]);
      if (dst_bpp >= 3) {
        d[0] = R, d[1] = G, d[2] = B;
        if (dst_bpp == 4) d[3] = 255;
      } else {
        d[0] = (guint8)((299 * R + 587 * G + 114 * B + 500) / 1000);
        if (dst_bpp == 2) d[1] = 255;
      }
    }
  return TRUE;
}

