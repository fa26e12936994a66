/* The ermongroup/ddim UNet layout shared by the DDPM and PD UNets: levels
 * of residual blocks (with attention at some resolutions), resampling
 * between them, a middle block, skip concatenations, built from the blocks
 * of unet_blocks.h with keys "down.<i>.block.<j>", "mid.attn_1", ... */
#pragma once
#include "unet_blocks.h"

/* The published values of the fields the DDPM and PD UNet configs share. */
typedef struct {
  int ch, ch_mult[8], n_ch_mult, num_res_blocks, attn_resolutions[8], n_attn_resolutions;
  int in_ch, out_ch, image_size, mask_dilate_radius;
  float diff_eps;
} sige_unet_defaults;

/* Zeroes *c and sets its common UNet fields from d (GroupNorm(32, 1e-6) and
 * sparse levels from 64 pixels in both). A macro, since the two configs are
 * distinct public types that only name these fields alike. */
#define SIGE_UNET_CONFIG_INIT(c, d)                                                \
  do {                                                                             \
    memset((c), 0, sizeof *(c));                                                   \
    (c)->ch = (d)->ch;                                                             \
    memcpy((c)->ch_mult, (d)->ch_mult, sizeof (c)->ch_mult);                       \
    (c)->n_ch_mult = (d)->n_ch_mult;                                               \
    (c)->num_res_blocks = (d)->num_res_blocks;                                     \
    memcpy((c)->attn_resolutions, (d)->attn_resolutions, sizeof (c)->attn_resolutions); \
    (c)->n_attn_resolutions = (d)->n_attn_resolutions;                             \
    (c)->in_ch = (d)->in_ch;                                                       \
    (c)->out_ch = (d)->out_ch;                                                     \
    (c)->image_size = (d)->image_size;                                             \
    (c)->groupnorm_groups = 32;                                                    \
    (c)->groupnorm_eps = 1e-6f;                                                    \
    sige_sparse_config_defaults(&(c)->sparse, (d)->diff_eps, (d)->mask_dilate_radius, 1); \
    (c)->sparse_resolution_threshold = 64;                                         \
  } while (0)

/* One level: n_blocks residual blocks (each followed by attention when the
 * level has it), then an optional resampling conv (DDPM) or block (PD). */
typedef struct {
  sige_unet_resblock *blocks;
  sige_unet_attn *attn; /* NULL when the level has no attention */
  int n_blocks;
  gboolean has_resample;
  sige_conv_layer resample_conv;
  sige_unet_resblock resample_block;
  gboolean resample_is_block;
} sige_unet_level;

/* The ermongroup/ddim layout shared by the DDPM and PD UNets. */
typedef struct {
  int ch, n_levels, num_res_blocks, in_ch, out_ch, image_size, temb_ch;
  const int *ch_mult;
  const int *attn_res;
  int n_attn_res;
  /* attention: heads (fused qkv) of head_dim channels, else num_heads
   * heads; single-head q, k, v without heads */
  gboolean heads;
  int head_dim, num_heads;
  int temb_out_mult;              /* temb_proj rows per block channel: 1 or 2 */
  gboolean resample_blocks;       /* resampling residual blocks (PD) or convs (DDPM) */
  /* the middle blocks run sparsely when the lowest level does (PD); the
   * DDPM up-sampling convs run sparsely at every level */
  gboolean mid_sparse_by_res, upsample_always_sparse;
} sige_unet_layout;

typedef struct {
  sige_unet_norms norms;
  int n_levels;
  int sparse_threshold, block_size, shortcut_block_size, image_size, in_ch;
  gboolean mid_sparse_by_res, upsample_always_sparse; /* as in sige_unet_layout */
  sige_unet_temb temb;
  sige_conv_layer conv_in, conv_out;
  sige_unet_level *down, *up;
  sige_unet_resblock mid1, mid2;
  sige_unet_attn mid_attn;
  sige_tensor *out_g, *out_b;
} sige_unet;

/* A UNet of this layout and these norms, its sparse settings from sp and
 * threshold, with all its tensors declared into l; NULL with an error
 * naming the attention block whose channels do not split into heads. */
sige_unet *sige_unet_new(sige_param_list *l, const sige_unet_layout *lay,
                         const sige_unet_norms *norms, const sige_sparse_config *sp,
                         int sparse_threshold, GError **error);
/* The class's free: clears and frees a sige_unet. */
void sige_unet_free(void *u);
/* The class's input shape and lowest level of an image_size square UNet of
 * n_levels levels. */
void sige_unet_input_shape(int in_ch, int image_size, int64_t shape[4]);
int sige_unet_lowest_level(int image_size, int n_levels);

/* The input_shape and lowest_level class callbacks of a UNet whose config
 * type T names in_ch, image_size and n_ch_mult: a macro, since the DDPM and
 * PD configs are distinct public types that only name these fields alike. */
#define SIGE_UNET_GEOMETRY_CALLBACKS(prefix, T)                            \
  static void prefix##_input_shape(const void *config, int64_t shape[4]) { \
    const T *c = config;                                                   \
    sige_unet_input_shape(c->in_ch, c->image_size, shape);                 \
  }                                                                        \
  static void prefix##_lowest_level(const void *config, int *h, int *w) {  \
    const T *c = config;                                                   \
    *h = *w = sige_unet_lowest_level(c->image_size, c->n_ch_mult);         \
  }

/* The describe lines both UNets start with: width and levels. */
void sige_unet_describe_levels(GString *out, int ch, const int *ch_mult, int n_ch_mult,
                               int num_res_blocks, const int *attn_res, int n_attn_res);
/* The describe lines both UNets end with: channels and image size. */
void sige_unet_describe_io(GString *out, int in_ch, int out_ch, int image_size);
/* After loading: the DDPM downsample convs pad only bottom and right. */
void sige_unet_finish(sige_unet *u);
void sige_unet_clear(sige_unet *u);
/* The whole UNet in the pass's mode; t_in is the value put into the
 * sinusoidal embedding (a timestep, or the PD model's transformed log-SNR). */
gboolean sige_unet_forward(const void *u, sige_pass *pass, const sige_tensor *x, float t_in,
                           sige_tensor **out, GError **error);

/* The levels of an ermongroup-style checkpoint from its key names and
 * shapes: ch_mult from each level's first block, num_res_blocks from level
 * 0, and the levels with an attention key "down.<i>.attn.0.<attn_key>".
 * FALSE (the error naming the file and `what`) when there are none. */
gboolean sige_unet_infer_levels(const sige_weights *w, const char *path, const char *what, int ch,
                                int image_size, const char *attn_key, int *ch_mult,
                                int *n_ch_mult, int *num_res_blocks, int *attn_res,
                                int *n_attn_res, GError **error);
