/* Safetensors writer (placeholder until the writer lands). */
#include "sige/error.h"
#include "weights_internal.h"

gboolean sige_weights_save_safetensors(const sige_weights *w, const char *path, sige_dtype dtype,
                                       GHashTable *metadata, GError **error) {
  (void)w; (void)dtype; (void)metadata;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED, "%s: writer not implemented yet", path);
  return FALSE;
}
