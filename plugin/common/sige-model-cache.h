/* Loaded models by file path, shared by the sessions that use them (a
 * session borrows its model, so a model lives as long as a session refers to
 * it).  Loading is lazy: the first run that names a model pays for it. */
#pragma once
#include <glib.h>
#include "sige/model.h"

G_BEGIN_DECLS

typedef struct sige_model_ref sige_model_ref;

/* A new reference to the model `path` names, a model spec (a file path, or
 * e.g. pd:32:PATH; sige-app/model_spec.h), loaded now if no one holds it.
 * A file that changed on disk since it was loaded is loaded again. */
sige_model_ref *sige_model_cache_get(const char *path, GError **error);
sige_model_ref *sige_model_ref_ref(sige_model_ref *r);
void sige_model_ref_unref(sige_model_ref *r);
const sige_model *sige_model_ref_model(const sige_model_ref *r);
const char *sige_model_ref_path(const sige_model_ref *r);
/* Bytes of weights the model holds (an estimate from the file size). */
size_t sige_model_ref_bytes(const sige_model_ref *r);
/* "GauGAN (SPADE), 512 x 256, 35 classes" style description; g_free it. */
char *sige_model_describe(const sige_model *m);

G_END_DECLS
