/* Blocks of the diffusion UNets (DDPM, PD; next the Stable Diffusion UNet
 * and VAE): residual block, attention, up/down sampling, timestep embedding
 * and the ermongroup level layout, each declared into a parameter list and
 * run through the one-forward-three-passes primitives of run.h. */
#pragma once
#include "param_list.h"

/* How a UNet normalises and injects its time embedding. */
typedef enum {
  /* temb_proj [cout] is added before norm2 (DDPM); every GroupNorm folds its
   * statistics from double per-channel moments, the offset included */
  SIGE_UNET_TEMB_ADD,
  /* temb_proj [2 cout] modulates after norm2: h * (1 + scale) + shift (PD);
   * every GroupNorm is sige_group_norm_affine */
  SIGE_UNET_TEMB_SCALE_SHIFT,
} sige_unet_temb_mode;

typedef struct {
  const char *name; /* "DDPM UNet", "PD UNet": errors start with it */
  sige_unet_temb_mode temb_mode;
  int groups;
  float eps;
  /* apply channel 0's frozen attention-norm statistics to every channel in
   * sparse passes (a bug of the published sparse DDPM UNet, see ddpm_unet.c) */
  gboolean attention_quirk;
} sige_unet_norms;

typedef enum { SIGE_UNET_RESAMPLE_NONE, SIGE_UNET_RESAMPLE_DOWN, SIGE_UNET_RESAMPLE_UP } sige_unet_resample;

typedef struct {
  int cin, cout;
  sige_unet_resample resample; /* resampling inside the block (PD) */
  sige_tensor *n1_g, *n1_b, *n2_g, *n2_b;
  sige_conv_layer conv1, conv2, nin; /* nin.weight NULL when cin == cout */
  sige_tensor *temb_w, *temb_b;      /* [cout or 2 cout, temb_ch] */
} sige_unet_resblock;

/* "<p>.norm1", conv1, norm2, conv2, temb_proj (temb_out rows), nin_shortcut. */
void sige_unet_resblock_declare(sige_param_list *l, sige_unet_resblock *b, const char *p, int cin,
                                int cout, int temb_ch, int temb_out, sige_unet_resample resample);
void sige_unet_resblock_clear(sige_unet_resblock *b);

typedef struct {
  int heads, head_dim; /* 0: single-head attention through q, k, v */
  sige_tensor *n_g, *n_b;
  sige_conv_layer q, k, v; /* single head */
  sige_conv_layer qkv;     /* multi-head: [3 C, C, 1, 1] (q | k | v) */
  sige_conv_layer proj;
} sige_unet_attn;

/* heads 0: "<p>.norm", q, k, v, proj_out; else a fused "<p>.qkv". */
void sige_unet_attn_declare(sige_param_list *l, sige_unet_attn *a, const char *p, int c, int heads,
                            int head_dim);
void sige_unet_attn_clear(sige_unet_attn *a);

/* The time embedding MLP: "temb.dense.0" [temb_ch, ch] and "temb.dense.1". */
typedef struct {
  int ch, temb_ch;
  sige_tensor *w0, *b0, *w1, *b1;
} sige_unet_temb;
void sige_unet_temb_declare(sige_param_list *l, sige_unet_temb *e, int ch, int temb_ch);
void sige_unet_temb_clear(sige_unet_temb *e);

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
/* After loading: the DDPM downsample convs pad only bottom and right. */
void sige_unet_finish(sige_unet *u);
void sige_unet_clear(sige_unet *u);
/* The whole UNet in the run's mode; t_in is the value put into the
 * sinusoidal embedding (a timestep, or the PD model's transformed log-SNR). */
gboolean sige_unet_forward(const void *u, sige_run *run, const sige_tensor *x, float t_in,
                           sige_tensor **out, GError **error);

/* The levels of an ermongroup-style checkpoint from its key names and
 * shapes: ch_mult from each level's first block, num_res_blocks from level
 * 0, and the levels with an attention key "down.<i>.attn.0.<attn_key>".
 * FALSE (the error naming the file and `what`) when there are none. */
gboolean sige_unet_infer_levels(const sige_weights *w, const char *path, const char *what, int ch,
                                int image_size, const char *attn_key, int *ch_mult,
                                int *n_ch_mult, int *num_res_blocks, int *attn_res,
                                int *n_attn_res, GError **error);
