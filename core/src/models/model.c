/* Public model API: construction, kind and width inference, dense forward. */
#include <stdlib.h>
#include <string.h>

#include "../buffer.h"
#include "model_internal.h"
#include "sige/error.h"

sige_model *sige_model_new_spade(const sige_spade_config *cfg, const sige_weights *w,
                                 GError **error) {
  spade_model *s = sige_spade_build(cfg, w, error);
  if (!s) return NULL;
  sige_model *m = g_new0(sige_model, 1);
  m->kind = SIGE_MODEL_SPADE;
  m->cfg.spade = *cfg;
  m->spade = s;
  return m;
}

sige_model *sige_model_new_ddpm(const sige_ddpm_config *cfg, const sige_weights *w,
                                GError **error) {
  ddpm_model *d = sige_ddpm_build(cfg, w, error);
  if (!d) return NULL;
  sige_model *m = g_new0(sige_model, 1);
  m->kind = SIGE_MODEL_DDPM_UNET;
  m->cfg.ddpm = *cfg;
  m->ddpm = d;
  return m;
}

sige_model *sige_model_new_pd(const sige_pd_config *cfg, const sige_weights *w, GError **error) {
  pd_model *d = sige_pd_build(cfg, w, error);
  if (!d) return NULL;
  sige_model *m = g_new0(sige_model, 1);
  m->kind = SIGE_MODEL_PD_UNET;
  m->cfg.pd = *cfg;
  m->pd = d;
  return m;
}

sige_model *sige_model_new_gancomp(const sige_gancomp_config *cfg, const sige_weights *w,
                                   GError **error) {
  gancomp_model *g = sige_gancomp_build(cfg, w, error);
  if (!g) return NULL;
  sige_model *m = g_new0(sige_model, 1);
  m->kind = SIGE_MODEL_GANCOMP_SPADE;
  m->cfg.gancomp = *cfg;
  m->gancomp = g;
  return m;
}

void sige_model_free(sige_model *m) {
  if (!m) return;
  sige_spade_free(m->spade);
  sige_ddpm_free(m->ddpm);
  sige_pd_free(m->pd);
  sige_gancomp_free(m->gancomp);
  g_free(m);
}

sige_model_kind sige_model_get_kind(const sige_model *m) { return m->kind; }

const char *sige_model_kind_name(sige_model_kind k) {
  switch (k) {
    case SIGE_MODEL_SPADE: return "spade-generator";
    case SIGE_MODEL_DDPM_UNET: return "ddpm-unet";
    case SIGE_MODEL_PD_UNET: return "pd-unet";
    case SIGE_MODEL_GANCOMP_SPADE: return "sub-mobile-spade-generator";
  }
  return "unknown";
}

const sige_spade_config *sige_model_spade_config(const sige_model *m) {
  if (m->kind == SIGE_MODEL_GANCOMP_SPADE) return &m->cfg.gancomp.base;
  return m->kind == SIGE_MODEL_SPADE ? &m->cfg.spade : NULL;
}
const sige_gancomp_config *sige_model_gancomp_config(const sige_model *m) {
  return m->kind == SIGE_MODEL_GANCOMP_SPADE ? &m->cfg.gancomp : NULL;
}
const sige_ddpm_config *sige_model_ddpm_config(const sige_model *m) {
  return m->kind == SIGE_MODEL_DDPM_UNET ? &m->cfg.ddpm : NULL;
}
const sige_pd_config *sige_model_pd_config(const sige_model *m) {
  return m->kind == SIGE_MODEL_PD_UNET ? &m->cfg.pd : NULL;
}

void sige_model_input_shape(const sige_model *m, int64_t shape[4]) {
  shape[0] = 1;
  if (sige_model_spade_config(m)) {
    const sige_spade_config *c = sige_model_spade_config(m);
    int sw = c->crop_size >> c->num_upsampling_layers;
    int sh = (int)(sw / c->aspect_ratio + 0.5);
    shape[1] = c->label_nc + (c->contain_instance ? 1 : 0);
    shape[2] = (int64_t)sh << c->num_upsampling_layers;
    shape[3] = (int64_t)sw << c->num_upsampling_layers;
  } else if (m->kind == SIGE_MODEL_PD_UNET) {
    shape[1] = m->cfg.pd.in_ch;
    shape[2] = shape[3] = m->cfg.pd.image_size;
  } else {
    const sige_ddpm_config *c = &m->cfg.ddpm;
    shape[1] = c->in_ch;
    shape[2] = shape[3] = c->image_size;
  }
}

