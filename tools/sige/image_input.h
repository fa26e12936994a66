/* RGB image PNGs <-> [1, 3, H, W] tensors in [-1, 1]. */
#pragma once
#include <glib.h>
#include "sige/tensor.h"

sige_tensor *sige_cli_read_image(const char *path, int want_h, int want_w, GError **error);
