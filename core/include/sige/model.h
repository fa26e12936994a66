/* Models: a configuration plus a weight table, and one forward function per
 * architecture that serves dense, full (recording) and sparse passes.
 *
 * Kinds:
 *   SIGE_MODEL_SPADE      GauGAN's SPADE generator (NVlabs key names);
 *   SIGE_MODEL_DDPM_UNET  the DDPM UNet of Ho et al. (ermongroup/ddim names);
 *   SIGE_MODEL_GANCOMP_SPADE  GAN Compression's sub-mobile SPADE generator
 *                         (unfused GAN-Compression checkpoint names);
 *   SIGE_MODEL_PD_UNET    the Progressive-Distillation UNet of the published
 *                         SIGE code (diffusion/models/pd_arch: resampling
 *                         residual blocks, log-SNR input, multi-head attention,
 *                         x and eps outputs);
 *   SIGE_MODEL_CLIP_TEXT  the CLIP text encoder of Stable Diffusion 1.x
 *                         (Hugging Face CLIPTextModel names);
 *   SIGE_MODEL_SD_UNET    the Stable Diffusion 1.x UNet (openaimodel
 *                         UNetModel with spatial transformers; single-file
 *                         names "model.diffusion_model.*");
 *   SIGE_MODEL_SD_VAE_ENCODER, SIGE_MODEL_SD_VAE_DECODER  the two halves of
 *                         Stable Diffusion's AutoencoderKL (single-file names
 *                         "first_stage_model.*", or a bare VAE file's). */
#pragma once
#include <glib.h>
#include "sige/context.h"
#include "sige/sparse.h"
#include "sige/stats.h"
#include "sige/tensor.h"
#include "sige/weights.h"

G_BEGIN_DECLS

typedef enum {
  SIGE_MODEL_SPADE,
  SIGE_MODEL_DDPM_UNET,
  SIGE_MODEL_GANCOMP_SPADE,
  SIGE_MODEL_PD_UNET,
  SIGE_MODEL_CLIP_TEXT,
  SIGE_MODEL_SD_UNET,
  SIGE_MODEL_SD_VAE_ENCODER,
  SIGE_MODEL_SD_VAE_DECODER,
} sige_model_kind;

/* The sparse settings of every model (SIGE): block sizes of the sparse
 * gathers, how the input difference becomes a mask, and how the mask pyramid
 * is built.  Which layers run sparsely is the model's own rule (the last
 * num_sparse_layers blocks of a SPADE generator, the levels at or above
 * sparse_resolution_threshold of a UNet). */
typedef struct {
  int block_size;          /* of the 3x3 convolutions */
  int shortcut_block_size; /* of the 1x1 shortcut convolutions */
  float diff_eps;          /* difference threshold on the model input */
  int mask_dilate_radius;
  int pyramid_dilation;    /* per-level dilation of the mask pyramid */
  float pyramid_threshold;
  int pyramid_min_h, pyramid_min_w; /* stop size of the pyramid; 0 = the model's lowest level */
} sige_sparse_config;

typedef struct {
  int ngf;                   /* base width (64 for the published GauGAN) */
  int label_nc;              /* number of semantic classes (35 for Cityscapes) */
  gboolean contain_instance; /* one extra instance-edge input channel */
  int crop_size;             /* output width */
  double aspect_ratio;       /* width / height */
  int num_upsampling_layers; /* 5 normal, 6 more, 7 most */
  float batchnorm_eps;
  sige_sparse_config sparse; /* pyramid stop size 0: the latent size */
  int num_sparse_layers;     /* the last this many residual blocks run sparsely */
} sige_spade_config;
void sige_spade_config_init(sige_spade_config *c); /* the published Cityscapes defaults */

/* GAN Compression's sub-mobile SPADE generator: the GauGAN layout with
 * per-block widths from an 8-number channel configuration, SPADE gamma/beta
 * branches that are separable convs (depthwise 3x3, InstanceNorm without
 * affine, pointwise 1x1) and BatchNorm running statistics.  In sparse passes
 * the sparse blocks' instance-norm statistics are frozen from the full pass. */
