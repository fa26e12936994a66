#include "label_input.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "palette.h"
#include "png_io.h"
#include "sige/error.h"

static int32_t *read_labels(const char *path, int *w, int *h, GError **error) {
  g_autofree guint8 *px = NULL;
  int channels;
  if (!sige_png_read(path, 0, &px, w, h, &channels, error)) return NULL;
  int32_t *labels = g_new(int32_t, (size_t)*w * *h);
  if (channels == 1) {
    if (!sige_labels_from_index(px, *w, *h, labels, path, error)) {
      g_free(labels);
      return NULL;
    }
  } else {
    int64_t nearest = 0;
    sige_labels_from_rgb(px, *w, *h, labels, &nearest);
    if (nearest > 0)
      fprintf(stderr,
              "sige: warning: %s: %" G_GINT64_FORMAT " pixels (%.2f %%) are not Cityscapes "
              "colours; mapped to the nearest class\n",
              path, nearest, 100.0 * nearest / ((double)*w * *h));
  }
  return labels;
}

sige_tensor *sige_cli_semantic_from_png(const sige_model *model, const char *labels_path,
                                        const char *instance_path, GError **error) {
  const sige_spade_config *cfg = sige_model_spade_config(model);
  if (!cfg) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "label maps are inputs of SPADE (GauGAN) models; this model is a %s",
                sige_model_kind_name(sige_model_get_kind(model)));
    return NULL;
  }
  int64_t want[4];
  sige_model_input_shape(model, want);
  int w, h;
  g_autofree int32_t *labels = read_labels(labels_path, &w, &h, error);
  if (!labels) return NULL;
  if (h != want[2] || w != want[3]) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "%s is %dx%d pixels; the model expects %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                " (width x height)",
                labels_path, w, h, want[3], want[2]);
    return NULL;
  }
  for (size_t i = 0; i < (size_t)w * h; i++)
    if (labels[i] >= cfg->label_nc) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s: pixel (%zu, %zu) has class %d; the model knows %d classes", labels_path,
                  i % (size_t)w, i / (size_t)w, labels[i], cfg->label_nc);
      return NULL;
    }
  g_autofree int32_t *inst = NULL;
  if (cfg->contain_instance) {
    if (instance_path) {
      g_autofree guint8 *px = NULL;
      int iw, ih, ch;
      if (!sige_png_read(instance_path, 0, &px, &iw, &ih, &ch, error)) return NULL;
      if (iw != w || ih != h) {
        g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                    "%s is %dx%d pixels; expected %dx%d like the label map", instance_path, iw,
                    ih, w, h);
        return NULL;
      }
      inst = g_new(int32_t, (size_t)w * h);
      for (size_t i = 0; i < (size_t)w * h; i++) {
        const guint8 *p = px + i * ch;
        inst[i] = ch == 1 ? p[0] : (p[0] << 16) | (p[1] << 8) | p[2];
      }
    } else {
      inst = g_memdup2(labels, sizeof(int32_t) * (size_t)w * h);
    }
  }
  return sige_semantic_input(labels, inst, h, w, cfg->label_nc, error);
}

gboolean sige_cli_write_image(const sige_tensor *img, const char *path, GError **error) {
  const int C = SIGE_C(img), H = SIGE_H(img), W = SIGE_W(img);
  if (C != 3) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE, "image output has %d channels; expected 3", C);
    return FALSE;
  }
  g_autofree guint8 *rgb = g_new(guint8, (size_t)W * H * 3);
  for (int c = 0; c < 3; c++)
    for (size_t p = 0; p < (size_t)W * H; p++) {
      float v = (img->data[(size_t)c * W * H + p] + 1.0f) * 127.5f;
      v = v < 0 ? 0 : v > 255 ? 255 : v;
      rgb[p * 3 + c] = (guint8)lrintf(v);
    }
  return sige_png_write(path, rgb, W, H, 3, error);
}

sige_model *sige_cli_load_model(const char *spec, GError **error) {
  const char *path = spec;
  if (g_str_has_prefix(spec, "spade:") || g_str_has_prefix(spec, "ddpm:"))
    path = strchr(spec, ':') + 1;
  sige_model *m = sige_model_load(path, error);
  if (m && g_str_has_prefix(spec, "spade:") && sige_model_get_kind(m) != SIGE_MODEL_SPADE) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED, "%s: expected a SPADE generator, found a %s",
                path, sige_model_kind_name(sige_model_get_kind(m)));
    sige_model_free(m);
    return NULL;
  }
  return m;
}
