/* Label-map PNGs -> the model's semantic input, and model output -> PNG. */
#pragma once
#include <glib.h>
#include "sige/model.h"
#include "sige/tensor.h"

/* Reads a label map (Cityscapes colours, or a 1-channel class-index PNG) and
 * an optional instance-id PNG (NULL: the label map's own class boundaries
 * serve as instance edges) into the semantic tensor the model expects.
 * Warns on stderr when colours had to be mapped to the nearest class. */
sige_tensor *sige_cli_semantic_from_png(const sige_model *model, const char *labels_path,
                                        const char *instance_path, GError **error);

/* Writes a [1, 3, H, W] tensor in [-1, 1] as an 8-bit RGB PNG. */
gboolean sige_cli_write_image(const sige_tensor *img, const char *path, GError **error);

/* "PATH", "spade:PATH", "ddpm:PATH", "pd:PATH", "pd:HEAD_DIM:PATH",
 * "gancomp:PATH" or "gancomp:CONFIG:PATH" -> the model.  CONFIG (as
 * 32_32_32_48_32_24_24_32) replaces the channel configuration the file gives
 * or implies; HEAD_DIM the attention head width (metadata sige.head_dim, else
 * the published 64).  With a
 * prefix, a file of another kind is an error naming both kinds. */
sige_model *sige_cli_load_model(const char *spec, GError **error);
