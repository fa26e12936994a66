/* A model class: what struct sige_model needs from one architecture.  A
 * model is a class, a copy of its config and the class's implementation;
 * model.c dispatches through the class and knows no architecture. */
#pragma once
#include "sige/model.h"
#include "../engine/pass.h"

typedef struct sige_model_class {
  sige_model_kind kind;
  const char *name; /* sige_model_kind_name */
  size_t config_size;
  size_t sparse_offset; /* offsetof the config's sige_sparse_config */
  /* Checks cfg and allocates the implementation's structure, declaring every
   * checkpoint tensor it reads (where each goes) into l; loads nothing.
   * Errors name the config field. */
  void *(*declare)(const void *cfg, sige_param_list *l, GError **error);
  /* After the list is loaded: the fusions and settings the checkpoint does
   * not hold.  NULL when there are none. */
  gboolean (*finish)(void *impl, GError **error);
  void (*free)(void *impl);
  /* One forward in the pass's mode (dense, recording or sparse). */
  gboolean (*forward)(const void *impl, sige_pass *pass, const sige_tensor *input, float t,
                      sige_tensor **out, GError **error);
  void (*input_shape)(const void *cfg, int64_t shape[4]);
  /* The size of the lowest level: the mask pyramid's default stop size. */
  void (*lowest_level)(const void *cfg, int *h, int *w);
  /* The size of the difference mask when it is not the input's (the SD
   * VAE decoder's input is the latent, its masks the image's); NULL: the
   * input's. */
  void (*mask_shape)(const void *cfg, int *h, int *w);
  /* Whether a (canonicalised) weight table is this class's checkpoint, and
   * its config inferred from the keys, shapes and metadata. */
  gboolean (*recognise)(const sige_weights *w);
  gboolean (*infer)(const sige_weights *w, const char *path, void *cfg, GError **error);
  void (*describe)(const void *cfg, GString *out);
} sige_model_class;

extern const sige_model_class sige_spade_class, sige_gancomp_class, sige_ddpm_class,
    sige_pd_class, sige_clip_text_class, sige_sd_unet_class, sige_sd_vae_encoder_class,
    sige_sd_vae_decoder_class;

/* One "  name  value" line of sige_model_describe_settings. */
void sige_describe_line(GString *out, const char *name, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void sige_describe_ints(GString *out, const char *name, const int *v, int n);
/* An int from the weights' metadata, or def. */
int sige_meta_int(const sige_weights *w, const char *key, int def);
/* A tensor's shape as the weights index holds it: what `infer` reads, so
 * that recognising a checkpoint converts no tensor data. */
typedef struct {
  gboolean found;
  int ndim;
  int64_t shape[SIGE_MAX_DIMS];
} sige_indexed_shape;
sige_indexed_shape sige_shape_of(const sige_weights *w, const char *name);
