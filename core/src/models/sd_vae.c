/* Stable Diffusion's AutoencoderKL (ldm Encoder / Decoder), both halves
 * built from the shared UNet blocks (unet_blocks.h):
 *
 *   encoder: conv_in; per level i num_res_blocks residual blocks
 *     (down.i.block.j, no time embedding), then, but at the lowest level, a
 *     stride-2 conv (down.i.downsample.conv, padding (0, 1, 0, 1));
 *     mid.block_1, mid.attn_1, mid.block_2; norm_out, SiLU, conv_out
 *     (2 z_channels with double_z); then quant_conv -> the moments;
 *   decoder: post_quant_conv, conv_in; mid.block_1, mid.attn_1,
 *     mid.block_2; per level from the lowest (up.i, up.0 the full
 *     resolution) num_res_blocks + 1 residual blocks, then, but at level 0,
 *     nearest x2 and up.i.upsample.conv; norm_out, SiLU, conv_out.
 *
 * Sparse passes follow the published SIGE code (sige_model.py): no
 * resolution threshold, the middle blocks and attention are sparse too;
 * the downsample's asymmetric padding exists only in dense passes (its
 * sparse gathers have offset 0). */
#include <stddef.h>
#include <string.h>

#include "model_internal.h"
#include "param_list.h"
#include "sige/error.h"
#include "unet_blocks.h"

#define VAE_PREFIX "first_stage_model."

typedef struct {
  sige_unet_resblock *blocks;
  int n_blocks;
  gboolean has_resample;
  sige_conv_layer resample;
} vae_level;

typedef struct {
  sige_sd_vae_config cfg;
  gboolean decoder;
  sige_unet_norms norms;
  sige_conv_layer conv_in, conv_out, quant; /* quant: quant_conv or post_quant_conv */
  vae_level *levels;
  int n_levels;
  sige_unet_resblock mid1, mid2;
  sige_unet_attn mid_attn;
  sige_tensor *out_g, *out_b;
} sd_vae;

void sige_sd_vae_config_init(sige_sd_vae_config *c, sige_model_kind part) {
  /* v1-inference.yaml's first_stage_config (kl-f8) */
  memset(c, 0, sizeof *c);
  c->ch = 128;
  const int mult[] = {1, 2, 4, 4};
  memcpy(c->ch_mult, mult, sizeof mult);
  c->n_ch_mult = 4;
  c->num_res_blocks = 2;
  c->in_channels = c->out_ch = 3;
  c->z_channels = c->embed_dim = 4;
  c->double_z = TRUE;
  c->image_h = c->image_w = 512;
  c->groupnorm_groups = 32;
  c->groupnorm_eps = 1e-6f;
  c->attention_block_size = 4;
  c->decoder_extra_dilate = 40;
  c->sd_single_file = TRUE;
  /* the sdedit runner: difference eps 0.02, dilation 5, pyramid down to
   * 4 x 4 with dilation 1 (encoder) or 0 (decoder) */
  sige_sparse_config_defaults(&c->sparse, 0.02f, 5, part == SIGE_MODEL_SD_VAE_DECODER ? 0 : 1);
  c->sparse.pyramid_min_h = c->sparse.pyramid_min_w = 4;
}

static int factor(const sige_sd_vae_config *c) { return 1 << (c->n_ch_mult - 1); }

static void vae_free(void *impl) {
  sd_vae *v = impl;
  if (!v) return;
  sige_conv_layer_clear(&v->conv_in);
  sige_conv_layer_clear(&v->conv_out);
  sige_conv_layer_clear(&v->quant);
  for (int i = 0; v->levels && i < v->n_levels; i++) {
    for (int j = 0; j < v->levels[i].n_blocks; j++) sige_unet_resblock_clear(&v->levels[i].blocks[j]);
    g_free(v->levels[i].blocks);
    sige_conv_layer_clear(&v->levels[i].resample);
  }
  g_free(v->levels);
  sige_unet_resblock_clear(&v->mid1);
  sige_unet_resblock_clear(&v->mid2);
  sige_unet_attn_clear(&v->mid_attn);
  sige_tensor_free(v->out_g);
  sige_tensor_free(v->out_b);
  g_free(v);
}

