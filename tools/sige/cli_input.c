#include "cli_input.h"

#include <stdio.h>

#include "sige-app/image_files.h"
#include "sige-app/pixels.h"
#include "sige-app/png_io.h"
#include "sige/error.h"

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

char *sige_cli_default_model(sige_input_kind kind, GError **error) {
  const char *name = sige_default_model_name(kind);
  const char *dirs[] = {SIGE_MODELS_INSTALLED, SIGE_MODELS_SOURCE};
  for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
    char *p = g_build_filename(dirs[i], name, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) return p;
    g_free(p);
  }
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
              "no --model given and the default model %s is in neither %s nor %s: reinstall, "
              "or give --model",
              name, SIGE_MODELS_INSTALLED, SIGE_MODELS_SOURCE);
  return NULL;
}

gboolean sige_cli_guess_input_kind(const char *path, sige_input_kind *kind, GError **error) {
  g_autofree guint8 *data = NULL;
  int w = 0, h = 0, channels = 0;
  /* as stored: a gray file holds class ids, whatever their values look like */
  if (!sige_png_read(path, 0, &data, &w, &h, &channels, error)) return FALSE;
  const sige_pixels px = {data, w, h, channels, 8};
  *kind = sige_pixels_guess_input_kind(&px);
  return TRUE;
}
