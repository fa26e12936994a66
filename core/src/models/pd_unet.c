/* The Progressive-Distillation UNet of the published SIGE code
 * (diffusion/models/pd_arch): its config, parameter list and forward on the
 * shared UNet blocks.
 *
 * Differences from the DDPM UNet:
 *   - downsampling and upsampling are residual blocks that resample inside
 *     (2x2 average pooling / nearest x2 applied to both the block input and
 *     the activated first norm, before conv1);
 *   - the time input is the log-SNR ("inv_cos": atan(exp(-logsnr / 2)) /
 *     (pi / 2), times 1000, into the sinusoidal embedding), and each block
 *     modulates after its second norm: h * (1 + scale) + shift, with scale
 *     and shift from one linear layer on swish(temb);
 *   - multi-head attention with a fused qkv 1x1 conv (heads of head_dim);
 *   - 2 * in_ch outputs (an x and an eps prediction).
 *
 * Sparse mode as the published sige_unet.py: a block is sparse when its
 * input resolution is at least sparse_resolution_threshold (for a resampling
 * block that is the resolution before resampling, so the down block of the
 * 64x64 level runs its convolutions sparsely at 32x32).  Every normalisation
 * is frozen by the full pass; the modulation is folded into the frozen
 * scale/shift of the second norm.  Attention, conv_in, the final norm (fresh
 * statistics) and conv_out are dense.  The published PD code keys the
 * attention norms' frozen statistics per channel, unlike its DDPM UNet. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"
#include "ermongroup_unet.h"

void sige_pd_config_init(sige_pd_config *c) {
  /* diffusion/configs/church_pd128-sige.yml */
  static const sige_unet_defaults d = {
      .ch = 64, .ch_mult = {1, 2, 4, 6, 8}, .n_ch_mult = 5, .num_res_blocks = 3,
      .attn_resolutions = {8, 16, 32}, .n_attn_resolutions = 3, .in_ch = 3, .out_ch = 6,
      .image_size = 128, .diff_eps = 0.02f, .mask_dilate_radius = 2};
  SIGE_UNET_CONFIG_INIT(c, &d);
  c->head_dim = 64;
  c->temb_ch = 768;
}

static void *pd_declare(const void *config, sige_param_list *l, GError **error) {
  const sige_pd_config *cfg = config;
  if (cfg->n_ch_mult < 1 || cfg->n_ch_mult > 8 || cfg->ch < 1 || cfg->num_res_blocks < 1 ||
      cfg->image_size < 1 || cfg->image_size % (1 << (cfg->n_ch_mult - 1)) != 0 ||
      cfg->groupnorm_groups < 1 || cfg->temb_ch < 1 || cfg->ch % 2 || cfg->ch < 4 ||
      cfg->in_ch < 1 || cfg->out_ch < 1) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "PD UNet config: ch %d, %d levels, num_res_blocks %d, image_size %d, temb_ch %d "
                "out of range",
                cfg->ch, cfg->n_ch_mult, cfg->num_res_blocks, cfg->image_size, cfg->temb_ch);
    return NULL;
  }
  const sige_unet_norms norms = {"PD UNet", SIGE_UNET_TEMB_SCALE_SHIFT, cfg->groupnorm_groups,
                                 cfg->groupnorm_eps, FALSE, FALSE};
  const sige_unet_layout lay = {
      .ch = cfg->ch, .n_levels = cfg->n_ch_mult, .num_res_blocks = cfg->num_res_blocks,
      .in_ch = cfg->in_ch, .out_ch = cfg->out_ch, .image_size = cfg->image_size,
      .temb_ch = cfg->temb_ch, .ch_mult = cfg->ch_mult, .attn_res = cfg->attn_resolutions,
      .n_attn_res = cfg->n_attn_resolutions, .heads = TRUE, .head_dim = cfg->head_dim,
      .num_heads = cfg->num_heads, .temb_out_mult = 2, .resample_blocks = TRUE,
      .mid_sparse_by_res = TRUE};
  return sige_unet_new(l, &lay, &norms, &cfg->sparse, cfg->sparse_resolution_threshold, error);
}

