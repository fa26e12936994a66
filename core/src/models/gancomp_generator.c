/* The GAN-Compression generator: the compressed ("sub-mobile") SPADE
 * generator of GAN Compression (gaugan/models/sub_mobile_spade_generators in
 * the published SIGE code; unfused checkpoint names): its config, parameter
 * list and forward on the shared SPADE blocks.
 *
 * It is the GauGAN generator with per-block widths taken from an 8-number
 * channel configuration c0_c1_..._c7 and a lighter SPADE norm:
 *   fc: semantic_nc -> 16*c0 (= ic);
 *   block i (head_0, G_middle_0, G_middle_1, up_0..up_3, multiplier
 *   16,16,16,8,4,2,1): channel = mult*c(i+1), hidden = 2*c(i+1);
 *   conv_0 ic -> channel, conv_1 channel -> ic (or -> channel with a learned
 *   1x1 shortcut ic -> channel, the up_* blocks), then ic = channel;
 *   each SPADE norm: BatchNorm (running statistics) of its input, and gamma,
 *   beta each a separable conv of the norm's mlp_shared activations:
 *   depthwise 3x3 (hidden -> hidden) + InstanceNorm without affine +
 *   pointwise 1x1 (hidden -> norm channels). */
#include <stddef.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"
#include "spade_blocks.h"

#define N_BLOCKS 7

void sige_gancomp_config_init(sige_gancomp_config *c) {
  memset(c, 0, sizeof *c);
  sige_spade_config_init(&c->base);
  /* the published compressed Cityscapes generator (GAN Compression) */
  const int published[8] = {32, 32, 32, 48, 32, 24, 24, 32};
  memcpy(c->channels, published, sizeof published);
  c->instancenorm_eps = 1e-5f;
}

gboolean sige_gancomp_parse_channels(const char *config_str, int channels[8], GError **error) {
  int v[8], n = 0;
  const char *p = config_str;
  while (p && *p && n < 9) {
    char *end = NULL;
    gint64 x = g_ascii_strtoll(p, &end, 10);
    if (end == p || x < 1 || x > 4096) break;
    if (n < 8) v[n] = (int)x;
    n++;
    p = end;
    if (*p == '_') p++;
    else if (*p) break;
  }
  if (!config_str || n != 8 || (p && *p) || config_str[strlen(config_str) - 1] == '_') {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "channel configuration \"%s\": expected 8 positive numbers joined by '_' "
                "(e.g. 32_32_32_48_32_24_24_32)",
                config_str ? config_str : "");
    return FALSE;
  }
  memcpy(channels, v, sizeof v);
  return TRUE;
}

static const char *const block_names[N_BLOCKS] = {"head_0", "G_middle_0", "G_middle_1", "up_0",
                                                  "up_1",   "up_2",       "up_3"};

static void *gancomp_declare(const void *config, sige_param_list *l, GError **error) {
  const sige_gancomp_config *cfg = config;
  const sige_spade_config *sc = &cfg->base;
  if (sc->num_upsampling_layers < 5 || sc->num_upsampling_layers > 6 || sc->label_nc < 1 ||
      sc->crop_size < 1 || !(sc->aspect_ratio > 0) || !(cfg->instancenorm_eps > 0)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "GAN-Compression generator config: num_upsampling_layers %d (expected 5 or 6: "
                "the published model has no \"most\" variant), label_nc %d, crop_size %d, "
                "aspect_ratio %g, instancenorm_eps %g out of range",
                sc->num_upsampling_layers, sc->label_nc, sc->crop_size, sc->aspect_ratio,
                cfg->instancenorm_eps);
    return NULL;
  }
  for (int i = 0; i < 8; i++)
    if (cfg->channels[i] < 1 || cfg->channels[i] > 4096) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  "GAN-Compression generator config: channels[%d] = %d out of range", i,
                  cfg->channels[i]);
      return NULL;
    }
  sige_spade_generator *g =
      sige_spade_generator_new(sc, "GAN-Compression generator", SIGE_SPADE_NORM_SEPARABLE,
                               cfg->instancenorm_eps, N_BLOCKS, error);
  if (!g) return NULL;
  const int mult[N_BLOCKS] = {16, 16, 16, 8, 4, 2, 1};
  int ic = 16 * cfg->channels[0];
  sige_params_conv(l, &g->fc, ic, g->lat.semantic_nc, 3, 1, 1, TRUE, "fc");
  for (int i = 0; i < N_BLOCKS; i++) {
    const int channel = mult[i] * cfg->channels[i + 1];
    const gboolean shortcut = i >= 3; /* fin != fout: the up_* blocks halve ngf multiples */
    sige_spade_block_declare(l, g, i, block_names[i], ic, channel, shortcut ? channel : ic,
                             2 * cfg->channels[i + 1], shortcut);
    if (shortcut) ic = channel;
  }
  sige_params_conv(l, &g->conv_img, 3, ic, 3, 1, 1, TRUE, "conv_img");
  return g;
}

