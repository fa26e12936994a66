/* Blocks of the SPADE generators (GauGAN and GAN-Compression): the latent
 * geometry, the SPADE residual block with its norms, and the generator body
 * (fc, blocks, conv_img), declared into a parameter list and run through
 * the pass.h primitives. */
#pragma once
#include "param_list.h"

/* The semantic input and the latent grid the generator starts from. */
typedef struct {
  int semantic_nc, sh, sw, out_h, out_w;
} sige_spade_latent;

/* The one check of the latent grid: 1 to 64 rows and columns (the forward
 * resamples the input onto it with fixed index arrays). */
gboolean sige_spade_latent_init(const sige_spade_config *c, const char *name,
                                sige_spade_latent *lat, GError **error);

/* gamma | beta of a SPADE norm from its mlp_shared activations. */
typedef enum {
  SIGE_SPADE_NORM_CONV,      /* mlp_gamma, mlp_beta: 3x3 convs (GauGAN) */
  SIGE_SPADE_NORM_SEPARABLE, /* depthwise 3x3, InstanceNorm, pointwise 1x1 (GAN-Compression) */
} sige_spade_norm_kind;

typedef struct {
  const char *name; /* "head_0", ... (a static string) */
  gboolean learned_shortcut, sparse, upsample_before;
  int fin, fmiddle, fout, hidden;
  int nc[3];                 /* channels of norm_0, norm_1, norm_s */
  sige_conv_layer shared[3]; /* loaded mlp_shared.0 of each norm, fused into mlp_shared */
  sige_conv_layer mlp_shared; /* semantic_nc -> hidden * (2|3), + ReLU */
  /* loaded gamma and beta convs (3x3, or the pointwise 1x1 of the separable
   * form), fused into gb: [gamma | beta] (groups 2 for the separable form) */
  sige_conv_layer gamma[3], beta[3], gb[3];
  sige_conv_layer dw_gamma[3], dw_beta[3]; /* the separable form's depthwise convs */
  sige_tensor *bn_mean[3], *bn_var[3];      /* BatchNorm running statistics */
  float *bn_scale[3], *bn_shift[3];         /* ... as a per-channel affine */
  sige_conv_layer conv_0, conv_1, conv_s;
} sige_spade_block;

typedef struct {
  const char *name; /* errors start with it */
  sige_spade_norm_kind norm_kind;
  int num_upsampling_layers, num_sparse_layers;
  float batchnorm_eps, instancenorm_eps;
  sige_spade_latent lat;
  int label_nc;
  gboolean contain_instance;
  sige_conv_layer fc, conv_img;
  sige_spade_block *blocks;
  int n_blocks;
  sige_block_geometry g_main, g_sc;
} sige_spade_generator;

/* A generator of n_blocks blocks (not yet declared) for this config, after
 * the one check of its latent grid. */
sige_spade_generator *sige_spade_generator_new(const sige_spade_config *c, const char *name,
                                               sige_spade_norm_kind norm_kind,
                                               float instancenorm_eps, int n_blocks,
                                               GError **error);
/* Block i, "<name>": conv_0 fin -> fmiddle, conv_1 fmiddle -> fout, the
 * learned 1x1 shortcut conv_s fin -> fout when learned_shortcut, and the
 * norms norm_0 (fin), norm_1 (fmiddle), norm_s (fin, with the shortcut). */
void sige_spade_block_declare(sige_param_list *l, sige_spade_generator *g, int i,
                              const char *name, int fin, int fmiddle, int fout, int hidden,
                              gboolean learned_shortcut);
/* After loading: the fusions and BatchNorm affines of every block; errors
 * name a negative variance. */
gboolean sige_spade_generator_finish(void *g, GError **error);
void sige_spade_generator_free(void *g);
/* The class's forward: seg the semantic map, t ignored. */
gboolean sige_spade_generator_forward(const void *g, sige_pass *pass, const sige_tensor *seg,
                                      float t, sige_tensor **out, GError **error);

/* What both generators share of the config: input shape, lowest level
 * (the latent), and the settings inferred from a checkpoint. */
void sige_spade_input_shape(const sige_spade_config *c, int64_t shape[4]);
void sige_spade_lowest_level(const sige_spade_config *c, int *h, int *w);
gboolean sige_spade_infer_common(const sige_weights *w, const char *path, sige_spade_config *c,
                                 GError **error);
void sige_spade_describe_common(const sige_spade_config *s, GString *out);
