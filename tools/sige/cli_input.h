/* The CLI's input files. */
#pragma once
#include <glib.h>
#include "sige/model.h"
#include "sige/tensor.h"

/* The model's input from a PNG (sige_model_input_from_png), with a warning
 * on stderr when label colours had to be mapped to the nearest class. */
sige_tensor *sige_cli_read_input(const sige_model *model, const char *path,
                                 const char *instance_path, GError **error);
