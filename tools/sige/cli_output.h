/* The CLI's output files. */
#pragma once
#include <glib.h>
#include "sige/tensor.h"

/* sige_output_write_png with SIGINT, SIGTERM and SIGHUP held back until the
 * file is complete and renamed into place (or the write failed and its
 * temporary file is gone): an interrupt during the write then ends the
 * program after it, and never leaves a stray PATH.XXXXXX behind. */
gboolean sige_cli_write_png(const sige_tensor *out, const char *path, GError **error);