static gboolean check_config(const sige_sd_vae_config *c, GError **error) {
  if (c->n_ch_mult < 1 || c->n_ch_mult > 8 || c->ch < 1 || c->num_res_blocks < 1 ||
      c->in_channels < 1 || c->out_ch < 1 || c->z_channels < 1 || c->embed_dim < 1 ||
      c->groupnorm_groups < 1 || c->attention_block_size < 1 || c->decoder_extra_dilate < 0 ||
      c->image_h < 1 || c->image_w < 1 || c->image_h > 16384 || c->image_w > 16384 ||
      c->image_h % (1 << (c->n_ch_mult - 1)) || c->image_w % (1 << (c->n_ch_mult - 1))) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "SD VAE config: ch %d, %d levels, num_res_blocks %d, channels %d/%d, z %d, "
                "embed %d, image %d x %d (at most 16384, a multiple of %d) out of range",
                c->ch, c->n_ch_mult, c->num_res_blocks, c->in_channels, c->out_ch, c->z_channels,
                c->embed_dim, c->image_h, c->image_w, 1 << (CLAMP(c->n_ch_mult, 1, 8) - 1));
    return FALSE;
  }
  for (int i = 0; i < c->n_ch_mult; i++)
    if (c->ch_mult[i] < 1) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "SD VAE config: ch_mult[%d] is %d", i,
                  c->ch_mult[i]);
      return FALSE;
    }
  return TRUE;
}

static void *vae_declare(const sige_sd_vae_config *c, gboolean decoder, sige_param_list *l,
                         GError **error) {
  if (!check_config(c, error)) return NULL;
  const char *P = c->sd_single_file ? VAE_PREFIX : "";
  const int L = c->n_ch_mult, zc = c->double_z ? 2 * c->z_channels : c->z_channels;
  sd_vae *v = g_new0(sd_vae, 1);
  v->cfg = *c;
  v->decoder = decoder;
  v->norms = (sige_unet_norms){decoder ? "SD VAE decoder" : "SD VAE encoder", SIGE_UNET_TEMB_ADD,
                               c->groupnorm_groups, c->groupnorm_eps, FALSE, FALSE};
  v->n_levels = L;
  v->levels = g_new0(vae_level, L);
  g_autofree char *mid = g_strdup_printf("%s%s.mid", P, decoder ? "decoder" : "encoder");
  g_autofree char *m1 = g_strconcat(mid, ".block_1", NULL);
  g_autofree char *ma = g_strconcat(mid, ".attn_1", NULL);
  g_autofree char *m2 = g_strconcat(mid, ".block_2", NULL);
  /* in forward order (the random-weight generator draws in list order) */
  if (!decoder) {
    sige_params_conv(l, &v->conv_in, c->ch, c->in_channels, 3, 1, 1, TRUE, "%sencoder.conv_in", P);
    int block_in = c->ch;
    for (int i = 0; i < L; i++) {
      vae_level *lv = &v->levels[i];
      const int block_out = c->ch * c->ch_mult[i];
      lv->n_blocks = c->num_res_blocks;
      lv->blocks = g_new0(sige_unet_resblock, lv->n_blocks);
      for (int j = 0; j < lv->n_blocks; j++) {
        g_autofree char *p = g_strdup_printf("%sencoder.down.%d.block.%d", P, i, j);
        sige_unet_resblock_declare(l, &lv->blocks[j], p, block_in, block_out, 0, 0,
                                   SIGE_UNET_RESAMPLE_NONE);
        block_in = block_out;
      }
      if (i != L - 1) {
        lv->has_resample = TRUE;
        /* padding (0, 1, 0, 1) is set by vae_finish: dense passes only */
        sige_params_conv(l, &lv->resample, block_in, block_in, 3, 2, 0, TRUE,
                         "%sencoder.down.%d.downsample.conv", P, i);
      }
    }
    sige_unet_resblock_declare(l, &v->mid1, m1, block_in, block_in, 0, 0, SIGE_UNET_RESAMPLE_NONE);
    sige_unet_attn_declare(l, &v->mid_attn, ma, block_in, 0, 0);
    sige_unet_resblock_declare(l, &v->mid2, m2, block_in, block_in, 0, 0, SIGE_UNET_RESAMPLE_NONE);
    sige_params_norm(l, &v->out_g, &v->out_b, block_in, "%sencoder.norm_out", P);
    sige_params_conv(l, &v->conv_out, zc, block_in, 3, 1, 1, TRUE, "%sencoder.conv_out", P);
    sige_params_conv(l, &v->quant, 2 * c->embed_dim, zc, 1, 1, 0, TRUE, "%squant_conv", P);
    return v;
  }
  int block_in = c->ch * c->ch_mult[L - 1];
  sige_params_conv(l, &v->quant, c->z_channels, c->embed_dim, 1, 1, 0, TRUE, "%spost_quant_conv",
                   P);
  sige_params_conv(l, &v->conv_in, block_in, c->z_channels, 3, 1, 1, TRUE, "%sdecoder.conv_in", P);
  sige_unet_resblock_declare(l, &v->mid1, m1, block_in, block_in, 0, 0, SIGE_UNET_RESAMPLE_NONE);
  sige_unet_attn_declare(l, &v->mid_attn, ma, block_in, 0, 0);
  sige_unet_resblock_declare(l, &v->mid2, m2, block_in, block_in, 0, 0, SIGE_UNET_RESAMPLE_NONE);
  for (int i = L - 1; i >= 0; i--) {
    vae_level *lv = &v->levels[i];
    const int block_out = c->ch * c->ch_mult[i];
    lv->n_blocks = c->num_res_blocks + 1;
    lv->blocks = g_new0(sige_unet_resblock, lv->n_blocks);
    for (int j = 0; j < lv->n_blocks; j++) {
      g_autofree char *p = g_strdup_printf("%sdecoder.up.%d.block.%d", P, i, j);
      sige_unet_resblock_declare(l, &lv->blocks[j], p, block_in, block_out, 0, 0,
                                 SIGE_UNET_RESAMPLE_NONE);
      block_in = block_out;
    }
    if (i != 0) {
      lv->has_resample = TRUE;
      sige_params_conv(l, &lv->resample, block_in, block_in, 3, 1, 1, TRUE,
                       "%sdecoder.up.%d.upsample.conv", P, i);
    }
  }
  sige_params_norm(l, &v->out_g, &v->out_b, block_in, "%sdecoder.norm_out", P);
  sige_params_conv(l, &v->conv_out, c->out_ch, block_in, 3, 1, 1, TRUE, "%sdecoder.conv_out", P);
  return v;
}

