/* Stable Diffusion for the front-ends: the parts of a checkpoint as models
 * sized to the picture, and prompts as the UNet's contexts. */
#pragma once
#include <glib.h>
#include "sige-app/clip_tokenizer.h"
#include "sige/model.h"
#include "sige/sparse.h"
#include "sige/tensor.h"

G_BEGIN_DECLS

typedef struct {
  sige_model *unet, *encoder, *decoder, *text;
  sige_clip_tokenizer *tokenizer;
} sige_sd_app_models;

/* Opens the checkpoint at path (file or diffusers folder) and builds its
 * four models for width x height pictures.  The sizes a checkpoint states
 * (metadata sige.latent_h / sige.image_size, a folder's sample_size) must
 * match the picture; without them the models are sized to it.  The
 * tokenizer is the folder's, else openai's vocabulary at fallback_bpe.
 * Errors name the checkpoint and what was expected: a size not a multiple
 * of 8, a size the checkpoint does not take, a missing part. */
gboolean sige_sd_app_load(const char *path, int width, int height, const char *fallback_bpe,
                          sige_sd_app_models *m, GError **error);
void sige_sd_app_models_clear(sige_sd_app_models *m);

/* The UNet context of a prompt: the text encoder's last hidden state
 * [context_length, width] of its token ids. */
sige_tensor *sige_sd_app_context(const sige_sd_app_models *m, const char *prompt, int n_threads,
                                 GError **error);

/* An RGB PNG as a picture [1, 3, H, W] in [-1, 1] (v / 127.5 - 1), and a
 * mask PNG (gray; >= 128 = 1: regenerate) of the same size. */
sige_tensor *sige_sd_app_read_picture(const char *path, GError **error);
sige_mask *sige_sd_app_read_mask(const char *path, int width, int height, GError **error);

G_END_DECLS
