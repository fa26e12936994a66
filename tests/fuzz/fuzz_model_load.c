/* libFuzzer target: building a model from a weights file, past the reader:
 * layout recognition and renaming, config inference from shapes and
 * metadata (sige.* keys), parameter list checks and loading.  Inputs are
 * safetensors files (the seeds hold every model's key names with tiny
 * shapes).  Oracle: exactly one of model and error, the error with a
 * message; a model that loads describes itself. */
#include "fuzz_common.h"
#include "sige/model.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_glib();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write_temp(".safetensors", data, size);
  GError *error = NULL;
  sige_model *m = sige_model_load(path, &error);
  if ((m == NULL) == (error == NULL)) abort();
  if (m) {
    int64_t shape[4];
    sige_model_input_shape(m, shape);
    if (shape[0] != 1 || shape[1] < 1 || shape[2] < 1 || shape[3] < 1) abort();
    sige_model_free(m);
  } else {
    if (!error->message || !*error->message) abort();
    g_error_free(error);
  }
  return 0;
}