static void *encoder_declare(const void *cfg, sige_param_list *l, GError **error) {
  return vae_declare(cfg, FALSE, l, error);
}
static void *decoder_declare(const void *cfg, sige_param_list *l, GError **error) {
  return vae_declare(cfg, TRUE, l, error);
}

static gboolean vae_finish(void *impl, GError **error) {
  (void)error;
  sd_vae *v = impl;
  for (int i = 0; !v->decoder && i < v->n_levels; i++) {
    sige_conv_layer *c = &v->levels[i].resample;
    if (c->weight) c->params.pad_bottom = c->params.pad_right = 1;
  }
  return TRUE;
}

/* *h = r (r owned, may be a cache view); FALSE when r is NULL. */
static gboolean step(sige_tensor **h, sige_tensor *r) {
  sige_tensor_free(*h);
  *h = r;
  return r != NULL;
}

/* norm_out (fresh statistics in every pass), SiLU, conv_out: dense. */
static sige_tensor *vae_out(const sige_unet_norms *n, const sd_vae *v, sige_pass *pass,
                            sige_tensor *h, GError **error) {
  g_autoptr(sige_tensor) x = h->storage == SIGE_STORAGE_F16 ? sige_tensor_to_f32(h, error)
                                                            : sige_tensor_dup(h, error);
  if (!x) return NULL;
  const int C = SIGE_C(x);
  g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
  if (!sige_unet_norm_fresh(n, pass, x, v->out_g, v->out_b, NULL, scale, shift, error))
    return NULL;
  sige_channel_affine(pass->ctx, x, scale, shift, FALSE, SIGE_ACT_SWISH, x);
  return sige_pass_conv(pass, &v->conv_out, x, error);
}

