/* Layer pixels <-> model tensors, and the one place that decides what a
 * model kind needs from the front-end.  No GIMP here: pixels are plain
 * interleaved 8-bit buffers (1 = gray, 2 = gray + alpha, 3 = RGB,
 * 4 = RGB + alpha), so a GIMP 3 front-end can reuse it. */
#pragma once
#include <glib.h>
#include <stdint.h>
#include "sige-app/edit_params.h"
#include "sige-app/input_kind.h"
#include "sige/model.h"
#include "sige/sampler.h"
#include "sige/session.h"
#include "sige/tensor.h"

G_BEGIN_DECLS

typedef struct {
  const guint8 *data; /* width * height * bpp bytes, rows packed */
  int width, height, bpp;
} sige_pixels;

/* Whether a session made with `old` can go on with `now`: NULL if so, else
 * the translated names of the settings the caches depend on that changed
 * ("steps, seed"); g_free it. */
char *sige_plugin_options_change(const sige_session_options *old,
                                 const sige_session_options *now);

/* What the conversion noticed, for the front-end to report. */
typedef struct {
  int64_t n_nearest; /* label pixels that were not an exact palette colour */
  int64_t n_pixels;
} sige_input_report;

/* Label map pixels -> class ids (w*h, newly allocated).  RGB(A): the
 * Cityscapes palette, exact colour -> id, other colours -> the nearest id
 * (counted in *n_nearest).  Gray(A): the gray value is the class id; a value
 * >= label_nc is an error naming the pixel.  Alpha is ignored. */
int32_t *sige_labels_from_pixels(const sige_pixels *px, int label_nc, int64_t *n_nearest,
                                 GError **error);

/* Image pixels -> [1, 3, H, W] in [-1, 1] (v / 127.5 - 1, as the
 * command-line tool reads a PNG).  Gray is replicated into the three
 * channels; alpha is ignored. */
sige_tensor *sige_image_from_pixels(const sige_pixels *px, GError **error);

/* Instance ids from an instance layer: gray value, or 24-bit RGB value. */
int32_t *sige_instances_from_pixels(const sige_pixels *px);

/* The model input for a source layer (and an optional instance layer, which
 * must have the same size; GauGAN only).  The layer must have the model's
 * input size.  DDPM: the image for an SDEdit session. */
sige_tensor *sige_model_input_from_pixels(const sige_model *m, const sige_pixels *src,
                                          const sige_pixels *instance, sige_input_report *report,
                                          GError **error);

/* Writes the rectangle r of a [1, 3, H, W] output in [-1, 1] into dst as
 * 8-bit pixels of dst_bpp bytes (rows of r.width, packed; gray = Rec. 601
 * luma; alpha 255).  The rounding is the command-line tool's:
 * lrint(clamp((v + 1) * 127.5)). */
gboolean sige_pixels_from_output(const sige_tensor *out, sige_rect r, int dst_bpp, guint8 *dst,
                                 GError **error);

/* Bounding rectangle of the pixels that differ between a and b (same size);
 * width 0 when equal. */
sige_rect sige_pixels_diff_rect(const sige_pixels *a, const sige_pixels *b);

G_END_DECLS
