#include "sige-app/image_files.h"

#include "sige-app/png_io.h"

sige_tensor *sige_model_input_from_png(const sige_model *m, const char *path,
                                       const char *instance_path, sige_input_report *report,
                                       GError **error) {
  g_autofree guint8 *px = NULL, *ipx = NULL;
  int w, h, ch, iw = 0, ih = 0, ich = 0, bits = 8, ibits = 8;
  int64_t want[4];
  sige_model_input_shape(m, want);
  const gboolean labels = sige_model_input_kind(m, NULL) == SIGE_INPUT_LABELS;
  /* as stored: gray is a class-id map (values unscaled, any bit depth) or a
   * gray picture, colour is RGB */
  if (!(labels ? sige_png_read_index_map(path, (int)want[3], (int)want[2], &px, &w, &h, &ch,
                                         &bits, error)
               : sige_png_read_sized(path, 0, (int)want[3], (int)want[2], &px, &w, &h, &ch,
                                     error)))
    return NULL;
  if (labels && instance_path &&
      !sige_png_read_index_map(instance_path, (int)want[3], (int)want[2], &ipx, &iw, &ih, &ich,
                               &ibits, error))
    return NULL;
  const sige_pixels src = {px, w, h, bits == 16 ? 2 : ch, bits},
                    inst = {ipx, iw, ih, ibits == 16 ? 2 : ich, ibits};
  sige_tensor *t = sige_model_input_from_pixels(m, &src, ipx ? &inst : NULL, report, error);
  if (!t) g_prefix_error(error, "%s: ", path);
  return t;
}

gboolean sige_output_write_png(const sige_tensor *out, const char *path, GError **error) {
  const int W = SIGE_W(out), H = SIGE_H(out);
  g_autofree guint8 *rgb = g_new(guint8, (size_t)W * H * 3);
  if (!sige_pixels_from_output(out, (sige_rect){0, 0, W, H}, 3, rgb, error)) {
    g_prefix_error(error, "%s: ", path);
    return FALSE;
  }
  return sige_png_write(path, rgb, W, H, 3, error);
}