static gboolean vae_forward(const void *impl, sige_pass *pass, const sige_tensor *x, float t,
                            sige_tensor **out, GError **error) {
  (void)t;
  const sd_vae *v = impl;
  const sige_sd_vae_config *c = &v->cfg;
  const int f = factor(c);
  const int want_c = v->decoder ? c->embed_dim : c->in_channels;
  const int want_h = v->decoder ? c->image_h / f : c->image_h;
  const int want_w = v->decoder ? c->image_w / f : c->image_w;
  *out = NULL;
  if (x->ndim != 4 || SIGE_N(x) != 1 || SIGE_C(x) != want_c || SIGE_H(x) != want_h ||
      SIGE_W(x) != want_w) {
    char buf[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE, "%s input is %s; expected [1, %d, %d, %d]",
                v->norms.name, sige_tensor_shape_str(x, buf, sizeof buf), want_c, want_h, want_w);
    return FALSE;
  }
  sige_unet_geometry geo;
  sige_block_geometry ga;
  sige_block_geometry_init(&geo.main, 3, 1, 1, c->sparse.block_size);
  sige_block_geometry_init(&geo.shortcut, 1, 1, 0, c->sparse.shortcut_block_size);
  sige_block_geometry_init(&geo.down, 3, 2, 0, c->sparse.block_size);
  sige_block_geometry_init(&ga, 1, 1, 0, c->attention_block_size);
  const sige_unet_norms *n = &v->norms;
  int groups = 6;
  for (int i = 0; i < v->n_levels; i++) groups += v->levels[i].n_blocks + v->levels[i].has_resample;
  pass->layers_total = groups;
  sige_tensor *h = NULL;
  gboolean ok = FALSE;
  if (!sige_pass_begin_group(pass, FALSE, error)) goto done;
  if (v->decoder) {
    g_autoptr(sige_tensor) z = sige_pass_conv(pass, &v->quant, x, error);
    if (!z || !step(&h, sige_pass_conv(pass, &v->conv_in, z, error))) goto done;
  } else {
    if (!step(&h, sige_pass_conv(pass, &v->conv_in, x, error))) goto done;
    for (int i = 0; i < v->n_levels; i++) {
      const vae_level *lv = &v->levels[i];
      for (int j = 0; j < lv->n_blocks; j++)
        if (!step(&h, sige_unet_resblock_forward(n, &lv->blocks[j], &geo, pass, TRUE, h, NULL,
                                                 NULL, error)))
          goto done;
      if (lv->has_resample &&
          !step(&h, sige_unet_resample_conv_forward(&lv->resample, &geo.down, pass, TRUE, h,
                                                    FALSE, error)))
        goto done;
    }
  }
  if (!step(&h, sige_unet_resblock_forward(n, &v->mid1, &geo, pass, TRUE, h, NULL, NULL, error)) ||
      !step(&h, sige_unet_attn_blocks_forward(n, &v->mid_attn, &ga, pass, h, error)) ||
      !step(&h, sige_unet_resblock_forward(n, &v->mid2, &geo, pass, TRUE, h, NULL, NULL, error)))
    goto done;
  for (int i = v->n_levels - 1; v->decoder && i >= 0; i--) {
    const vae_level *lv = &v->levels[i];
    for (int j = 0; j < lv->n_blocks; j++)
      if (!step(&h, sige_unet_resblock_forward(n, &lv->blocks[j], &geo, pass, TRUE, h, NULL, NULL,
                                               error)))
        goto done;
    if (lv->has_resample &&
        !step(&h, sige_unet_resample_conv_forward(&lv->resample, &geo.main, pass, TRUE, h, TRUE,
                                                  error)))
      goto done;
  }
  if (!sige_pass_begin_group(pass, FALSE, error)) goto done;
  sige_tensor *y = vae_out(n, v, pass, h, error);
  if (!y) goto done;
  if (v->decoder) {
    *out = y;
  } else {
    *out = sige_pass_conv(pass, &v->quant, y, error);
    sige_tensor_free(y);
  }
  ok = *out != NULL;
done:
  sige_tensor_free(h);
  return ok;
}

static void encoder_input_shape(const void *cfg, int64_t shape[4]) {
  const sige_sd_vae_config *c = cfg;
  shape[0] = 1;
  shape[1] = c->in_channels;
  shape[2] = c->image_h;
  shape[3] = c->image_w;
}

static void decoder_input_shape(const void *cfg, int64_t shape[4]) {
  const sige_sd_vae_config *c = cfg;
  shape[0] = 1;
  shape[1] = c->embed_dim;
  shape[2] = c->image_h / factor(c);
  shape[3] = c->image_w / factor(c);
}

/* Both halves' masks are at the image's resolution. */
static void vae_mask_shape(const void *cfg, int *h, int *w) {
  const sige_sd_vae_config *c = cfg;
  *h = c->image_h;
  *w = c->image_w;
}

static void vae_lowest_level(const void *cfg, int *h, int *w) {
  const sige_sd_vae_config *c = cfg;
  *h = c->image_h / factor(c);
  *w = c->image_w / factor(c);
}

static const char *key_prefix(const sige_weights *w, const char *part) {
  g_autofree char *a = g_strdup_printf(VAE_PREFIX "%s.conv_in.weight", part);
  if (sige_weights_contains(w, a)) return VAE_PREFIX;
  g_autofree char *b = g_strdup_printf("%s.conv_in.weight", part);
  if (sige_weights_contains(w, b) &&
      (sige_weights_contains(w, "quant_conv.weight") ||
       sige_weights_contains(w, "post_quant_conv.weight")))
    return "";
  return NULL;
}

