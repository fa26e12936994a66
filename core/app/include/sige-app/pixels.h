/* Images <-> model tensors, written once for every front-end: label maps ->
 * the semantic input of GauGAN / GAN-Compression, RGB pictures <-> the
 * [-1, 1] range of DDPM / PD, and model output -> 8-bit pixels.  Pixels are
 * plain interleaved 8-bit buffers (1 = gray, 2 = gray + alpha, 3 = RGB,
 * 4 = RGB + alpha): what libpng gives the CLI and GIMP gives the plug-ins. */
#pragma once
#include <glib.h>
#include <stdint.h>

#include "sige-app/input_kind.h"
#include "sige/model.h"
#include "sige/session.h"
#include "sige/tensor.h"

G_BEGIN_DECLS

typedef struct {
  const guint8 *data; /* width * height * bpp bytes, rows packed */
  int width, height, bpp;
  /* 16: an index map of host-order guint16 gray values (bpp 2), as
   * sige_png_read_index_map reads 16-bit files; 0 or 8: 8-bit samples */
  int bits;
} sige_pixels;

/* What the conversion noticed, for the front-end to report. */
typedef struct {
  int64_t n_nearest; /* label pixels that were not an exact palette colour */
  int64_t n_pixels;
  int64_t n_far; /* RGB label pixels farther than SIGE_LABEL_FAR_DISTANCE from every colour */
} sige_input_report;

/* When is an RGB "label map" a photo?  A pixel is far from the palette when
 * its RGB distance to every Cityscapes colour is above 24 levels; a label
 * map with more than half its pixels far is refused before any pass.  Both
 * numbers measured (docs/USER-GUIDE.md): photos have 85-92 % of their pixels
 * that far, a label map antialiased, blurred (1.5 px) or saved as a JPEG at
 * quality 40 at most 7.3 %, so the verdict does not hinge on either value. */
#define SIGE_LABEL_FAR_DISTANCE 24
#define SIGE_LABEL_FAR_FRACTION 0.5

/* How many pixels of an RGB(A) px are far from every palette colour (0 for
 * gray, whose values are class ids). */
int64_t sige_labels_count_far(const sige_pixels *px);

/* What a layer or file with no model chosen holds, by the same rule: a
 * picture (SIGE_INPUT_IMAGE) when more than SIGE_LABEL_FAR_FRACTION of its
 * RGB pixels are far from the palette, else a label map (gray and 16-bit
 * layers hold class ids).  Chooses between the shipped default models. */
sige_input_kind sige_pixels_guess_input_kind(const sige_pixels *px);

/* Label map pixels -> class ids (w*h, newly allocated).  RGB(A): the
 * Cityscapes palette, exact colour -> id, other colours -> the nearest id
 * (counted in *n_nearest).  Gray(A): the gray value is the class id; a value
 * >= label_nc is an error naming the pixel.  Alpha is ignored. */
int32_t *sige_labels_from_pixels(const sige_pixels *px, int label_nc, int64_t *n_nearest,
                                 GError **error);

/* Picture pixels -> [1, 3, H, W] in [-1, 1] (v / 127.5 - 1).  Gray is
 * replicated into the three channels; alpha is ignored. */
sige_tensor *sige_image_from_pixels(const sige_pixels *px, GError **error);

/* Instance ids from an instance map: gray value (8 or 16 bits, unscaled: a
 * Cityscapes instanceIds map keeps class * 1000 + n), or 24-bit RGB value. */
int32_t *sige_instances_from_pixels(const sige_pixels *px);

/* The model input (sige_model_input_kind) for src, which must have the
 * model's input size: a label map (with an optional instance map of the same
 * size; without one, the class boundaries serve as instance edges) or the
 * picture of an SDEdit session.  A label map that is mostly far from the
 * palette (SIGE_LABEL_FAR_FRACTION) is refused (SIGE_ERROR_FORMAT, saying
 * how many pixels) before anything else is computed. */
sige_tensor *sige_model_input_from_pixels(const sige_model *m, const sige_pixels *src,
                                          const sige_pixels *instance, sige_input_report *report,
                                          GError **error);

/* Writes the rectangle r of a [1, 3, H, W] output in [-1, 1] into dst as
 * 8-bit pixels of dst_bpp bytes (rows of r.width, packed; gray = Rec. 601
 * luma; alpha 255), rounded as lrint(clamp((v + 1) * 127.5)). */
gboolean sige_pixels_from_output(const sige_tensor *out, sige_rect r, int dst_bpp, guint8 *dst,
                                 GError **error);

G_END_DECLS
