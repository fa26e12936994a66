/* Stable Diffusion 1.x checkpoints as users have them, split into the parts
 * our models read.
 *
 * Two shapes of checkpoint are understood:
 *   - one file (safetensors, or a PyTorch .ckpt / .pth zip or legacy pickle)
 *     in the CompVis single-file names: the UNet under
 *     "model.diffusion_model.", the VAE under "first_stage_model.", the CLIP
 *     text encoder under "cond_stage_model.transformer.text_model." (older
 *     files: "cond_stage_model.transformer." without "text_model.");
 *     fp32, fp16 or bf16; other keys (the schedule buffers, "model_ema.*",
 *     optimizer leftovers) are ignored;
 *   - a diffusers folder: model_index.json, unet/, vae/, text_encoder/,
 *     tokenizer/ (vocab.json + merges.txt) and scheduler/
 *     (scheduler_config.json); each model folder holds
 *     diffusion_pytorch_model.safetensors (model.safetensors for the text
 *     encoder), else the ".fp16.safetensors" variant, else the ".bin" /
 *     ".fp16.bin" PyTorch files, in that order (diffusers' own default
 *     without a variant comes first).  diffusers names are renamed to the
 *     single-file ones (the reverse of diffusers'
 *     convert_original_stable_diffusion_to_diffusers.py); a name that the
 *     renaming does not know is an error naming the file and the key, so an
 *     SD 2.x or SDXL folder is refused rather than half loaded.
 *
 * Whatever the source, a part comes back as a weights index whose names are
 * the single-file ones ("model.diffusion_model.*", "first_stage_model.*",
 * "cond_stage_model.transformer.text_model.*"), sharing the file's bytes
 * (nothing is converted until a model reads a tensor), with the path of the
 * file it came from for messages.
 *
 * EMA.  Training checkpoints hold the UNet twice: the trained weights under
 * "model.diffusion_model." and their exponential moving average under
 * "model_ema." with the dots of the rest of the name removed
 * ("model_ema.diffusion_modelinput_blocks00weight").  As CompVis'
 * v1-inference.yaml (use_ema: False) and diffusers' conversion script
 * (without --extract_ema) do, the UNet part is the non-EMA one unless
 * SIGE_SD_LOAD_EMA asks for the average.  A file holding only EMA keys
 * gives them without the flag (there is nothing else).
 *
 * Metadata.  Part tables carry the sizes the tensors do not hold as the
 * models read them ("sige.heads", "sige.latent_h", "sige.latent_w"): from a
 * single file's safetensors metadata "sige.<part>.<key>" (part names below,
 * e.g. "sige.text-encoder.heads"), or from a diffusers folder's config.json
 * (unet: attention_head_dim when one number, sample_size; text_encoder:
 * num_attention_heads).  Plain "sige.<key>" metadata of a single file is
 * copied to every part. */
#pragma once
#include <glib.h>
#include "sige/weights.h"

G_BEGIN_DECLS

typedef enum {
  SIGE_SD_PART_UNET,
  SIGE_SD_PART_VAE,
  SIGE_SD_PART_TEXT_ENCODER,
  SIGE_SD_N_PARTS
} sige_sd_part;

typedef enum { SIGE_SD_LOAD_EMA = 1 << 0 } sige_sd_load_flags;

/* "unet", "vae", "text-encoder". */
const char *sige_sd_part_name(sige_sd_part part);
/* Accepts those names (and "text_encoder", "clip"); FALSE for others. */
gboolean sige_sd_part_from_name(const char *name, sige_sd_part *out);
/* The single-file prefix of a part ("model.diffusion_model.", ...). */
const char *sige_sd_part_prefix(sige_sd_part part);

/* The beta schedule of scheduler/scheduler_config.json, or SD 1.x's when
 * the checkpoint has none (a single file). */
typedef enum { SIGE_SD_BETAS_LINEAR, SIGE_SD_BETAS_SCALED_LINEAR } sige_sd_beta_schedule;

