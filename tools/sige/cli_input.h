/* The CLI's inputs: PNG files and model specs. */
#pragma once
#include <glib.h>
#include "sige/model.h"
#include "sige/tensor.h"

/* The model's input from a PNG (sige_model_input_from_png), with a warning
 * on stderr when label colours had to be mapped to the nearest class. */
sige_tensor *sige_cli_read_input(const sige_model *model, const char *path,
                                 const char *instance_path, GError **error);

/* "PATH", "spade:PATH", "ddpm:PATH", "pd:PATH", "pd:HEAD_DIM:PATH",
 * "gancomp:PATH" or "gancomp:CONFIG:PATH" -> the model.  CONFIG (as
 * 32_32_32_48_32_24_24_32) replaces the channel configuration the file gives
 * or implies; HEAD_DIM the attention head width (metadata sige.head_dim, else
 * the published 64).  With a
 * prefix, a file of another kind is an error naming both kinds. */
sige_model *sige_cli_load_model(const char *spec, GError **error);