static void gancomp_input_shape(const void *config, int64_t shape[4]) {
  sige_spade_input_shape(&((const sige_gancomp_config *)config)->base, shape);
}

static void gancomp_lowest_level(const void *config, int *h, int *w) {
  sige_spade_lowest_level(&((const sige_gancomp_config *)config)->base, h, w);
}

/* A SPADE generator whose norms have separable mlp_gamma convs. */
static gboolean gancomp_recognise(const sige_weights *w) {
  return sige_weights_contains(w, "fc.weight") && sige_weights_contains(w, "conv_img.weight") &&
         sige_weights_contains(w, "head_0.norm_0.mlp_gamma.conv.0.weight");
}

/* Its settings as for SPADE, the channel configuration from metadata or
 * from the widths (c0 = fc outputs / 16, and c(i+1) = half the hidden width
 * of block i's norm_0). */
static gboolean gancomp_infer(const sige_weights *w, const char *path, void *config,
                              GError **error) {
  sige_gancomp_config *c = config;
  sige_gancomp_config_init(c);
  if (!sige_spade_infer_common(w, path, &c->base, error)) return FALSE;
  c->base.ngf = sige_meta_int(w, "sige.ngf", 64);
  c->base.num_upsampling_layers = sige_meta_int(w, "sige.num_upsampling_layers", 6);
  const char *cs = sige_weights_metadata(w, "sige.config_str");
  if (cs) {
    if (!sige_gancomp_parse_channels(cs, c->channels, error)) {
      g_prefix_error(error, "%s: metadata sige.config_str: ", path);
      return FALSE;
    }
    return TRUE;
  }
  c->channels[0] = (int)sige_shape_of(w, "fc.weight").shape[0] / 16;
  for (int i = 0; i < N_BLOCKS; i++) {
    g_autofree char *k = g_strdup_printf("%s.norm_0.mlp_shared.0.weight", block_names[i]);
    const sige_indexed_shape t = sige_shape_of(w, k);
    if (!t.found || t.ndim != 4 || t.shape[0] % 2) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s: '%s' must be [2*c, semantic_nc, 3, 3] (the channel configuration comes "
                  "from it unless metadata sige.config_str gives it)",
                  path, k);
      return FALSE;
    }
    c->channels[i + 1] = (int)t.shape[0] / 2;
  }
  return TRUE;
}

static void gancomp_describe(const void *config, GString *out) {
  const sige_gancomp_config *c = config;
  sige_spade_describe_common(&c->base, out);
  sige_describe_line(out, "channels", "%d_%d_%d_%d_%d_%d_%d_%d", c->channels[0], c->channels[1],
                     c->channels[2], c->channels[3], c->channels[4], c->channels[5],
                     c->channels[6], c->channels[7]);
}

const sige_model_class sige_gancomp_class = {
    .kind = SIGE_MODEL_GANCOMP_SPADE,
    /* the kind name of the reference vectors' case.json */
    .name = "sub-mobile-spade-generator",
    .config_size = sizeof(sige_gancomp_config),
    .sparse_offset = offsetof(sige_gancomp_config, base.sparse),
    .declare = gancomp_declare,
    .finish = sige_spade_generator_finish,
    .free = sige_spade_generator_free,
    .forward = sige_spade_generator_forward,
    .input_shape = gancomp_input_shape,
    .lowest_level = gancomp_lowest_level,
    .recognise = gancomp_recognise,
    .infer = gancomp_infer,
    .describe = gancomp_describe,
};