/* logsnr: the log-SNR of x's noise level, through "inv_cos" (the published
 * float32 maths, clipped to [-20, 20]) into the sinusoidal embedding. */
static gboolean pd_forward(const void *impl, sige_pass *pass, const sige_tensor *x, float logsnr,
                           sige_tensor **out, GError **error) {
  const float ls = fminf(fmaxf(logsnr, -20.0f), 20.0f);
  const float u = atanf(expf(-0.5f * ls)) / (float)(0.5 * G_PI);
  return sige_unet_forward(impl, pass, x, u * 1000.0f, out, error);
}

SIGE_UNET_GEOMETRY_CALLBACKS(pd, sige_pd_config)

/* The DDPM naming with a fused attention qkv (in the middle block always). */
static gboolean pd_recognise(const sige_weights *w) {
  return sige_weights_contains(w, "conv_in.weight") &&
         sige_weights_contains(w, "mid.attn_1.qkv.weight");
}

/* Widths from the shapes, head size and image size from metadata
 * ("sige.head_dim", "sige.image_size") or the published defaults. */
static gboolean pd_infer(const sige_weights *w, const char *path, void *config, GError **error) {
  sige_pd_config *c = config;
  sige_pd_config_init(c);
  const sige_indexed_shape cin = sige_shape_of(w, "conv_in.weight");
  const sige_indexed_shape cout = sige_shape_of(w, "conv_out.weight");
  const sige_indexed_shape temb = sige_shape_of(w, "temb.dense.0.weight");
  if (!cin.found || cin.ndim != 4 || !cout.found || cout.ndim != 4 || !temb.found ||
      temb.ndim != 2) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: a PD UNet needs 4-D 'conv_in.weight', 'conv_out.weight' and a 2-D "
                "'temb.dense.0.weight'", path);
    return FALSE;
  }
  c->ch = (int)cin.shape[0];
  c->in_ch = (int)cin.shape[1];
  c->out_ch = (int)cout.shape[0];
  c->temb_ch = (int)temb.shape[0];
  c->image_size = sige_meta_int(w, "sige.image_size", c->image_size);
  c->head_dim = sige_meta_int(w, "sige.head_dim", c->head_dim);
  return sige_unet_infer_levels(w, path, "PD UNet", c->ch, c->image_size, "qkv.weight",
                                c->ch_mult, &c->n_ch_mult, &c->num_res_blocks,
                                c->attn_resolutions, &c->n_attn_resolutions, error);
}

static void pd_describe(const void *config, GString *out) {
  const sige_pd_config *d = config;
  sige_unet_describe_levels(out, d->ch, d->ch_mult, d->n_ch_mult, d->num_res_blocks,
                            d->attn_resolutions, d->n_attn_resolutions);
  if (d->head_dim > 0)
    sige_describe_line(out, "head_dim", "%d", d->head_dim);
  else
    sige_describe_line(out, "num_heads", "%d", d->num_heads);
  sige_describe_line(out, "temb_ch", "%d", d->temb_ch);
  sige_unet_describe_io(out, d->in_ch, d->out_ch, d->image_size);
}

const sige_model_class sige_pd_class = {
    .kind = SIGE_MODEL_PD_UNET,
    .name = "pd-unet",
    .config_size = sizeof(sige_pd_config),
    .sparse_offset = offsetof(sige_pd_config, sparse),
    .declare = pd_declare,
    .free = sige_unet_free,
    .forward = pd_forward,
    .input_shape = pd_input_shape,
    .lowest_level = pd_lowest_level,
    .recognise = pd_recognise,
    .infer = pd_infer,
    .describe = pd_describe,
};
