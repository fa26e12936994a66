/* Blocks of the diffusion UNets (DDPM, PD; next the Stable Diffusion UNet
 * and VAE): residual block, attention, up/down sampling and timestep
 * embedding, each declared into a parameter list and run through the
 * one-forward-three-passes primitives of pass.h (dense, recording and sparse
 * passes).  The ermongroup level layout built from them is in
 * ermongroup_unet.h. */
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
  /* statistics from the current input in every mode, never frozen or
   * recorded (SD's middle block: plain ResBlocks in the published sparse
   * UNet) */
  gboolean fresh_stats;
} sige_unet_norms;

typedef enum { SIGE_UNET_RESAMPLE_NONE, SIGE_UNET_RESAMPLE_DOWN, SIGE_UNET_RESAMPLE_UP } sige_unet_resample;

typedef struct {
  int cin, cout;
  sige_unet_resample resample; /* resampling inside the block (PD) */
  sige_tensor *n1_g, *n1_b, *n2_g, *n2_b;
  sige_conv_layer conv1, conv2, nin; /* nin.weight NULL when cin == cout */
  sige_tensor *temb_w, *temb_b;      /* [cout or 2 cout, temb_ch] */
} sige_unet_resblock;

/* The key names of a residual block's parts under its prefix. */
typedef struct {
  const char *norm1, *conv1, *temb, *norm2, *conv2, *shortcut;
} sige_unet_resblock_names;
/* ermongroup (DDPM, PD): norm1, conv1, temb_proj, norm2, conv2, nin_shortcut */
extern const sige_unet_resblock_names sige_unet_names_ermongroup;
/* openaimodel (Stable Diffusion): in_layers.0, in_layers.2, emb_layers.1,
 * out_layers.0, out_layers.3, skip_connection */
extern const sige_unet_resblock_names sige_unet_names_openai;

/* "<p>.norm1", conv1, norm2, conv2, temb_proj (temb_out rows), nin_shortcut. */
void sige_unet_resblock_declare(sige_param_list *l, sige_unet_resblock *b, const char *p, int cin,
                                int cout, int temb_ch, int temb_out, sige_unet_resample resample);
/* The same block under other key names. */
void sige_unet_resblock_declare_named(sige_param_list *l, sige_unet_resblock *b,
                                      const sige_unet_resblock_names *names, const char *p,
                                      int cin, int cout, int temb_ch, int temb_out,
                                      sige_unet_resample resample);
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
  gboolean ldm; /* the openaimodel sinusoid ([cos, sin], f_i over half), else DDPM's */
  sige_tensor *w0, *b0, *w1, *b1;
} sige_unet_temb;
void sige_unet_temb_declare(sige_param_list *l, sige_unet_temb *e, int ch, int temb_ch);
/* Stable Diffusion's: "time_embed.0", "time_embed.2" (a SiLU between; the
 * blocks' emb_layers apply SiLU first, as DDPM's temb_proj of swish(temb)),
 * and the openaimodel sinusoid. */
void sige_unet_temb_declare_ldm(sige_param_list *l, sige_unet_temb *e, const char *prefix, int ch,
                                int temb_ch);
void sige_unet_temb_clear(sige_unet_temb *e);

/* The spatial transformer of Stable Diffusion 1.x (ldm SpatialTransformer,
 * `legacy` false): GroupNorm (its own eps), proj_in 1x1, `depth` basic
 * blocks on the H * W tokens (self-attention, cross-attention over the
 * context tokens, GEGLU feed-forward, each after its LayerNorm and added
 * back), proj_out 1x1, plus the input. */
typedef struct {
  sige_tensor *n1_g, *n1_b, *n2_g, *n2_b, *n3_g, *n3_b;
  sige_tensor *q1, *k1, *v1, *o1_w, *o1_b; /* self-attention (q, k, v without bias) */
  sige_tensor *q2, *k2, *v2, *o2_w, *o2_b; /* cross-attention: k, v [inner, context_dim] */
  sige_tensor *ff1_w, *ff1_b, *ff2_w, *ff2_b; /* ff.net.0.proj [2 ff, inner], ff.net.2 */
} sige_unet_tblock;

typedef struct {
  int c, inner, heads, depth, context_dim, ff;
  float ln_eps;
  sige_unet_norms norm; /* the GroupNorm "<p>.norm" (SD: 32 groups, eps 1e-6) */
  sige_tensor *n_g, *n_b;
  sige_conv_layer proj_in, proj_out;
  sige_unet_tblock *blocks;
} sige_unet_transformer;

