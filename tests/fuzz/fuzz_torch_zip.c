/* libFuzzer target: sige_weights_load_torch on arbitrary bytes.
 *
 * The seeds are torch.save zip checkpoints (libzip, data.pkl, data/<key>
 * entries, byteorder); a legacy seed is included too, since the loader picks
 * the format from the first bytes and a mutated zip may turn into either.
 * (Mutations inside an entry get through: the reader stops at the entry's
 * size, before libzip would compare its CRC-32.) */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_glib();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write_temp(".pth", data, size);
  GError *error = NULL;
  sige_weights *w = sige_weights_load_torch(path, &error);
  fuzz_check_result(w, error);
  return 0;
}