typedef struct {
  /* input, output size, BatchNorm eps and every sparse setting, as for SPADE
   * (base.ngf does not change any width; num_upsampling_layers 5 or 6) */
  sige_spade_config base;
  int channels[8]; /* the configuration string c0_c1_..._c7 */
  float instancenorm_eps;
} sige_gancomp_config;
/* The published compressed Cityscapes generator, 32_32_32_48_32_24_24_32. */
void sige_gancomp_config_init(sige_gancomp_config *c);
/* "8_8_8_12_8_6_6_8" -> channels; FALSE with an error unless 8 positive numbers. */
gboolean sige_gancomp_parse_channels(const char *config_str, int channels[8], GError **error);

typedef struct {
  int ch, ch_mult[8], n_ch_mult, num_res_blocks;
  int attn_resolutions[8], n_attn_resolutions;
  int in_ch, out_ch, image_size;
  gboolean resamp_with_conv;
  int groupnorm_groups;
  float groupnorm_eps;
  sige_sparse_config sparse; /* pyramid stop size 0: the lowest UNet level */
  int sparse_resolution_threshold; /* levels at least this large run sparsely */
  /* Reproduce a bug of the published sparse UNet: its sparse pass applies the
   * frozen statistics of channel 0 to every channel of an attention block's
   * norm.  Off by default (we freeze per-channel statistics); sige
   * check-reference turns it on, since the reference vectors carry it. */
  gboolean published_attention_quirk;
} sige_ddpm_config;
void sige_ddpm_config_init(sige_ddpm_config *c); /* LSUN church 256 */

/* The PD UNet.  Its forward takes the log-SNR of the noise level as `t`
 * (input "inv_cos": atan(exp(-logsnr / 2)) / (pi / 2) * 1000 into the
 * sinusoidal embedding) and returns 2 * in_ch channels: an x prediction and
 * an eps prediction (the PD sampler mixes them). */
typedef struct {
  int ch, ch_mult[8], n_ch_mult, num_res_blocks;
  int attn_resolutions[8], n_attn_resolutions;
  int head_dim;  /* channels per attention head (> 0), or 0: use num_heads */
  int num_heads;
  int temb_ch;   /* width of the time embedding */
  int in_ch, out_ch, image_size;
  int groupnorm_groups;
  float groupnorm_eps;
  sige_sparse_config sparse; /* as for the DDPM UNet */
  int sparse_resolution_threshold;
} sige_pd_config;
void sige_pd_config_init(sige_pd_config *c); /* the published church 128 PD model */

/* The CLIP text transformer (OpenAI CLIP = Hugging Face CLIPTextModel, as
 * SD 1.x conditions on it): token + position embedding, `layers` pre-LN
 * blocks (causal self-attention, quick_gelu MLP of mlp_ratio * width), the
 * final LayerNorm.  Its input is token ids, not a picture: it has no sparse
 * pass (the sparse settings are unused and stay at their defaults). */
typedef struct {
  int vocab_size, context_length, width, layers, heads, mlp_width;
  float layernorm_eps;
  /* TRUE: keys "cond_stage_model.transformer.text_model.*" (an SD 1.x
   * single file); FALSE: "text_model.*" (diffusers text_encoder/) */
  gboolean sd_single_file;
  sige_sparse_config sparse;
} sige_clip_text_config;
void sige_clip_text_config_init(sige_clip_text_config *c); /* SD 1.x: ViT-L/14's text tower */

/* The Stable Diffusion 1.x UNet (ldm openaimodel.UNetModel with
 * use_spatial_transformer, legacy false): eps prediction from a latent
 * [1, in_channels, H, W], a timestep and a context [tokens, context_dim]
 * (the text encoder's last hidden state).  Levels of num_res_blocks
 * ResBlocks, each followed by a spatial transformer where the level's
 * downsampling factor is in attention_resolutions; the middle block always
 * has one.  Heads are not in the tensors: SD 1.x has 8 (metadata
 * "sige.heads" overrides). */
typedef struct {
  int model_channels, channel_mult[8], n_channel_mult, num_res_blocks;
  int attention_resolutions[8], n_attention_resolutions; /* downsampling factors: 1, 2, 4 */
  int num_heads, transformer_depth, context_dim;
  int in_channels, out_channels;
  int latent_h, latent_w; /* the input size sessions use (64 x 64 for 512 x 512 pictures) */
  int groupnorm_groups;
  float groupnorm_eps;             /* ResBlocks and `out` (1e-5) */
  float transformer_norm_eps;      /* the transformers' GroupNorm (1e-6) */
  float layernorm_eps;             /* (1e-5) */
  /* TRUE: keys "model.diffusion_model.*" (an SD 1.x single file); FALSE:
   * the same names without the prefix */
  gboolean sd_single_file;
  sige_sparse_config sparse;
  int transformer_block_size; /* sparse transformers' gather blocks (published: 4) */
} sige_sd_unet_config;
void sige_sd_unet_config_init(sige_sd_unet_config *c); /* SD 1.x (v1.4, v1.5) */