/* "<p>.norm", proj_in, transformer_blocks.<i>.{norm1, attn1, norm2, attn2,
 * norm3, ff}, proj_out; inner = c (SD 1.x: heads * head_dim = c); ff the
 * GEGLU's hidden width.  FALSE when c does not split into heads. */
gboolean sige_unet_transformer_declare(sige_param_list *l, sige_unet_transformer *t,
                                       const char *p, int c, int heads, int depth,
                                       int context_dim, int ff, const sige_unet_norms *norm,
                                       float ln_eps, GError **error);
void sige_unet_transformer_clear(sige_unet_transformer *t);
/* x + transformer(x, context): context [tokens, context_dim] rows on the
 * pass's backend.  With `sparse` (and g, its 1x1 block geometry) the
 * published sparse form: the recording pass records the proj_in map and
 * the output; a sparse pass gathers the active blocks of g (frozen GroupNorm
 * statistics), takes queries from their tokens only, self-attention keys and
 * values from norm1 of the whole proj_in map (the cached one with the active
 * blocks overwritten), cross-attention keys and values from the context
 * (what the published code caches: they depend on nothing else), and
 * scatters proj_out + x back.  Without `sparse`: dense, the GroupNorm
 * frozen in sparse passes (SD's middle block). */
sige_tensor *sige_unet_transformer_forward(const sige_unet_transformer *t,
                                           const sige_block_geometry *g, sige_pass *pass,
                                           gboolean sparse, const sige_tensor *x,
                                           const sige_tensor *context, GError **error);

/* The block geometries of a UNet's sparse passes: 3x3 convs, 1x1 shortcuts,
 * stride-2 downsample convs. */
typedef struct {
  sige_block_geometry main, shortcut, down;
} sige_unet_geometry;

/* Fresh statistics of a GroupNorm as a per-channel affine (scale, shift),
 * with the time embedding temb (NULL, or a block's projection) added or
 * modulating as n->temb_mode says; FALSE when the channels do not split
 * into the groups. */
gboolean sige_unet_norm_fresh(const sige_unet_norms *n, sige_pass *pass, const sige_tensor *x,
                              const sige_tensor *gamma, const sige_tensor *beta,
                              const float *temb, float *scale, float *shift, GError **error);

/* One residual block on x (or on the channel concatenation [x, skip]) in
 * the pass's mode, sparse when `sparse` and the pass is; temb: the block's
 * sige_unet_temb_proj. */
sige_tensor *sige_unet_resblock_forward(const sige_unet_norms *n, const sige_unet_resblock *b,
                                        const sige_unet_geometry *geo, sige_pass *pass,
                                        gboolean sparse, const sige_tensor *x,
                                        const sige_tensor *skip, const float *temb,
                                        GError **error);
/* Attention: dense in every mode, its norm's statistics frozen in sparse
 * passes. */
sige_tensor *sige_unet_attn_forward(const sige_unet_norms *n, const sige_unet_attn *a,
                                    sige_pass *pass, const sige_tensor *x, GError **error);
/* The VAE's middle attention (ldm SIGEAttnBlock, single head through q, k,
 * v) in any mode: its norm's statistics frozen in sparse passes, the
 * queries of the active blocks of g (1x1, no padding) against keys and
 * values scattered into their full maps (two cache slots), the output
 * scattered onto x. */
sige_tensor *sige_unet_attn_blocks_forward(const sige_unet_norms *n, const sige_unet_attn *a,
                                           const sige_block_geometry *g, sige_pass *pass,
                                           const sige_tensor *x, GError **error);
/* A resampling conv of geometry g: stride-2 downsample, or (up) nearest x2
 * then conv. */
sige_tensor *sige_unet_resample_conv_forward(const sige_conv_layer *conv,
                                             const sige_block_geometry *g, sige_pass *pass,
                                             gboolean sparse, const sige_tensor *x, gboolean up,
                                             GError **error);
/* swish(MLP(sinusoid(t_in))) as a new [1, temb_ch] tensor. */
sige_tensor *sige_unet_temb_forward(const sige_unet_temb *e, sige_pass *pass, float t_in,
                                    GError **error);
/* A block's temb_proj of it (g_free the result). */
float *sige_unet_temb_proj(sige_pass *pass, const sige_tensor *temb, const sige_unet_resblock *b,
                           GError **error);
