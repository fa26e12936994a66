/* libFuzzer target: the image readers on arbitrary bytes, as a label map
 * (index map: gray values unscaled, any bit depth), as a picture (8-bit,
 * a fixed expected size checked from the header), and the conversions that
 * follow them in the CLI and the plug-ins (class ids, instance ids, the
 * far-from-palette count, the picture tensor).  Oracle: a success gives
 * buffers of exactly the size it says (ASan reads all of them), a failure
 * a GError with a message; never a crash, a leak or a large allocation. */
#include <string.h>

#include "fuzz_common.h"
#include "sige-app/pixels.h"
#include "sige-app/png_io.h"
#include "sige/tensor.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_glib();
  return 0;
}

static void check_error(GError *error) {
  if (!error || !error->message || !*error->message) abort();
  g_error_free(error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write_temp(".png", data, size);
  guint8 *px = NULL;
  int w = 0, h = 0, ch = 0, bits = 0;
  GError *error = NULL;
  if (sige_png_read_index_map(path, 0, 0, &px, &w, &h, &ch, &bits, &error)) {
    if (error || w < 1 || h < 1 || (ch != 1 && ch != 3) || (bits != 8 && bits != 16)) abort();
    const sige_pixels p = {px, w, h, bits == 16 ? 2 : ch, bits};
    int64_t nearest = 0;
    int32_t *labels = sige_labels_from_pixels(&p, 35, &nearest, &error);
    if (labels) {
      if (nearest < 0 || nearest > (int64_t)w * h) abort();
      g_free(labels);
    } else {
      check_error(error);
      error = NULL;
    }
    g_free(sige_instances_from_pixels(&p));
    if (sige_labels_count_far(&p) > (int64_t)w * h) abort();
    g_free(px);
  } else {
    check_error(error);
    error = NULL;
  }
  /* a picture of a model's size: another size is refused from the header */
  px = NULL;
  if (sige_png_read_sized(path, 0, 16, 8, &px, &w, &h, &ch, &error)) {
    if (w != 16 || h != 8) abort();
    const sige_pixels p = {px, w, h, ch, 8};
    sige_tensor *t = sige_image_from_pixels(&p, &error);
    if (!t) abort();
    sige_tensor_free(t);
    g_free(px);
  } else {
    check_error(error);
  }
  return 0;
}
