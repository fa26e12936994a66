/* Shared pieces of the model implementations (not public). */
#pragma once
#include "sige/model.h"
#include "../engine/pass.h"

#include "model_class.h"

struct sige_model {
  const sige_model_class *cls;
  void *cfg;  /* a copy of the class's config */
  void *impl; /* the class's implementation */
  size_t weight_bytes; /* what the parameter list loaded (sige_model_weight_bytes) */
};

/* Loading helpers: errors name the tensor. */
gboolean sige_load_conv(const sige_weights *w, const char *prefix, int cout, int cin, int k,
                        int stride, int pad, gboolean bias, sige_conv_layer *out, GError **error);
/* Concatenates convs along their output channels (all with the same input,
 * kernel and padding), taking ownership of their tensors. */
gboolean sige_conv_concat(sige_conv_layer *parts, int n, sige_conv_layer *out, GError **error);
void sige_conv_layer_clear(sige_conv_layer *c);
sige_tensor *sige_load_vector(const sige_weights *w, const char *name, int n, GError **error);
sige_tensor *sige_load_matrix(const sige_weights *w, const char *name, int rows, int cols,
                              GError **error);
/* A norm's "<prefix>.weight" and "<prefix>.bias", c floats each. */
gboolean sige_load_norm(const sige_weights *w, const char *prefix, int c, sige_tensor **g,
                        sige_tensor **b, GError **error);
/* Channel concatenation [a, b] as a new dense float32 tensor (either may be
 * an F16 cache view). */
sige_tensor *sige_concat_dense(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b,
                               GError **error);

/* The sparse parameters of a model: difference threshold, dilation radius,
 * and the mask pyramid's stop size, dilation and threshold. */
typedef struct {
  float diff_eps;
  int dilate_radius;
  int min_h, min_w;
  int pyramid_dilation;
  float pyramid_threshold;
} sige_sparse_params;
void sige_model_sparse_params(const sige_model *m, sige_sparse_params *p);
/* The size of the model's difference mask (the input's unless the class
 * says otherwise). */
void sige_model_mask_shape(const sige_model *m, int *h, int *w);
/* The sparse settings every published model shares (block sizes 6 and 4,
 * pyramid threshold 0.3), with the ones it tunes; pyramid stop size 0. */
void sige_sparse_config_defaults(sige_sparse_config *s, float diff_eps, int mask_dilate_radius,
                                 int pyramid_dilation);
/* One forward of the model in the pass's mode. */
gboolean sige_model_pass(const sige_model *m, sige_pass *pass, const sige_tensor *input, float t,
                        sige_tensor **out, GError **error);
