/* PNG files <-> model tensors: the conversions of pixels.h on what
 * png_io.h reads and writes, for the command-line front-end. */
#pragma once
#include <glib.h>

#include "sige-app/pixels.h"

G_BEGIN_DECLS

/* The model's input from a PNG (a label map in Cityscapes colours or class
 * ids, or a picture) and, for label maps, an optional instance-id PNG (NULL:
 * none).  Errors start with the file's name. */
sige_tensor *sige_model_input_from_png(const sige_model *m, const char *path,
                                       const char *instance_path, sige_input_report *report,
                                       GError **error);

/* A [1, 3, H, W] output in [-1, 1] as an 8-bit RGB PNG. */
gboolean sige_output_write_png(const sige_tensor *out, const char *path, GError **error);

G_END_DECLS
