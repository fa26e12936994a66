/* libFuzzer target: the restricted unpickler, in memory.
 *
 * The public loaders reach the unpickler only through a file (zip entries
 * behind CRC-32 checks, or a legacy file behind three header pickles), so
 * this target calls the reader's private in-memory entry point instead,
 * the way torch_zip.c does for data.pkl: sige_pickle_load with the torch
 * persistent-id resolver, then sige_torch_to_weights.  Those are internal
 * (core/src/weights/ headers): if they change, this file follows them.
 *
 * Storages have no zip entries here; the resolver's read hook hands each a
 * zero-filled in-memory source of the size the pickle claims (capped), so
 * tensors get as far as the geometry checks, the index and (through the
 * oracle's sige_weights_get) the strided gather. */
#include <string.h>

#include "fuzz_common.h"
#include "sige/error.h"
#include "torch_internal.h"

/* Larger claimed storages are refused, as a real file of this size could
 * not hold them either. */
#define MAX_STORAGE_BYTES ((guint64)1 << 20)

static gboolean read_zeros(sige_torch_loader *l, sige_pickle_storage *s, GError **error) {
  guint64 bytes;
  if (!g_uint64_checked_mul(&bytes, s->numel, sige_dtype_size(s->dtype)) ||
      bytes > MAX_STORAGE_BYTES) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: storage '%s' too large for the fuzzer",
                l->file, s->key);
    return FALSE;
  }
  g_autoptr(GBytes) buf = g_bytes_new_take(g_malloc0(bytes ? bytes : 1), (gsize)bytes);
  s->source = sige_weights_source_new_bytes(buf);
  s->offset = 0;
  s->nbytes = bytes;
  return TRUE;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_glib();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A heap copy of exactly `size` bytes, so ASan flags any read past the
   * end; never NULL (the real callers never pass NULL, even for 0 bytes). */
  guint8 *copy = g_malloc(size ? size : 1);
  if (size) memcpy(copy, data, size);
  sige_torch_loader l;
  sige_torch_loader_init(&l, "fuzz.pkl");
  l.read = read_zeros;
  GError *error = NULL;
  gsize consumed = 0;
  sige_pv *root = sige_pickle_load(copy, size, &consumed, "fuzz.pkl", sige_torch_persistent, &l,
                                   &error);
  sige_weights *w = NULL;
  if (root) {
    if (error || consumed == 0 || consumed > size) abort();
    w = sige_torch_to_weights(&l, root, "fuzz.pkl", "pytorch-zip", &error);
    sige_pv_unref(root);
  }
  fuzz_check_result(w, error);
  sige_torch_loader_clear(&l);
  g_free(copy);
  return 0;
}
