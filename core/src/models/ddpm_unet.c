/* The DDPM UNet (Ho et al.; ermongroup/ddim checkpoint names): its config,
 * parameter list and forward on the shared UNet blocks. */
#include <stddef.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"
#include "ermongroup_unet.h"

void sige_ddpm_config_init(sige_ddpm_config *c) {
  static const sige_unet_defaults d = {
      .ch = 128, .ch_mult = {1, 1, 2, 2, 4, 4}, .n_ch_mult = 6, .num_res_blocks = 2,
      .attn_resolutions = {16}, .n_attn_resolutions = 1, .in_ch = 3, .out_ch = 3,
      .image_size = 256, .diff_eps = 0.01f, .mask_dilate_radius = 5};
  SIGE_UNET_CONFIG_INIT(c, &d);
  c->resamp_with_conv = TRUE;
}

static void *ddpm_declare(const void *config, sige_param_list *l, GError **error) {
  const sige_ddpm_config *cfg = config;
  /* ch above 2^16 would overflow temb_ch = 4 ch below (sige_unet_new bounds the rest) */
  if (cfg->n_ch_mult < 1 || cfg->n_ch_mult > 8 || cfg->ch < 1 || cfg->ch > 65536 ||
      cfg->num_res_blocks < 1 ||
      cfg->image_size < 1 || (cfg->image_size >> (cfg->n_ch_mult - 1)) < 1 ||
      cfg->groupnorm_groups < 1) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "DDPM config: ch %d, %d levels, num_res_blocks %d, image_size %d out of range",
                cfg->ch, cfg->n_ch_mult, cfg->num_res_blocks, cfg->image_size);
    return NULL;
  }
  if (!cfg->resamp_with_conv) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "DDPM config: resamp_with_conv = false is not supported");
    return NULL;
  }
  const sige_unet_norms norms = {"DDPM UNet", SIGE_UNET_TEMB_ADD, cfg->groupnorm_groups,
                                 cfg->groupnorm_eps, cfg->published_attention_quirk, FALSE};
  const sige_unet_layout lay = {
      .ch = cfg->ch, .n_levels = cfg->n_ch_mult, .num_res_blocks = cfg->num_res_blocks,
      .in_ch = cfg->in_ch, .out_ch = cfg->out_ch, .image_size = cfg->image_size,
      .temb_ch = 4 * cfg->ch, .ch_mult = cfg->ch_mult, .attn_res = cfg->attn_resolutions,
      .n_attn_res = cfg->n_attn_resolutions, .temb_out_mult = 1, .upsample_always_sparse = TRUE};
  return sige_unet_new(l, &lay, &norms, &cfg->sparse, cfg->sparse_resolution_threshold, error);
}

static gboolean ddpm_finish(void *impl, GError **error) {
  (void)error;
  sige_unet_finish(impl);
  return TRUE;
}

SIGE_UNET_GEOMETRY_CALLBACKS(ddpm, sige_ddpm_config)

static gboolean ddpm_recognise(const sige_weights *w) {
  return sige_weights_contains(w, "conv_in.weight") &&
         sige_weights_contains(w, "temb.dense.0.weight");
}

static gboolean ddpm_infer(const sige_weights *w, const char *path, void *config,
                           GError **error) {
  sige_ddpm_config *c = config;
  sige_ddpm_config_init(c);
  const sige_indexed_shape cin = sige_shape_of(w, "conv_in.weight");
  const sige_indexed_shape cout = sige_shape_of(w, "conv_out.weight");
  if (!cin.found || cin.ndim != 4 || !cout.found || cout.ndim != 4) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: 'conv_in.weight' and 'conv_out.weight' must be 4-D", path);
    return FALSE;
  }
  c->ch = (int)cin.shape[0];
  c->in_ch = (int)cin.shape[1];
  c->out_ch = (int)cout.shape[0];
  c->image_size = sige_meta_int(w, "sige.image_size", 256);
  if (!sige_unet_infer_levels(w, path, "DDPM UNet", c->ch, c->image_size, "q.weight", c->ch_mult,
                              &c->n_ch_mult, &c->num_res_blocks, c->attn_resolutions,
                              &c->n_attn_resolutions, error))
    return FALSE;
  c->resamp_with_conv = sige_weights_contains(w, "down.0.downsample.conv.weight");
  return TRUE;
}

static void ddpm_describe(const void *config, GString *out) {
  const sige_ddpm_config *d = config;
  sige_unet_describe_levels(out, d->ch, d->ch_mult, d->n_ch_mult, d->num_res_blocks,
                            d->attn_resolutions, d->n_attn_resolutions);
  sige_unet_describe_io(out, d->in_ch, d->out_ch, d->image_size);
}

const sige_model_class sige_ddpm_class = {
    .kind = SIGE_MODEL_DDPM_UNET,
    .name = "ddpm-unet",
    .config_size = sizeof(sige_ddpm_config),
    .sparse_offset = offsetof(sige_ddpm_config, sparse),
    .declare = ddpm_declare,
    .finish = ddpm_finish,
    .free = sige_unet_free,
    .forward = sige_unet_forward, /* t: the timestep */
    .input_shape = ddpm_input_shape,
    .lowest_level = ddpm_lowest_level,
    .recognise = ddpm_recognise,
    .infer = ddpm_infer,
    .describe = ddpm_describe,
};