gboolean sige_model_forward_dense(const sige_model *m, sige_ctx *ctx, const sige_tensor *input,
                                  float t, sige_tensor **out, GError **error) {
  sige_run run;
  sige_run_init_dense(&run, ctx);
  gboolean ok = sige_model_run(m, &run, input, t, out, error);
  sige_run_clear(&run);
  return ok;
}

/* ---- inference of the configuration from the weights ------------------ */
static int meta_int(const sige_weights *w, const char *key, int def) {
  const char *v = sige_weights_metadata(w, key);
  return v ? atoi(v) : def;
}

static gboolean infer_spade(const sige_weights *w, const char *path, sige_spade_config *c,
                            GError **error) {
  sige_spade_config_init(c);
  const sige_tensor *fc = sige_weights_get(w, "fc.weight");
  if (!fc || fc->ndim != 4 || fc->shape[0] % 16) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: 'fc.weight' must be [16*ngf, semantic_nc, 3, 3]", path);
    return FALSE;
  }
  c->ngf = (int)fc->shape[0] / 16;
  c->contain_instance = meta_int(w, "sige.contain_instance", 1) != 0;
  c->label_nc = (int)fc->shape[1] - (c->contain_instance ? 1 : 0);
  c->crop_size = meta_int(w, "sige.crop_size", 512);
  const char *ar = sige_weights_metadata(w, "sige.aspect_ratio");
  if (ar) c->aspect_ratio = g_ascii_strtod(ar, NULL);
  c->num_upsampling_layers = sige_weights_contains(w, "up_4.conv_0.bias") ? 7 : 6;
  c->num_upsampling_layers = meta_int(w, "sige.num_upsampling_layers", c->num_upsampling_layers);
  return TRUE;
}

/* The sub-mobile SPADE generator: its settings as for SPADE, the channel
 * configuration from metadata or from the widths (c0 = fc outputs / 16, and
 * c(i+1) = half the hidden width of block i's norm_0). */
static gboolean infer_gancomp(const sige_weights *w, const char *path, sige_gancomp_config *c,
                              GError **error) {
  sige_gancomp_config_init(c);
  if (!infer_spade(w, path, &c->base, error)) return FALSE;
  c->base.ngf = meta_int(w, "sige.ngf", 64);
  if (c->base.num_upsampling_layers > 6) c->base.num_upsampling_layers = 6;
  c->base.num_upsampling_layers = meta_int(w, "sige.num_upsampling_layers",
                                           c->base.num_upsampling_layers);
  const char *cs = sige_weights_metadata(w, "sige.config_str");
  if (cs) {
    if (!sige_gancomp_parse_channels(cs, c->channels, error)) {
      g_prefix_error(error, "%s: metadata sige.config_str: ", path);
      return FALSE;
    }
    return TRUE;
  }
  const char *blocks[7] = {"head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"};
  c->channels[0] = (int)sige_weights_get(w, "fc.weight")->shape[0] / 16;
  for (int i = 0; i < 7; i++) {
    g_autofree char *k = g_strdup_printf("%s.norm_0.mlp_shared.0.weight", blocks[i]);
    const sige_tensor *t = sige_weights_get(w, k);
    if (!t || t->ndim != 4 || t->shape[0] % 2) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s: '%s' must be [2*c, semantic_nc, 3, 3] (the channel configuration comes "
                  "from it unless metadata sige.config_str gives it)",
                  path, k);
      return FALSE;
    }
    c->channels[i + 1] = (int)t->shape[0] / 2;
  }
  return TRUE;
}

/* The levels of an ermongroup-style UNet from its key names and shapes:
 * ch_mult from each level's first block, num_res_blocks from level 0.
 * FALSE (with the error naming the file and `what`) when there are none. */
static gboolean infer_unet_levels(const sige_weights *w, const char *path, const char *what,
                                  int ch, int *ch_mult, int *n_ch_mult, int *num_res_blocks,
                                  GError **error) {
  *n_ch_mult = 0;
  for (int i = 0; i < 8; i++) {
    g_autofree char *k = g_strdup_printf("down.%d.block.0.conv1.weight", i);
    const sige_tensor *t = sige_weights_get(w, k);
    if (!t) break;
    ch_mult[(*n_ch_mult)++] = (int)t->shape[0] / ch;
  }
  *num_res_blocks = 0;
  for (int j = 0; j < 16; j++) {
    g_autofree char *k = g_strdup_printf("down.0.block.%d.conv1.weight", j);
    if (!sige_weights_contains(w, k)) break;
    (*num_res_blocks)++;
  }
  if (*n_ch_mult == 0 || *num_res_blocks == 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: no 'down.0.block.0.conv1.weight': not a %s checkpoint", path, what);
    return FALSE;
  }
  return TRUE;
}