typedef struct {
  int num_train_timesteps;        /* 1000 */
  double beta_start, beta_end;    /* 0.00085, 0.012 */
  sige_sd_beta_schedule schedule; /* scaled_linear: linspace(sqrt(b0), sqrt(b1), T)^2 */
  int steps_offset;               /* diffusers' timestep offset (SD 1.x: 1) */
  gboolean from_file;             /* FALSE: the SD 1.x defaults above */
} sige_sd_schedule;

/* SD 1.x: scaled_linear 0.00085 .. 0.012 over 1000, steps_offset 1. */
void sige_sd_schedule_init(sige_sd_schedule *s);
/* betas[num_train_timesteps] in double, as the published code computes
 * them (linspace in float64; scaled_linear squares after). */
void sige_sd_schedule_betas(const sige_sd_schedule *s, double *betas);

typedef struct sige_sd_checkpoint sige_sd_checkpoint;

/* A single file or a diffusers folder (told apart by the path).  A file is
 * indexed (no tensor read); a folder's model_index.json and
 * scheduler_config.json are read and checked.  Errors name the file and
 * what was expected: a file holding no SD part, an unknown beta schedule or
 * prediction type, a pipeline class that is not SD 1.x. */
sige_sd_checkpoint *sige_sd_checkpoint_open(const char *path, GError **error);
void sige_sd_checkpoint_free(sige_sd_checkpoint *ck);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_sd_checkpoint, sige_sd_checkpoint_free)

/* "single-file" or "diffusers". */
const char *sige_sd_checkpoint_format(const sige_sd_checkpoint *ck);
/* Whether the checkpoint holds the part (a single file: its keys; a folder:
 * the subfolder exists). */
gboolean sige_sd_checkpoint_has_part(const sige_sd_checkpoint *ck, sige_sd_part part);
/* Whether a single file holds "model_ema.*" UNet weights. */
gboolean sige_sd_checkpoint_has_ema(const sige_sd_checkpoint *ck);
/* The part's weights in single-file names (see above); a new table the
 * caller frees.  Errors: the part is absent (naming the file or folder and
 * what was looked for), SIGE_SD_LOAD_EMA without EMA weights, a diffusers
 * key the renaming does not know, an EMA copy whose shape differs. */
sige_weights *sige_sd_checkpoint_part(const sige_sd_checkpoint *ck, sige_sd_part part,
                                      guint flags, GError **error);
/* The file a part is read from (for messages; NULL when absent). */
const char *sige_sd_checkpoint_part_path(const sige_sd_checkpoint *ck, sige_sd_part part);
/* A renamed part's metadata SIGE_SD_SOURCE_NAME + <our name> holds the
 * name the tensor has in its file (diffusers). */
#define SIGE_SD_SOURCE_NAME "sige.sd.source-name."
/* A diffusers folder's tokenizer/vocab.json and merges.txt; NULL for a
 * single file (which holds no tokenizer: use openai's vocabulary). */
const char *sige_sd_checkpoint_vocab_json(const sige_sd_checkpoint *ck);
const char *sige_sd_checkpoint_merges_txt(const sige_sd_checkpoint *ck);
const sige_sd_schedule *sige_sd_checkpoint_schedule(const sige_sd_checkpoint *ck);

/* Whether `path` is a directory (then it is read as a diffusers folder). */
gboolean sige_sd_path_is_folder(const char *path);

/* One part of the checkpoint at `path` (file or folder) as a model: the
 * UNet (sd-unet), the text encoder (clip-text), or the VAE when this build
 * has a model class that reads "first_stage_model.*".  Errors as
 * sige_sd_checkpoint_part, then those of the model (a missing or
 * mis-shaped tensor, named with the file it was read from). */
typedef struct sige_model sige_model;
sige_model *sige_sd_load_model(const char *path, sige_sd_part part, guint flags, GError **error);
/* The same with the model kind given (a sige_model_kind; -1: the first
 * that reads the part): the VAE's encoder or decoder. */
sige_model *sige_sd_load_model_kind(const char *path, sige_sd_part part, int kind, guint flags,
                                    GError **error);

G_END_DECLS
