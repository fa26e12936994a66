/* Private to the SD checkpoint reader: the diffusers -> single-file name
 * maps (sd_names.c). */
#pragma once
#include "weights_internal.h"

G_BEGIN_DECLS

/* A UNet2DConditionModel key -> its name under "model.diffusion_model."
 * (without the prefix); FALSE when the key is not one of SD 1.x's.  w is
 * the diffusers table (an up block's upsampler moves after its attention
 * when it has one); res_blocks: resnets per down block.  *linear: a
 * projection diffusers may keep as Linear [C, C] (a 1x1 convolution). */
gboolean sige_sd_unet_name(const sige_weights *w, const char *key, int res_blocks, GString *out,
                           gboolean *linear);
/* An AutoencoderKL key -> its name under "first_stage_model."; levels:
 * the encoder's down blocks. */
gboolean sige_sd_vae_name(const char *key, int levels, GString *out, gboolean *linear);

G_END_DECLS