static gboolean infer_ddpm(const sige_weights *w, const char *path, sige_ddpm_config *c,
                           GError **error) {
  sige_ddpm_config_init(c);
  const sige_tensor *cin = sige_weights_get(w, "conv_in.weight");
  const sige_tensor *cout = sige_weights_get(w, "conv_out.weight");
  if (!cin || cin->ndim != 4 || !cout || cout->ndim != 4) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: 'conv_in.weight' and 'conv_out.weight' must be 4-D", path);
    return FALSE;
  }
  c->ch = (int)cin->shape[0];
  c->in_ch = (int)cin->shape[1];
  c->out_ch = (int)cout->shape[0];
  if (!infer_unet_levels(w, path, "DDPM UNet", c->ch, c->ch_mult, &c->n_ch_mult,
                         &c->num_res_blocks, error))
    return FALSE;
  c->image_size = meta_int(w, "sige.image_size", 256);
  c->n_attn_resolutions = 0;
  for (int i = 0; i < c->n_ch_mult; i++) {
    g_autofree char *k = g_strdup_printf("down.%d.attn.0.q.weight", i);
    if (sige_weights_contains(w, k)) c->attn_resolutions[c->n_attn_resolutions++] = c->image_size >> i;
  }
  c->resamp_with_conv = sige_weights_contains(w, "down.0.downsample.conv.weight");
  return TRUE;
}

/* The PD UNet: the DDPM naming with fused attention qkv and resampling
 * residual blocks; widths from the shapes, head size and image size from
 * metadata ("sige.head_dim", "sige.image_size") or the published defaults. */
static gboolean infer_pd(const sige_weights *w, const char *path, sige_pd_config *c,
                         GError **error) {
  sige_pd_config_init(c);
  const sige_tensor *cin = sige_weights_get(w, "conv_in.weight");
  const sige_tensor *cout = sige_weights_get(w, "conv_out.weight");
  const sige_tensor *temb = sige_weights_get(w, "temb.dense.0.weight");
  if (!cin || cin->ndim != 4 || !cout || cout->ndim != 4 || !temb || temb->ndim != 2) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: a PD UNet needs 4-D 'conv_in.weight', 'conv_out.weight' and a 2-D "
                "'temb.dense.0.weight'", path);
    return FALSE;
  }
  c->ch = (int)cin->shape[0];
  c->in_ch = (int)cin->shape[1];
  c->out_ch = (int)cout->shape[0];
  c->temb_ch = (int)temb->shape[0];
  if (!infer_unet_levels(w, path, "PD UNet", c->ch, c->ch_mult, &c->n_ch_mult,
                         &c->num_res_blocks, error))
    return FALSE;
  c->image_size = meta_int(w, "sige.image_size", c->image_size);
  c->head_dim = meta_int(w, "sige.head_dim", c->head_dim);
  c->n_attn_resolutions = 0;
  for (int i = 0; i < c->n_ch_mult; i++) {
    g_autofree char *k = g_strdup_printf("down.%d.attn.0.qkv.weight", i);
    if (sige_weights_contains(w, k)) c->attn_resolutions[c->n_attn_resolutions++] = c->image_size >> i;
  }
  return TRUE;
}