/* Stable Diffusion's AutoencoderKL (ldm Encoder / Decoder without
 * attention outside the middle blocks), one config for both halves.
 *   encoder kind: image [1, in_channels, image_h, image_w] -> moments
 *     quant_conv(encoder(x)) [1, 2 embed_dim, h, w] (mean, then logvar);
 *   decoder kind: z [1, embed_dim, h, w] -> decoder(post_quant_conv(z))
 *     [1, out_ch, image_h, image_w];
 * h, w = image size / 2^(n_ch_mult - 1).  Sparse passes (the published
 * SIGE semantics): every residual block (the middle ones too), the
 * resampling convs and the middle attention (queries of the active blocks
 * of attention_block_size, keys and values from the full maps) are sparse
 * at every level; conv_in, norm_out (fresh statistics), conv_out,
 * quant_conv and post_quant_conv are dense.  Masks are at the image's
 * resolution for both halves: the decoder's (its input is the latent)
 * comes from the caller (sige_session_regenerate_masked), the image
 * difference mask dilated by sparse.mask_dilate_radius and then by
 * decoder_extra_dilate. */
typedef struct {
  int ch, ch_mult[8], n_ch_mult, num_res_blocks;
  int in_channels, out_ch, z_channels, embed_dim;
  gboolean double_z;
  int image_h, image_w;
  int groupnorm_groups;
  float groupnorm_eps;        /* 1e-6 */
  int attention_block_size;   /* of the middle attention's gathers (4) */
  int decoder_extra_dilate;   /* 40, as the published sdedit runner */
  /* TRUE: keys "first_stage_model.*" (an SD 1.x single file); FALSE: the
   * same names without the prefix (a VAE saved alone) */
  gboolean sd_single_file;
  sige_sparse_config sparse;
} sige_sd_vae_config;
/* SD 1.x (kl-f8: ch 128, ch_mult 1 2 4 4, 2 res blocks, z 4, 512 x 512)
 * with the sparse settings of `part` (SIGE_MODEL_SD_VAE_ENCODER: mask
 * pyramid dilation 1; SIGE_MODEL_SD_VAE_DECODER: 0). */
void sige_sd_vae_config_init(sige_sd_vae_config *c, sige_model_kind part);

typedef struct sige_model sige_model;

/* Builds a model from a weight table (the table is copied into the model's
 * own layout; w can be freed afterwards).  Errors name the missing or
 * mis-shaped tensor. */
sige_model *sige_model_new_spade(const sige_spade_config *cfg, const sige_weights *w,
                                 GError **error);
sige_model *sige_model_new_ddpm(const sige_ddpm_config *cfg, const sige_weights *w,
                                GError **error);
sige_model *sige_model_new_pd(const sige_pd_config *cfg, const sige_weights *w, GError **error);
sige_model *sige_model_new_gancomp(const sige_gancomp_config *cfg, const sige_weights *w,
                                   GError **error);
/* Loads a safetensors file and infers the kind and widths from its keys and
 * shapes (SPADE: ngf, label channels; DDPM: ch, ch_mult, resolutions;
 * sub-mobile SPADE, recognised by its separable mlp_gamma convs: the channel
 * configuration from metadata "sige.config_str", else from the widths). */
sige_model *sige_model_new_clip_text(const sige_clip_text_config *cfg, const sige_weights *w,
                                     GError **error);
sige_model *sige_model_new_sd_unet(const sige_sd_unet_config *cfg, const sige_weights *w,
                                   GError **error);
/* part: SIGE_MODEL_SD_VAE_ENCODER or SIGE_MODEL_SD_VAE_DECODER. */
sige_model *sige_model_new_sd_vae(sige_model_kind part, const sige_sd_vae_config *cfg,
                                  const sige_weights *w, GError **error);
sige_model *sige_model_load(const char *path, GError **error);
/* Every model a file holds, in recognition order (an SD 1.x single file:
 * the UNet, the text encoder, the VAE encoder and decoder), as a new array
 * of sige_model* (freed with it).  NULL with an error naming the file when
 * it holds none, or a part fails to build. */
