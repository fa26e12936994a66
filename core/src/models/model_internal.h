/* Shared pieces of the model implementations (not public). */
#pragma once
#include "sige/model.h"
#include "../engine/run.h"

typedef struct spade_model spade_model;
typedef struct ddpm_model ddpm_model;
typedef struct pd_model pd_model;
typedef struct gancomp_model gancomp_model;

struct sige_model {
  sige_model_kind kind;
  union {
    sige_spade_config spade;
    sige_ddpm_config ddpm;
    sige_pd_config pd;
    sige_gancomp_config gancomp;
  } cfg;
  spade_model *spade;
  ddpm_model *ddpm;
  pd_model *pd;
  gancomp_model *gancomp;
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

spade_model *sige_spade_build(const sige_spade_config *cfg, const sige_weights *w, GError **error);
void sige_spade_free(spade_model *m);
gboolean sige_spade_forward(const spade_model *m, sige_run *run, const sige_tensor *seg,
                            sige_tensor **out, GError **error);

ddpm_model *sige_ddpm_build(const sige_ddpm_config *cfg, const sige_weights *w, GError **error);
void sige_ddpm_free(ddpm_model *m);
gboolean sige_ddpm_forward(const ddpm_model *m, sige_run *run, const sige_tensor *x, float t,
                           sige_tensor **out, GError **error);

pd_model *sige_pd_build(const sige_pd_config *cfg, const sige_weights *w, GError **error);
void sige_pd_free(pd_model *m);
/* logsnr: the log-SNR of x's noise level (the model's time input). */
gboolean sige_pd_forward(const pd_model *m, sige_run *run, const sige_tensor *x, float logsnr,
                         sige_tensor **out, GError **error);
gancomp_model *sige_gancomp_build(const sige_gancomp_config *cfg, const sige_weights *w,
                                  GError **error);
void sige_gancomp_free(gancomp_model *m);
gboolean sige_gancomp_forward(const gancomp_model *m, sige_run *run, const sige_tensor *seg,
                              sige_tensor **out, GError **error);

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
/* One forward of the model in the run's mode. */
gboolean sige_model_run(const sige_model *m, sige_run *run, const sige_tensor *input, float t,
                        sige_tensor **out, GError **error);