sige_model *sige_model_load(const char *path, GError **error) {
  /* safetensors or a PyTorch checkpoint, any known key layout (told apart
   * by content), renamed to the names the builders below expect */
  g_autoptr(sige_weights) w = sige_weights_load_any(path, error);
  if (!w) return NULL;
  if (sige_weights_contains(w, "fc.weight") && sige_weights_contains(w, "conv_img.weight") &&
      sige_weights_contains(w, "head_0.norm_0.mlp_gamma.conv.0.weight")) {
    sige_gancomp_config c;
    if (!infer_gancomp(w, path, &c, error)) return NULL;
    return sige_model_new_gancomp(&c, w, error);
  }
  if (sige_weights_contains(w, "fc.weight") && sige_weights_contains(w, "conv_img.weight")) {
    sige_spade_config c;
    if (!infer_spade(w, path, &c, error)) return NULL;
    return sige_model_new_spade(&c, w, error);
  }
  if (sige_weights_contains(w, "conv_in.weight") && sige_weights_contains(w, "mid.attn_1.qkv.weight")) {
    sige_pd_config c;
    if (!infer_pd(w, path, &c, error)) return NULL;
    return sige_model_new_pd(&c, w, error);
  }
  if (sige_weights_contains(w, "conv_in.weight") && sige_weights_contains(w, "temb.dense.0.weight")) {
    sige_ddpm_config c;
    if (!infer_ddpm(w, path, &c, error)) return NULL;
    return sige_model_new_ddpm(&c, w, error);
  }
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
              "%s: unknown model layout (expected a SPADE generator with 'fc.weight' and "
              "'conv_img.weight', or a DDPM UNet with 'conv_in.weight' and 'temb.dense.0.weight')",
              path);
  return NULL;
}

void sige_model_sparse_params(const sige_model *m, sige_sparse_params *p) {
  if (sige_model_spade_config(m)) {
    const sige_spade_config *c = sige_model_spade_config(m);
    p->diff_eps = c->diff_eps;
    p->dilate_radius = c->mask_dilate_radius;
    p->min_w = c->crop_size >> c->num_upsampling_layers;
    p->min_h = (int)(p->min_w / c->aspect_ratio + 0.5);
    if (c->pyramid_min_h > 0) p->min_h = c->pyramid_min_h;
    if (c->pyramid_min_w > 0) p->min_w = c->pyramid_min_w;
    p->pyramid_dilation = c->pyramid_dilation;
    p->pyramid_threshold = c->pyramid_threshold;
  } else if (m->kind == SIGE_MODEL_PD_UNET) {
    const sige_pd_config *c = &m->cfg.pd;
    p->diff_eps = c->diff_eps;
    p->dilate_radius = c->mask_dilate_radius;
    p->min_h = p->min_w = c->pyramid_min_res > 0 ? c->pyramid_min_res
                                                 : c->image_size >> (c->n_ch_mult - 1);
    p->pyramid_dilation = c->pyramid_dilation;
    p->pyramid_threshold = c->pyramid_threshold;
  } else {
    const sige_ddpm_config *c = &m->cfg.ddpm;
    p->diff_eps = c->diff_eps;
    p->dilate_radius = c->mask_dilate_radius;
    p->min_h = p->min_w = c->pyramid_min_res > 0 ? c->pyramid_min_res
                                                 : c->image_size >> (c->n_ch_mult - 1);
    p->pyramid_dilation = c->pyramid_dilation;
    p->pyramid_threshold = c->pyramid_threshold;
  }
}

static gboolean forward(const sige_model *m, sige_run *run, const sige_tensor *input, float t,
                        sige_tensor **out, GError **error) {
  switch (m->kind) {
    case SIGE_MODEL_SPADE: return sige_spade_forward(m->spade, run, input, out, error);
    case SIGE_MODEL_PD_UNET: return sige_pd_forward(m->pd, run, input, t, out, error);
    case SIGE_MODEL_GANCOMP_SPADE: return sige_gancomp_forward(m->gancomp, run, input, out, error);
    case SIGE_MODEL_DDPM_UNET: break;
  }
  return sige_ddpm_forward(m->ddpm, run, input, t, out, error);
}

gboolean sige_model_run(const sige_model *m, sige_run *run, const sige_tensor *input, float t,
                        sige_tensor **out, GError **error) {
  sige_backend *be = sige_ctx_backend(run->ctx);
  *out = NULL;
  if (!be) return forward(m, run, input, t, out, error);
  /* a pass on a device: the input goes up unless it is there already (a
   * session keeps its own copy), the output comes back (the download waits
   * for the pass and reports whatever the device latched) */
  g_autoptr(sige_tensor) in_dev = NULL;
  if (input->backend != be && !(in_dev = sige_tensor_to_backend(be, input, error))) return FALSE;
  sige_tensor *out_dev = NULL;
  gboolean ok = forward(m, run, in_dev ? in_dev : input, t, &out_dev, error);
  if (ok && !(*out = sige_tensor_to_host(out_dev, error))) ok = FALSE;
  sige_tensor_free(out_dev);
  if (!ok) sige_buffer_check(be, NULL); /* the error above names the cause; drop later ones */
  return ok;
}