static gboolean encoder_recognise(const sige_weights *w) { return key_prefix(w, "encoder") != NULL; }
static gboolean decoder_recognise(const sige_weights *w) { return key_prefix(w, "decoder") != NULL; }

static sige_indexed_shape shape_p(const sige_weights *w, const char *p, const char *key) {
  g_autofree char *k = g_strconcat(p, key, NULL);
  return sige_shape_of(w, k);
}

static gboolean need4(sige_indexed_shape s, const char *path, const char *p, const char *key,
                      GError **error) {
  if (s.found && s.ndim == 4) return TRUE;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: no 4-D '%s%s' (an SD VAE needs it)", path,
              p, key);
  return FALSE;
}

/* The config from the keys and shapes: widths and levels from the encoder
 * when the file has one (else from the decoder, with ch_mult[0] = 1 unless
 * metadata "sige.vae_ch" says ch), z and embed widths from conv_in and the
 * quant convs; the image size is not in the tensors (metadata
 * "sige.image_size", "sige.image_h", "sige.image_w"; else SD 1.x's 512). */
static gboolean vae_infer(const sige_weights *w, const char *path, sige_sd_vae_config *c,
                          sige_model_kind part, GError **error) {
  sige_sd_vae_config_init(c, part);
  const char *p = key_prefix(w, "encoder");
  if (!p) p = key_prefix(w, "decoder");
  if (!p) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: no '" VAE_PREFIX "encoder.conv_in.weight' or '" VAE_PREFIX
                "decoder.conv_in.weight': not a Stable Diffusion VAE", path);
    return FALSE;
  }
  c->sd_single_file = *p != '\0';
  const sige_indexed_shape enc_in = shape_p(w, p, "encoder.conv_in.weight");
  const gboolean has_enc = enc_in.found;
  if (part == SIGE_MODEL_SD_VAE_ENCODER && !has_enc)
    return need4(enc_in, path, p, "encoder.conv_in.weight", error);
  c->n_ch_mult = 0;
  c->num_res_blocks = 0;
  if (has_enc) {
    if (!need4(enc_in, path, p, "encoder.conv_in.weight", error)) return FALSE;
    c->ch = (int)enc_in.shape[0];
    c->in_channels = (int)enc_in.shape[1];
    if (c->ch < 1) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: '%sencoder.conv_in.weight' has no rows",
                  path, p);
      return FALSE;
    }
    for (int i = 0; i < 8; i++) {
      g_autofree char *k = g_strdup_printf("encoder.down.%d.block.0.conv1.weight", i);
      const sige_indexed_shape s = shape_p(w, p, k);
      if (!s.found) break;
      c->ch_mult[c->n_ch_mult++] = (int)s.shape[0] / c->ch;
    }
    while (c->num_res_blocks < 16) {
      g_autofree char *k = g_strdup_printf("encoder.down.0.block.%d.conv1.weight", c->num_res_blocks);
      if (!shape_p(w, p, k).found) break;
      c->num_res_blocks++;
    }
    const sige_indexed_shape eo = shape_p(w, p, "encoder.conv_out.weight");
    if (!need4(eo, path, p, "encoder.conv_out.weight", error)) return FALSE;
    c->z_channels = (int)eo.shape[0];
  } else {
    c->ch = sige_meta_int(w, "sige.vae_ch", 0);
    int widths[8], nb = 0;
    for (int i = 0; i < 8; i++) {
      g_autofree char *k = g_strdup_printf("decoder.up.%d.block.0.conv1.weight", i);
      const sige_indexed_shape s = shape_p(w, p, k);
      if (!s.found) break;
      widths[c->n_ch_mult++] = (int)s.shape[0];
    }
    if (c->n_ch_mult > 0 && c->ch <= 0) c->ch = widths[0];
    for (int i = 0; i < c->n_ch_mult; i++) c->ch_mult[i] = widths[i] / MAX(c->ch, 1);
    while (nb < 17) {
      g_autofree char *k = g_strdup_printf("decoder.up.0.block.%d.conv1.weight", nb);
      if (!shape_p(w, p, k).found) break;
      nb++;
    }
    c->num_res_blocks = nb - 1;
  }
  if (c->n_ch_mult == 0 || c->num_res_blocks < 1) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: no '%s%s.%s.0.block.0.conv1.weight': not a Stable Diffusion VAE", path, p,
                has_enc ? "encoder" : "decoder", has_enc ? "down" : "up");
    return FALSE;
  }
  const sige_indexed_shape di = shape_p(w, p, "decoder.conv_in.weight");
  const sige_indexed_shape dout = shape_p(w, p, "decoder.conv_out.weight");
  if (di.found && di.ndim == 4) {
    const int z = (int)di.shape[1];
    if (has_enc) c->double_z = c->z_channels == 2 * z;
    c->z_channels = z;
  } else if (has_enc && c->double_z) {
    c->z_channels /= 2;
  }
  if (dout.found && dout.ndim == 4) c->out_ch = (int)dout.shape[0];
  if (part == SIGE_MODEL_SD_VAE_DECODER &&
      (!need4(di, path, p, "decoder.conv_in.weight", error) ||
       !need4(dout, path, p, "decoder.conv_out.weight", error)))
    return FALSE;
  const sige_indexed_shape q = shape_p(w, p, "quant_conv.weight");
  const sige_indexed_shape pq = shape_p(w, p, "post_quant_conv.weight");
  if (pq.found && pq.ndim == 4)
    c->embed_dim = (int)pq.shape[1];
  else if (q.found && q.ndim == 4)
    c->embed_dim = (int)q.shape[0] / 2;
  for (int i = 0; i < c->n_ch_mult; i++) {
    g_autofree char *k = g_strdup_printf("%s.%s.%d.attn.0.q.weight", has_enc ? "encoder" : "decoder",
                                         has_enc ? "down" : "up", i);
    if (shape_p(w, p, k).found) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                  "%s: '%s%s': attention outside the middle blocks is not supported (SD's VAE "
                  "has none)", path, p, k);
      return FALSE;
    }
  }
  const int size = sige_meta_int(w, "sige.image_size", c->image_h);
  c->image_h = sige_meta_int(w, "sige.image_h", size);
  c->image_w = sige_meta_int(w, "sige.image_w", size);
  return TRUE;
}