GPtrArray *sige_model_load_parts(const char *path, GError **error);
/* The model a (canonicalised) weights index holds, its configuration
 * inferred as sige_model_load does; path names it in messages. */
sige_model *sige_model_new_from_weights(const sige_weights *w, const char *path,
                                        GError **error);
/* The same restricted to one sige_model_kind (kind >= 0; -1: the first
 * that recognises w). */
sige_model *sige_model_new_from_weights_kind(const sige_weights *w, const char *path, int kind,
                                             GError **error);
/* "model: <kind>" and the inferred settings of every model w holds (an SD
 * VAE: its encoder and decoder), appended to out; their kind names, comma
 * separated, appended to kinds (may be NULL).  Nothing is loaded or
 * converted. */
gboolean sige_model_describe_weights(const sige_weights *w, const char *path, GString *out,
                                     GString *kinds, GError **error);
void sige_model_free(sige_model *m);
/* The bytes of the checkpoint tensors the model loaded, as it stores them
 * (float32: 4 per value; half weights kept half, sige_weights_keep_half:
 * 2).  Not counted: fusions made after loading, Winograd-transformed
 * weights (sige_ctx_prepared_bytes), a device's copies. */
size_t sige_model_weight_bytes(const sige_model *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_model, sige_model_free)

sige_model_kind sige_model_get_kind(const sige_model *m);
const char *sige_model_kind_name(sige_model_kind k);
/* The SPADE settings (semantic input, output size, sparse parameters) of a
 * SPADE or sub-mobile SPADE generator (its base config); NULL otherwise. */
const sige_spade_config *sige_model_spade_config(const sige_model *m);
const sige_gancomp_config *sige_model_gancomp_config(const sige_model *m); /* NULL if not one */
const sige_ddpm_config *sige_model_ddpm_config(const sige_model *m);   /* NULL if not DDPM */
const sige_pd_config *sige_model_pd_config(const sige_model *m);       /* NULL if not PD */
const sige_clip_text_config *sige_model_clip_text_config(const sige_model *m); /* or NULL */
const sige_sd_unet_config *sige_model_sd_unet_config(const sige_model *m);     /* or NULL */
const sige_sd_vae_config *sige_model_sd_vae_config(const sige_model *m); /* either half, or NULL */

/* The CLIP text encoder on n prompts of context_length token ids each
 * (ids: n * context_length ints).  *last receives the last hidden state, a
 * host [n * context_length, width] tensor (row b * context_length + t);
 * when hidden is not NULL it receives layers + 1 host tensors of that shape:
 * the embeddings, then the output of each layer (before the final norm). */
gboolean sige_clip_text_encode(const sige_model *m, sige_ctx *ctx, const int32_t *ids, int n,
                               sige_tensor **last, GPtrArray *hidden, GError **error);
/* Shape of the model's input tensor ([1, C, H, W]). */
void sige_model_input_shape(const sige_model *m, int64_t shape[4]);

/* A dense forward.  SPADE (and sub-mobile SPADE): input is the semantic tensor
 * [1, label_nc(+1), H, W], t ignored.  CLIP text: input is [n, context_length]
 * token ids as floats (exact below 2^24), t ignored, out [n * context, width].  DDPM: input is x_t [1, in_ch, S, S] and
 * t the timestep.  PD: input is z_t [1, in_ch, S, S] and t its log-SNR.
 * *out receives a new [1, 3|out_ch, H, W] tensor. */
gboolean sige_model_forward_dense(const sige_model *m, sige_ctx *ctx, const sige_tensor *input,
                                  float t, sige_tensor **out, GError **error);
/* The same with a conditioning tensor, for models that take one (SD UNet:
 * the context [tokens, context_dim] or [1, tokens, context_dim], on the host
 * or on ctx's device; required).  cond NULL is sige_model_forward_dense. */
gboolean sige_model_forward_dense_cond(const sige_model *m, sige_ctx *ctx,
                                       const sige_tensor *input, float t,
                                       const sige_tensor *cond, sige_tensor **out,
                                       GError **error);
/* One edit without a session: a full pass on `orig` that records the
 * caches, then a sparse pass on `edited` against them, with the mask
 * pyramid (the model's pyramid settings) of `mask`, which may be finer than
 * the input (SD's masks live in image space, 8 x the latent); cond as for
 * sige_model_forward_dense_cond; fp16: F16 caches.  *full_out (may be
 * NULL) receives the full pass's output, *out the sparse pass's.  What the
 * reference checks run for models the session does not drive yet. */
