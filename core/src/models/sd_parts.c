/* One part of a Stable Diffusion checkpoint as a model
 * (sige/sd_checkpoint.h): the part's weights in single-file names, then
 * the model class that recognises them. */
#include <string.h>

#include "sige/error.h"
#include "sige/model.h"
#include "sige/sd_checkpoint.h"

/* A message about a renamed tensor ('model.diffusion_model...') also
 * names it as the file does, the name its owner knows. */
static void add_source_name(const sige_weights *w, const char *file, GError *e) {
  if (!e || !file) return;
  const char *p = e->message;
  while ((p = strchr(p, '\'')) != NULL) {
    const char *end = strchr(p + 1, '\'');
    if (!end) break;
    g_autofree char *name = g_strndup(p + 1, (gsize)(end - p - 1));
    g_autofree char *key = g_strconcat(SIGE_SD_SOURCE_NAME, name, NULL);
    const char *orig = sige_weights_metadata(w, key);
    if (orig) {
      /* "unet/diffusion_pytorch_model.safetensors": which of the folder's
       * files, when every one has the same name */
      g_autofree char *parent = g_path_get_dirname(file);
      g_autofree char *sub = g_path_get_basename(parent);
      g_autofree char *base = g_path_get_basename(file);
      char *msg = g_strdup_printf("%s (%s/%s names it '%s')", e->message, sub, base, orig);
      g_free(e->message);
      e->message = msg;
      return;
    }
    p = end + 1;
  }
}

sige_model *sige_sd_load_model(const char *path, sige_sd_part part, guint flags, GError **error) {
  return sige_sd_load_model_kind(path, part, -1, flags, error);
}

sige_model *sige_sd_load_model_kind(const char *path, sige_sd_part part, int kind, guint flags,
                                    GError **error) {
  g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(path, error);
  if (!ck) return NULL;
  g_autoptr(sige_weights) w = sige_sd_checkpoint_part(ck, part, flags, error);
  if (!w) return NULL;
  /* messages name the file the tensors come from (unet/..., the single file) */
  const char *file = sige_sd_checkpoint_part_path(ck, part);
  GError *e = NULL;
  sige_model *m = sige_model_new_from_weights_kind(w, file ? file : path, kind, &e);
  if (!m) add_source_name(w, file, e);
  if (e) g_propagate_error(error, e);
  return m;
}
