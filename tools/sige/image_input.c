#include "image_input.h"

#include "sige-app/png_io.h"
#include "sige/error.h"

sige_tensor *sige_cli_read_image(const char *path, int want_h, int want_w, GError **error) {
  g_autofree guint8 *px = NULL;
  int w, h, ch;
  if (!sige_png_read(path, 3, &px, &w, &h, &ch, error)) return NULL;
  if (h != want_h || w != want_w) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "%s is %dx%d pixels; the model expects %dx%d (width x height)", path, w, h,
                want_w, want_h);
    return NULL;
  }
  sige_tensor *t = sige_tensor_new4_uninit(1, 3, h, w, error);
  if (!t) return NULL;
  const size_t plane = (size_t)w * h;
  for (int c = 0; c < 3; c++)
    for (size_t p = 0; p < plane; p++) t->data[c * plane + p] = px[p * 3 + c] / 127.5f - 1.0f;
  return t;
}