static gboolean encoder_infer(const sige_weights *w, const char *path, void *cfg, GError **error) {
  return vae_infer(w, path, cfg, SIGE_MODEL_SD_VAE_ENCODER, error);
}
static gboolean decoder_infer(const sige_weights *w, const char *path, void *cfg, GError **error) {
  return vae_infer(w, path, cfg, SIGE_MODEL_SD_VAE_DECODER, error);
}

static void vae_describe(const void *cfg, GString *out) {
  const sige_sd_vae_config *c = cfg;
  sige_describe_line(out, "ch", "%d", c->ch);
  sige_describe_ints(out, "ch_mult", c->ch_mult, c->n_ch_mult);
  sige_describe_line(out, "num_res_blocks", "%d", c->num_res_blocks);
  sige_describe_line(out, "z_channels", "%d%s", c->z_channels, c->double_z ? " (double_z)" : "");
  sige_describe_line(out, "embed_dim", "%d", c->embed_dim);
  sige_describe_line(out, "image", "%d x %d (latent %d x %d)", c->image_h, c->image_w,
                     c->image_h / factor(c), c->image_w / factor(c));
}

const sige_model_class sige_sd_vae_encoder_class = {
    .kind = SIGE_MODEL_SD_VAE_ENCODER,
    .name = "sd-vae-encoder",
    .config_size = sizeof(sige_sd_vae_config),
    .sparse_offset = offsetof(sige_sd_vae_config, sparse),
    .declare = encoder_declare,
    .finish = vae_finish,
    .free = vae_free,
    .forward = vae_forward, /* t unused */
    .input_shape = encoder_input_shape,
    .lowest_level = vae_lowest_level,
    .mask_shape = vae_mask_shape,
    .recognise = encoder_recognise,
    .infer = encoder_infer,
    .describe = vae_describe,
};

const sige_model_class sige_sd_vae_decoder_class = {
    .kind = SIGE_MODEL_SD_VAE_DECODER,
    .name = "sd-vae-decoder",
    .config_size = sizeof(sige_sd_vae_config),
    .sparse_offset = offsetof(sige_sd_vae_config, sparse),
    .declare = decoder_declare,
    .finish = vae_finish,
    .free = vae_free,
    .forward = vae_forward,
    .input_shape = decoder_input_shape,
    .lowest_level = vae_lowest_level,
    .mask_shape = vae_mask_shape,
    .recognise = decoder_recognise,
    .infer = decoder_infer,
    .describe = vae_describe,
};