gboolean sige_model_forward_sparse_once(const sige_model *m, sige_ctx *ctx,
                                        const sige_tensor *orig, const sige_tensor *edited,
                                        float t, const sige_tensor *cond, const sige_mask *mask,
                                        gboolean fp16, sige_tensor **full_out, sige_tensor **out,
                                        GError **error);
/* The same, with what each pass measured (stats may be NULL): stats[0] the
 * recording pass, stats[1] the sparse one (its mask pyramid included):
 * wall seconds and the MACs counted on ctx (sige bench times the SD parts
 * with it: the session does not drive them). */
gboolean sige_model_forward_sparse_once_stats(const sige_model *m, sige_ctx *ctx,
                                              const sige_tensor *orig, const sige_tensor *edited,
                                              float t, const sige_tensor *cond,
                                              const sige_mask *mask, gboolean fp16,
                                              sige_tensor **full_out, sige_tensor **out,
                                              sige_session_stats stats[2], GError **error);
/* The same, also appending one sige_layer_stats per layer group of the
 * recording pass to full_groups and of the sparse pass to sparse_groups
 * (either may be NULL): `sige bench --model sd --layers`. */
gboolean sige_model_forward_sparse_once_profile(const sige_model *m, sige_ctx *ctx,
                                                const sige_tensor *orig,
                                                const sige_tensor *edited, float t,
                                                const sige_tensor *cond, const sige_mask *mask,
                                                gboolean fp16, sige_tensor **full_out,
                                                sige_tensor **out, sige_session_stats stats[2],
                                                GArray *full_groups, GArray *sparse_groups,
                                                GError **error);

/* ---- parameter lists ---------------------------------------------------- */
/* Every checkpoint tensor a model reads, as the model declares it: the
 * loader, the random-weight generator, the demo writer and `sige info` all
 * walk this one list, so a key schema is spelled once. */
typedef enum {
  SIGE_PARAM_WEIGHT,       /* a conv or linear weight (fan_in: all but dim 0) */
  SIGE_PARAM_BIAS,         /* a conv or linear bias */
  SIGE_PARAM_NORM_WEIGHT,  /* a norm's gain (identity: 1) */
  SIGE_PARAM_NORM_BIAS,    /* a norm's bias (identity: 0) */
  SIGE_PARAM_RUNNING_MEAN, /* BatchNorm running statistics (identity: 0) */
  SIGE_PARAM_RUNNING_VAR,  /* (identity: 1) */
} sige_param_role;

typedef struct {
  const char *key; /* checkpoint key path, e.g. "down.0.block.1.conv2.weight" */
  int ndim;
  int64_t shape[4];
  int64_t numel, fan_in;
  sige_param_role role;
} sige_param;

typedef struct sige_param_list sige_param_list;
/* The list of a model of this kind and config (config: the kind's config
 * struct, e.g. a sige_pd_config for SIGE_MODEL_PD_UNET); NULL with an error
 * when the config is out of range. */
sige_param_list *sige_model_kind_params(sige_model_kind kind, const void *config, GError **error);
/* The list of a built model. */
sige_param_list *sige_model_params(const sige_model *m, GError **error);
guint sige_param_list_length(const sige_param_list *l);
const sige_param *sige_param_list_get(const sige_param_list *l, guint i); /* in load order */
void sige_param_list_free(sige_param_list *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_param_list, sige_param_list_free)

/* What `sige info` prints about a model's architecture: one "  name  value"
 * line per setting (widths, levels, channel configuration), appended to out. */
void sige_model_describe_settings(const sige_model *m, GString *out);

/* ---- semantic input (GauGAN) ------------------------------------------- */
/* One-hot of `label` (values 0..label_nc-1, [H*W] ints) into label_nc
 * channels, plus, when instance != NULL, an edge channel: 1 where a pixel's
 * instance id differs from one of its 4 neighbours (as the SPADE code does).
 * Returns [1, label_nc (+1), H, W]; a label outside 0..label_nc-1 is an error
 * naming the pixel. */
sige_tensor *sige_semantic_input(const int32_t *label, const int32_t *instance, int h, int w,
                                 int label_nc, GError **error);

G_END_DECLS
