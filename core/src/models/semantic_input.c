/* GauGAN's input: one-hot labels plus an instance-edge channel. */
#include <string.h>

#include "sige/error.h"
#include "sige/model.h"

sige_tensor *sige_semantic_input(const int32_t *label, const int32_t *instance, int h, int w,
                                 int label_nc, GError **error) {
  const int C = label_nc + (instance ? 1 : 0);
  sige_tensor *t = sige_tensor_new4(1, C, h, w, error);
  if (!t) return NULL;
  const size_t plane = (size_t)h * w;
  for (size_t p = 0; p < plane; p++) {
    const int32_t l = label[p];
    if (l < 0 || l >= label_nc) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  "label map pixel (%zu, %zu) has class %d; expected 0..%d", p / (size_t)w,
                  p % (size_t)w, l, label_nc - 1);
      sige_tensor_free(t);
      return NULL;
    }
    t->data[(size_t)l * plane + p] = 1.0f;
  }
  if (instance) {
    float *edge = t->data + (size_t)label_nc * plane;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        const size_t p = (size_t)y * w + x;
        const int32_t v = instance[p];
        gboolean e = (x > 0 && instance[p - 1] != v) || (x + 1 < w && instance[p + 1] != v) ||
                     (y > 0 && instance[p - w] != v) || (y + 1 < h && instance[p + w] != v);
        edge[p] = e ? 1.0f : 0.0f;
      }
  }
  return t;
}
