/* GauGAN's SPADE generator (NVlabs/SPADE key names): its config, parameter
 * list and forward on the shared SPADE blocks. */
#include <stddef.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"
#include "spade_blocks.h"

void sige_spade_config_init(sige_spade_config *c) {
  memset(c, 0, sizeof *c);
  c->ngf = 64;
  c->label_nc = 35;
  c->contain_instance = TRUE;
  c->crop_size = 512;
  c->aspect_ratio = 2.0;
  c->num_upsampling_layers = 6;
  c->batchnorm_eps = 1e-5f;
  c->num_sparse_layers = 5;
  sige_sparse_config_defaults(&c->sparse, 1e-3f, 1, 2);
}

static const char *const block_names[8] = {"head_0", "G_middle_0", "G_middle_1", "up_0",
                                           "up_1",   "up_2",       "up_3",       "up_4"};

static void *spade_declare(const void *config, sige_param_list *l, GError **error) {
  const sige_spade_config *cfg = config;
  if (cfg->num_upsampling_layers < 5 || cfg->num_upsampling_layers > 7 || cfg->ngf < 2 ||
      cfg->label_nc < 1 || cfg->crop_size < 1 || !(cfg->aspect_ratio > 0)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "SPADE config: num_upsampling_layers %d (expected 5, 6 or 7), ngf %d, label_nc %d, "
                "crop_size %d, aspect_ratio %g out of range",
                cfg->num_upsampling_layers, cfg->ngf, cfg->label_nc, cfg->crop_size,
                cfg->aspect_ratio);
    return NULL;
  }
  const int nf = cfg->ngf;
  const gboolean most = cfg->num_upsampling_layers == 7;
  const int fins[8] = {16 * nf, 16 * nf, 16 * nf, 16 * nf, 8 * nf, 4 * nf, 2 * nf, nf};
  const int fouts[8] = {16 * nf, 16 * nf, 16 * nf, 8 * nf, 4 * nf, 2 * nf, nf, nf / 2};
  sige_spade_generator *g = sige_spade_generator_new(cfg, "SPADE generator",
                                                     SIGE_SPADE_NORM_CONV, 0.0f, most ? 8 : 7,
                                                     error);
  if (!g) return NULL;
  sige_params_conv(l, &g->fc, 16 * nf, g->lat.semantic_nc, 3, 1, 1, TRUE, "fc");
  for (int i = 0; i < g->n_blocks; i++)
    sige_spade_block_declare(l, g, i, block_names[i], fins[i], MIN(fins[i], fouts[i]), fouts[i],
                             2 * nf, fins[i] != fouts[i]);
  sige_params_conv(l, &g->conv_img, 3, most ? nf / 2 : nf, 3, 1, 1, TRUE, "conv_img");
  return g;
}

static void spade_input_shape(const void *config, int64_t shape[4]) {
  sige_spade_input_shape(config, shape);
}

static void spade_lowest_level(const void *config, int *h, int *w) {
  sige_spade_lowest_level(config, h, w);
}

static gboolean spade_recognise(const sige_weights *w) {
  return sige_weights_contains(w, "fc.weight") && sige_weights_contains(w, "conv_img.weight");
}

static gboolean spade_infer(const sige_weights *w, const char *path, void *config,
                            GError **error) {
  sige_spade_config *c = config;
  sige_spade_config_init(c);
  if (!sige_spade_infer_common(w, path, c, error)) return FALSE;
  c->num_upsampling_layers = sige_weights_contains(w, "up_4.conv_0.bias") ? 7 : 6;
  c->num_upsampling_layers = sige_meta_int(w, "sige.num_upsampling_layers", c->num_upsampling_layers);
  return TRUE;
}

static void spade_describe(const void *config, GString *out) {
  sige_spade_describe_common(config, out);
}

const sige_model_class sige_spade_class = {
    .kind = SIGE_MODEL_SPADE,
    .name = "spade-generator",
    .config_size = sizeof(sige_spade_config),
    .sparse_offset = offsetof(sige_spade_config, sparse),
    .declare = spade_declare,
    .finish = sige_spade_generator_finish,
    .free = sige_spade_generator_free,
    .forward = sige_spade_generator_forward,
    .input_shape = spade_input_shape,
    .lowest_level = spade_lowest_level,
    .recognise = spade_recognise,
    .infer = spade_infer,
    .describe = spade_describe,
};
