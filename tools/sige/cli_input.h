/* The CLI's input files. */
#pragma once
#include <glib.h>
#include "sige-app/input_kind.h"
#include "sige/model.h"
#include "sige/tensor.h"

/* The model's input from a PNG (sige_model_input_from_png), with a warning
 * on stderr when label colours had to be mapped to the nearest class. */
sige_tensor *sige_cli_read_input(const sige_model *model, const char *path,
                                 const char *instance_path, GError **error);

/* The shipped default model for `kind` (SIGE_DEFAULT_LABEL_MODEL or
 * SIGE_DEFAULT_PICTURE_MODEL): the installed copy, else the source tree's
 * data/models (a build-tree sige).  NULL with an error naming both places. */
char *sige_cli_default_model(sige_input_kind kind, GError **error);

/* What the PNG at path holds (sige_pixels_guess_input_kind): which default
 * model `sige edit` takes when no --model is given. */
gboolean sige_cli_guess_input_kind(const char *path, sige_input_kind *kind, GError **error);
