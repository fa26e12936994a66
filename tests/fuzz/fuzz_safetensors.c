/* libFuzzer target: the strict safetensors reader on arbitrary bytes. */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_glib();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write_temp(".safetensors", data, size);
  GError *error = NULL;
  sige_weights *w = sige_weights_load_safetensors(path, &error);
  fuzz_check_result(w, error);
  return 0;
}
