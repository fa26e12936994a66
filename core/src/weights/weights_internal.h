/* Private to core/src/weights: what the readers need beyond the public table API. */
#pragma once
#include "sige/weights.h"

G_BEGIN_DECLS

/* Like sige_weights_insert, but records the dtype the tensor had in its file
 * (sige_weights_insert records F32). */
void sige_weights_insert_with_dtype(sige_weights *w, const char *name, sige_tensor *t,
                                    sige_dtype dtype);
void sige_weights_set_path(sige_weights *w, const char *path);
void sige_weights_set_metadata(sige_weights *w, const char *key, const char *value);
/* Parses a safetensors dtype string ("F16", ...); FALSE when not one of ours. */
gboolean sige_dtype_from_name(const char *name, sige_dtype *out);
/* Short, printable file name for error messages (basename of path). */
char *sige_weights_display_name(const char *path);

G_END_DECLS
