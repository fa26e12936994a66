/* One part of a Stable Diffusion checkpoint as a model
 * (sige/sd_checkpoint.h): the part's weights in single-file names, then
 * the model class that recognises them. */
#include "sige/error.h"
#include "sige/model.h"
#include "sige/sd_checkpoint.h"

sige_model *sige_sd_load_model(const char *path, sige_sd_part part, guint flags, GError **error) {
  g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(path, error);
  if (!ck) return NULL;
  g_autoptr(sige_weights) w = sige_sd_checkpoint_part(ck, part, flags, error);
  if (!w) return NULL;
  /* messages name the file the tensors come from (unet/..., the single file) */
  const char *file = sige_sd_checkpoint_part_path(ck, part);
  return sige_model_new_from_weights(w, file ? file : path, error);
}
