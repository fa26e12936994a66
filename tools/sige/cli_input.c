#include "cli_input.h"

#include <stdio.h>

#include "sige-app/image_files.h"

sige_tensor *sige_cli_read_input(const sige_model *model, const char *path,
                                 const char *instance_path, GError **error) {
  sige_input_report report = {0, 0, 0};
  sige_tensor *t = sige_model_input_from_png(model, path, instance_path, &report, error);
  if (t && report.n_nearest > 0)
    fprintf(stderr,
            "sige: warning: %s: %" G_GINT64_FORMAT " pixels (%.2f %%) are not Cityscapes "
            "colours; mapped to the nearest class\n",
            path, report.n_nearest, 100.0 * report.n_nearest / (double)MAX(report.n_pixels, 1));
  return t;
}
