/* The Stable Diffusion 1.x UNet (ldm openaimodel.UNetModel with
 * use_spatial_transformer, legacy false), built from the shared UNet blocks:
 *
 *   emb = time_embed.2(silu(time_embed.0(sinusoid_ldm(t))))
 *   input_blocks.0.0: conv_in; then per level num_res_blocks ResBlocks
 *     (input_blocks.i.0), each followed by a SpatialTransformer
 *     (input_blocks.i.1) where the level's factor ds is in
 *     attention_resolutions, and between levels a stride-2 conv
 *     (input_blocks.i.0.op, padding 1 on every side)
 *   middle_block.{0: ResBlock, 1: SpatialTransformer, 2: ResBlock}
 *   output_blocks: per level (lowest first) num_res_blocks + 1 ResBlocks on
 *     [h, skip], each with its transformer, the last of a level but the
 *     top one followed by nearest x2 + conv (output_blocks.i.<1|2>.conv)
 *   out.0 GroupNorm, SiLU, out.2 conv
 *
 * ResBlocks are the DDPM ones (time embedding added before the second
 * norm, SiLU before emb_layers) under the openaimodel names, with GroupNorm
 * eps 1e-5; transformers are sige_unet_transformer.  The context (the text
 * encoder's last hidden state) comes with the pass (sige_pass.cond).
 *
 * Dense, recording and sparse passes through this one forward, with the
 * published sparse semantics (SIGE's stable-diffusion/): no resolution
 * threshold, so every ResBlock, every transformer's proj_in/proj_out (4 x 4
 * blocks, queries of the active blocks only, see sige_unet_transformer_forward),
 * the downsample convs (b5 s4 o1) and the upsample convs run sparsely; the
 * middle block stays dense (its ResBlocks normalise with fresh statistics
 * in every pass, its transformer with the frozen GroupNorm); conv_in and
 * `out` (fresh statistics) are dense.  Masks live in image space (8 x the
 * latent): the pyramid's latent levels are what the layers look up. */
#include <stddef.h>
#include <string.h>

#include "model_internal.h"
#include "param_list.h"
#include "sige/error.h"
#include "unet_blocks.h"

#define SD_PREFIX "model.diffusion_model."

/* One entry of input_blocks (after conv_in) or output_blocks. */
typedef struct {
  gboolean has_res;
  sige_unet_resblock res;
  sige_unet_transformer *tr; /* NULL: no transformer here */
  gboolean has_resample;
  sige_conv_layer resample; /* down: stride-2 "op"; up: "conv" after nearest x2 */
} sd_block;

typedef struct {
  sige_sd_unet_config cfg;
  sige_unet_norms norms, tnorms;
  sige_unet_norms mid_norms; /* norms with fresh statistics in every pass */
  sige_unet_temb temb;
  sige_conv_layer conv_in, conv_out;
  sd_block *in, *out;
  int n_in, n_out;
  sige_unet_resblock mid1, mid2;
  sige_unet_transformer mid_tr;
  sige_tensor *out_g, *out_b;
} sd_unet;

void sige_sd_unet_config_init(sige_sd_unet_config *c) {
  /* v1-inference.yaml of CompVis/stable-diffusion: model_channels 320,
   * channel_mult 1 2 4 4, 2 res blocks, attention at ds 4 2 1, 8 heads,
   * context 768, latent 64 x 64 for 512 x 512 pictures */
  memset(c, 0, sizeof *c);
  c->model_channels = 320;
  const int mult[] = {1, 2, 4, 4};
  memcpy(c->channel_mult, mult, sizeof mult);
  c->n_channel_mult = 4;
  c->num_res_blocks = 2;
  const int attn[] = {4, 2, 1};
  memcpy(c->attention_resolutions, attn, sizeof attn);
  c->n_attention_resolutions = 3;
  c->num_heads = 8;
  c->transformer_depth = 1;
  c->context_dim = 768;
  c->in_channels = c->out_channels = 4;
  c->latent_h = c->latent_w = 64;
  c->groupnorm_groups = 32;
  c->groupnorm_eps = 1e-5f;
  c->transformer_norm_eps = 1e-6f;
  c->layernorm_eps = 1e-5f;
  c->sd_single_file = TRUE;
  /* the published SD runners: difference eps 0.02 in image space, mask
   * dilated by 5, pyramid dilation 1 down to 4 x 4; transformers gather
   * 4 x 4 blocks */
  sige_sparse_config_defaults(&c->sparse, 0.02f, 5, 1);
  c->sparse.pyramid_min_h = c->sparse.pyramid_min_w = 4;
  c->transformer_block_size = 4;
}

static void block_clear(sd_block *b) {
  sige_unet_resblock_clear(&b->res);
  if (b->tr) sige_unet_transformer_clear(b->tr);
  g_free(b->tr);
  sige_conv_layer_clear(&b->resample);
}

static void sd_free(void *impl) {
  sd_unet *u = impl;
  if (!u) return;
  sige_unet_temb_clear(&u->temb);
  sige_conv_layer_clear(&u->conv_in);
  sige_conv_layer_clear(&u->conv_out);
  for (int i = 0; u->in && i < u->n_in; i++) block_clear(&u->in[i]);
  for (int i = 0; u->out && i < u->n_out; i++) block_clear(&u->out[i]);
  g_free(u->in);
  g_free(u->out);
  sige_unet_resblock_clear(&u->mid1);
  sige_unet_resblock_clear(&u->mid2);
  sige_unet_transformer_clear(&u->mid_tr);
  sige_tensor_free(u->out_g);
  sige_tensor_free(u->out_b);
  g_free(u);
}

static gboolean has_attn(const sige_sd_unet_config *c, int ds) {
  for (int i = 0; i < c->n_attention_resolutions; i++)
    if (c->attention_resolutions[i] == ds) return TRUE;
  return FALSE;
}

static gboolean tr_declare(sige_param_list *l, const sd_unet *u, sige_unet_transformer *t,
                           const char *p, int c, GError **error) {
  const sige_sd_unet_config *cf = &u->cfg;
  /* GEGLU hidden width: FeedForward(dim, mult 4, glu) */
  return sige_unet_transformer_declare(l, t, p, c, cf->num_heads, cf->transformer_depth,
                                       cf->context_dim, 4 * c, &u->tnorms, cf->layernorm_eps,
                                       error);
}

/* Widths, sizes and counts far above SD 1.x's (its widest level has 1280
 * channels, its context 768) and far below where the int products of the
 * declarations overflow (4 * model_channels, channel_mult * model_channels,
 * the GEGLU's 8 * width).  Found by fuzz_case_json: a channel_mult of
 * 1111111111 in a case.json (crashes/fuzz_case_json/ubsan-sd-channel-mult-overflow.json). */
#define SD_MAX_WIDTH 65536
static gboolean check_config(const sige_sd_unet_config *c, GError **error) {
  const char *field = NULL;
  if (c->model_channels < 1 || c->model_channels > SD_MAX_WIDTH) field = "model_channels";
  else if (c->n_channel_mult < 1 || c->n_channel_mult > 8) field = "channel_mult";
  else if (c->num_res_blocks < 1 || c->num_res_blocks > 64) field = "num_res_blocks";
  else if (c->n_attention_resolutions < 0 || c->n_attention_resolutions > 8)
    field = "attention_resolutions";
  else if (c->num_heads < 1 || c->num_heads > SD_MAX_WIDTH) field = "num_heads";
  else if (c->transformer_depth < 1 || c->transformer_depth > 64) field = "transformer_depth";
  else if (c->context_dim < 1 || c->context_dim > SD_MAX_WIDTH) field = "context_dim";
  else if (c->in_channels < 1 || c->out_channels < 1 || c->in_channels > SD_MAX_WIDTH ||
           c->out_channels > SD_MAX_WIDTH)
    field = "in_channels/out_channels";
  else if (c->latent_h < 1 || c->latent_w < 1 || c->latent_h > SD_MAX_WIDTH ||
           c->latent_w > SD_MAX_WIDTH ||
           c->latent_h % (1 << (c->n_channel_mult - 1)) ||
           c->latent_w % (1 << (c->n_channel_mult - 1)))
    field = "latent_h/latent_w (multiples of 2^(levels - 1))";
  else if (c->groupnorm_groups < 1) field = "groupnorm_groups";
  else if (c->transformer_block_size < 1 || c->sparse.block_size < 3 ||
           c->sparse.shortcut_block_size < 1)
    field = "transformer_block_size/sparse block sizes";
  else if (!(c->groupnorm_eps > 0) || !(c->transformer_norm_eps > 0) || !(c->layernorm_eps > 0))
    field = "groupnorm_eps/transformer_norm_eps/layernorm_eps";
  for (int i = 0; !field && i < c->n_channel_mult; i++)
    if (c->channel_mult[i] < 1 || (gint64)c->channel_mult[i] * c->model_channels > SD_MAX_WIDTH)
      field = "channel_mult (times model_channels, 1 to 65536)";
  if (!field) return TRUE;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              "SD UNet config: %s out of range (model_channels %d, %d levels, num_res_blocks %d, "
              "num_heads %d, context_dim %d, latent %d x %d)",
              field, c->model_channels, c->n_channel_mult, c->num_res_blocks, c->num_heads,
              c->context_dim, c->latent_h, c->latent_w);
  return FALSE;
}

static void *sd_declare(const void *config, sige_param_list *l, GError **error) {
  const sige_sd_unet_config *c = config;
  if (!check_config(c, error)) return NULL;
  sd_unet *u = g_new0(sd_unet, 1);
  u->cfg = *c;
  u->norms = (sige_unet_norms){"SD UNet", SIGE_UNET_TEMB_ADD, c->groupnorm_groups,
                               c->groupnorm_eps, FALSE, FALSE};
  u->tnorms = (sige_unet_norms){"SD UNet transformer", SIGE_UNET_TEMB_ADD, c->groupnorm_groups,
                                c->transformer_norm_eps, FALSE, FALSE};
  u->mid_norms = u->norms;
  u->mid_norms.fresh_stats = TRUE;
  const char *P = c->sd_single_file ? SD_PREFIX : "";
  const int L = c->n_channel_mult, nrb = c->num_res_blocks, mc = c->model_channels;
  const int tc = 4 * mc; /* time_embed_dim */
  u->n_in = L * nrb + (L - 1);
  u->n_out = L * (nrb + 1);
  u->in = g_new0(sd_block, u->n_in);
  u->out = g_new0(sd_block, u->n_out);
  g_autofree int *chans = g_new(int, 1 + u->n_in);
  int n_chans = 0, ch = mc, ds = 1, k = 0;
  sige_unet_temb_declare_ldm(l, &u->temb, P, mc, tc);
  sige_params_conv(l, &u->conv_in, mc, c->in_channels, 3, 1, 1, TRUE, "%sinput_blocks.0.0", P);
  chans[n_chans++] = mc;
  for (int lv = 0; lv < L; lv++) {
    for (int j = 0; j < nrb; j++, k++) {
      sd_block *b = &u->in[k];
      const int cout = c->channel_mult[lv] * mc;
      g_autofree char *p = g_strdup_printf("%sinput_blocks.%d", P, k + 1);
      g_autofree char *p0 = g_strdup_printf("%s.0", p);
      b->has_res = TRUE;
      sige_unet_resblock_declare_named(l, &b->res, &sige_unet_names_openai, p0, ch, cout, tc,
                                       cout, SIGE_UNET_RESAMPLE_NONE);
      ch = cout;
      if (has_attn(c, ds)) {
        g_autofree char *p1 = g_strdup_printf("%s.1", p);
        b->tr = g_new0(sige_unet_transformer, 1);
        if (!tr_declare(l, u, b->tr, p1, ch, error)) goto fail;
      }
      chans[n_chans++] = ch;
    }
    if (lv != L - 1) {
      sd_block *b = &u->in[k];
      b->has_resample = TRUE;
      sige_params_conv(l, &b->resample, ch, ch, 3, 2, 1, TRUE, "%sinput_blocks.%d.0.op", P,
                       k + 1);
      chans[n_chans++] = ch;
      ds *= 2;
      k++;
    }
  }
  {
    g_autofree char *m0 = g_strdup_printf("%smiddle_block.0", P);
    g_autofree char *m1 = g_strdup_printf("%smiddle_block.1", P);
    g_autofree char *m2 = g_strdup_printf("%smiddle_block.2", P);
    sige_unet_resblock_declare_named(l, &u->mid1, &sige_unet_names_openai, m0, ch, ch, tc, ch,
                                     SIGE_UNET_RESAMPLE_NONE);
    if (!tr_declare(l, u, &u->mid_tr, m1, ch, error)) goto fail;
    sige_unet_resblock_declare_named(l, &u->mid2, &sige_unet_names_openai, m2, ch, ch, tc, ch,
                                     SIGE_UNET_RESAMPLE_NONE);
  }
  k = 0;
  for (int lv = L - 1; lv >= 0; lv--) {
    for (int i = 0; i <= nrb; i++, k++) {
      sd_block *b = &u->out[k];
      const int skip = chans[--n_chans], cout = c->channel_mult[lv] * mc;
      g_autofree char *p = g_strdup_printf("%soutput_blocks.%d", P, k);
      g_autofree char *p0 = g_strdup_printf("%s.0", p);
      b->has_res = TRUE;
      sige_unet_resblock_declare_named(l, &b->res, &sige_unet_names_openai, p0, ch + skip, cout,
                                       tc, cout, SIGE_UNET_RESAMPLE_NONE);
      ch = cout;
      int part = 1;
      if (has_attn(c, ds)) {
        g_autofree char *p1 = g_strdup_printf("%s.1", p);
        b->tr = g_new0(sige_unet_transformer, 1);
        if (!tr_declare(l, u, b->tr, p1, ch, error)) goto fail;
        part = 2;
      }
      if (lv && i == nrb) {
        b->has_resample = TRUE;
        sige_params_conv(l, &b->resample, ch, ch, 3, 1, 1, TRUE, "%s.%d.conv", p, part);
        ds /= 2;
      }
    }
  }
  sige_params_norm(l, &u->out_g, &u->out_b, ch, "%sout.0", P);
  sige_params_conv(l, &u->conv_out, c->out_channels, ch, 3, 1, 1, TRUE, "%sout.2", P);
  return u;
fail:
  sd_free(u);
  return NULL;
}

/* emb_layers then the block (owning nothing it is given). */
static sige_tensor *res_step(const sige_unet_norms *n, const sige_unet_resblock *b,
                             const sige_unet_geometry *geo, sige_pass *pass, gboolean sparse,
                             const sige_tensor *x, const sige_tensor *skip,
                             const sige_tensor *temb, GError **error) {
  g_autofree float *proj = sige_unet_temb_proj(pass, temb, b, error);
  return proj ? sige_unet_resblock_forward(n, b, geo, pass, sparse, x, skip, proj, error) : NULL;
}

/* h followed by transformer t (h is consumed). */
static sige_tensor *then_tr(const sige_unet_transformer *t, const sige_block_geometry *g,
                            sige_pass *pass, sige_tensor *h, const sige_tensor *context,
                            GError **error) {
  if (!h || !t) return h;
  sige_tensor *y = sige_unet_transformer_forward(t, g, pass, g != NULL, h, context, error);
  sige_tensor_free(h);
  return y;
}

/* The context as [tokens, context_dim] rows: a view on cond, which is
 * [tokens, D] or [1, tokens, D]. */
static sige_tensor *context_view(const sd_unet *u, const sige_tensor *cond, GError **error) {
  const int D = u->cfg.context_dim;
  char buf[64];
  if (!cond) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "SD UNet: no context (the text encoder's [tokens, %d] hidden state) given with "
                "the pass", D);
    return NULL;
  }
  const gboolean rows2 = cond->ndim == 2, rows3 = cond->ndim == 3 && cond->shape[0] == 1;
  if ((!rows2 && !rows3) || cond->shape[cond->ndim - 1] != D ||
      cond->storage != SIGE_STORAGE_F32 || cond->layout != SIGE_LAYOUT_NCHW ||
      cond->shape[cond->ndim - 2] < 1) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "SD UNet: context %s; expected float32 [tokens, %d] or [1, tokens, %d]",
                sige_tensor_shape_str(cond, buf, sizeof buf), D, D);
    return NULL;
  }
  const int64_t shape[2] = {cond->shape[cond->ndim - 2], D};
  sige_tensor *v = sige_tensor_view(cond->data, 2, shape);
  v->backend = cond->backend;
  return v;
}

static gboolean sd_forward(const void *impl, sige_pass *pass, const sige_tensor *x, float t,
                           sige_tensor **out, GError **error) {
  const sd_unet *u = impl;
  const sige_sd_unet_config *c = &u->cfg;
  const int L = c->n_channel_mult, f = 1 << (L - 1);
  *out = NULL;
  if (x->ndim != 4 || SIGE_N(x) != 1 || SIGE_C(x) != c->in_channels || SIGE_H(x) % f ||
      SIGE_W(x) % f) {
    char buf[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "SD UNet input is %s; expected [1, %d, H, W] with H and W multiples of %d",
                sige_tensor_shape_str(x, buf, sizeof buf), c->in_channels, f);
    return FALSE;
  }
  g_autoptr(sige_tensor) context = context_view(u, pass->cond, error);
  if (!context) return FALSE;
  sige_unet_geometry geo;
  sige_block_geometry_init(&geo.main, 3, 1, 1, c->sparse.block_size);
  sige_block_geometry_init(&geo.shortcut, 1, 1, 0, c->sparse.shortcut_block_size);
  /* the stride-2 conv pads 1 on every side here: b5 s4 o1 */
  sige_block_geometry_init(&geo.down, 3, 2, 1, c->sparse.block_size);
  /* transformers gather 1x1-conv blocks (published: 4 x 4) */
  sige_block_geometry tr_g;
  sige_block_geometry_init(&tr_g, 1, 1, 0, c->transformer_block_size);
  gboolean ok = FALSE;
  GPtrArray *hs = g_ptr_array_new_with_free_func((GDestroyNotify)sige_tensor_free);
  sige_tensor *h = NULL, *temb = NULL;
  pass->layers_total = 2 * (u->n_in + u->n_out) + 6;
  if (!sige_pass_begin_group(pass, FALSE, error) ||
      !(temb = sige_unet_temb_forward(&u->temb, pass, t, error)))
    goto done;
  if (!(h = sige_pass_conv(pass, &u->conv_in, x, error))) goto done;
  g_ptr_array_add(hs, g_steal_pointer(&h));
  for (int i = 0; i < u->n_in; i++) {
    const sd_block *b = &u->in[i];
    const sige_tensor *in = g_ptr_array_index(hs, hs->len - 1);
    if (b->has_resample) {
      h = sige_unet_resample_conv_forward(&b->resample, &geo.down, pass, TRUE, in, FALSE, error);
    } else {
      h = res_step(&u->norms, &b->res, &geo, pass, TRUE, in, NULL, temb, error);
      h = then_tr(b->tr, &tr_g, pass, h, context, error);
    }
    if (!h) goto done;
    g_ptr_array_add(hs, g_steal_pointer(&h));
  }
  /* the middle block is dense in the published sparse pass: plain
   * ResBlocks (fresh statistics), a transformer with its GroupNorm frozen */
  h = res_step(&u->mid_norms, &u->mid1, &geo, pass, FALSE, g_ptr_array_index(hs, hs->len - 1),
               NULL, temb, error);
  if (!(h = then_tr(&u->mid_tr, NULL, pass, h, context, error))) goto done;
  {
    sige_tensor *y = res_step(&u->mid_norms, &u->mid2, &geo, pass, FALSE, h, NULL, temb, error);
    sige_tensor_free(h);
    if (!(h = y)) goto done;
  }
  for (int i = 0; i < u->n_out; i++) {
    const sd_block *b = &u->out[i];
    sige_tensor *skip = g_ptr_array_steal_index(hs, hs->len - 1);
    sige_tensor *y = res_step(&u->norms, &b->res, &geo, pass, TRUE, h, skip, temb, error);
    sige_tensor_free(skip);
    g_clear_pointer(&h, sige_tensor_free);
    if (!(h = then_tr(b->tr, &tr_g, pass, y, context, error))) goto done;
    if (b->has_resample) {
      y = sige_unet_resample_conv_forward(&b->resample, &geo.main, pass, TRUE, h, TRUE, error);
      g_clear_pointer(&h, sige_tensor_free);
      if (!(h = y)) goto done;
    }
  }
  /* out: GroupNorm with fresh statistics in every mode, SiLU, conv */
  if (!sige_pass_begin_group(pass, FALSE, error)) goto done;
  {
    g_autoptr(sige_tensor) h32 = sige_materialize(h, NULL, error);
    if (!h32) goto done;
    const int C = SIGE_C(h32);
    g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
    if (!sige_unet_norm_fresh(&u->norms, pass, h32, u->out_g, u->out_b, NULL, scale, shift,
                              error))
      goto done;
    sige_channel_affine(pass->ctx, h32, scale, shift, FALSE, SIGE_ACT_SWISH, h32);
    *out = sige_pass_conv(pass, &u->conv_out, h32, error);
    ok = *out != NULL;
  }
done:
  sige_tensor_free(h);
  sige_tensor_free(temb);
  g_ptr_array_unref(hs);
  return ok;
}

static void sd_input_shape(const void *cfg, int64_t shape[4]) {
  const sige_sd_unet_config *c = cfg;
  shape[0] = 1;
  shape[1] = c->in_channels;
  shape[2] = c->latent_h;
  shape[3] = c->latent_w;
}

static void sd_lowest_level(const void *cfg, int *h, int *w) {
  const sige_sd_unet_config *c = cfg;
  *h = c->latent_h >> (c->n_channel_mult - 1);
  *w = c->latent_w >> (c->n_channel_mult - 1);
}

static const char *key_prefix(const sige_weights *w) {
  if (sige_weights_contains(w, SD_PREFIX "time_embed.0.weight")) return SD_PREFIX;
  if (sige_weights_contains(w, "time_embed.0.weight") &&
      sige_weights_contains(w, "input_blocks.0.0.weight"))
    return "";
  return NULL;
}

static gboolean sd_recognise(const sige_weights *w) { return key_prefix(w) != NULL; }

/* A 2-D or 4-D indexed shape's first dimension, or -1. */
static int rows_of(const sige_weights *w, const char *p, const char *key) {
  g_autofree char *k = g_strconcat(p, key, NULL);
  const sige_indexed_shape s = sige_shape_of(w, k);
  return s.found && s.ndim >= 1 ? (int)s.shape[0] : -1;
}

/* Levels, widths and attention levels from the keys and shapes of the
 * openaimodel layout: input block k holds a ResBlock ("in_layers") or a
 * downsampling "op"; a level ends at its "op".  Heads are not in the
 * tensors (metadata "sige.heads", else SD 1.x's 8). */
static gboolean sd_infer(const sige_weights *w, const char *path, void *config, GError **error) {
  sige_sd_unet_config *c = config;
  sige_sd_unet_config_init(c);
  const char *p = key_prefix(w);
  if (!p) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: no '" SD_PREFIX "time_embed.0.weight': not a Stable Diffusion UNet", path);
    return FALSE;
  }
  c->sd_single_file = *p != '\0';
  g_autofree char *ck = g_strconcat(p, "input_blocks.0.0.weight", NULL);
  const sige_indexed_shape conv_in = sige_shape_of(w, ck);
  if (!conv_in.found || conv_in.ndim != 4) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: no 4-D '%s'", path, ck);
    return FALSE;
  }
  c->model_channels = (int)conv_in.shape[0];
  c->in_channels = (int)conv_in.shape[1];
  const int oc = rows_of(w, p, "out.2.weight");
  if (oc > 0) c->out_channels = oc;
  c->n_channel_mult = 0;
  c->num_res_blocks = 0;
  c->n_attention_resolutions = 0;
  int ds = 1, in_level = 0;
  gboolean attn_here = FALSE;
  for (int k = 1;; k++) {
    g_autofree char *res = g_strdup_printf("input_blocks.%d.0.in_layers.2.weight", k);
    g_autofree char *op = g_strdup_printf("input_blocks.%d.0.op.weight", k);
    g_autofree char *tr = g_strdup_printf("input_blocks.%d.1.proj_in.weight", k);
    const int rw = rows_of(w, p, res);
    const gboolean is_op = rows_of(w, p, op) > 0;
    if (rw > 0) {
      if (in_level == 0) {
        if (c->n_channel_mult == 8) break;
        c->channel_mult[c->n_channel_mult++] = rw / c->model_channels;
      }
      in_level++;
      if (rows_of(w, p, tr) > 0) attn_here = TRUE;
    }
    if (is_op || rw <= 0) {
      if (in_level == 0) break;
      if (c->num_res_blocks == 0) c->num_res_blocks = in_level;
      if (attn_here && c->n_attention_resolutions < 8)
        c->attention_resolutions[c->n_attention_resolutions++] = ds;
      in_level = 0;
      attn_here = FALSE;
      ds *= 2;
      if (!is_op) break;
    }
  }
  if (c->n_channel_mult == 0 || c->num_res_blocks == 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: no '%sinput_blocks.1.0.in_layers.2.weight': not a Stable Diffusion UNet",
                path, p);
    return FALSE;
  }
  const int ctx = rows_of(w, p, "middle_block.1.transformer_blocks.0.attn2.to_k.weight");
  g_autofree char *kk = g_strconcat(p, "middle_block.1.transformer_blocks.0.attn2.to_k.weight",
                                    NULL);
  const sige_indexed_shape ks = sige_shape_of(w, kk);
  if (ctx <= 0 || ks.ndim != 2) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: no 2-D '%s'", path, kk);
    return FALSE;
  }
  c->context_dim = (int)ks.shape[1];
  c->transformer_depth = 0;
  for (;;) {
    g_autofree char *key = g_strdup_printf("%smiddle_block.1.transformer_blocks.%d.norm1.weight",
                                           p, c->transformer_depth);
    if (!sige_weights_contains(w, key)) break;
    c->transformer_depth++;
  }
  c->num_heads = sige_meta_int(w, "sige.heads", c->num_heads);
  const int lh = sige_meta_int(w, "sige.latent_h", c->latent_h);
  const int lw = sige_meta_int(w, "sige.latent_w", c->latent_w);
  c->latent_h = lh;
  c->latent_w = lw;
  return TRUE;
}

static void sd_describe(const void *config, GString *out) {
  const sige_sd_unet_config *c = config;
  sige_describe_line(out, "model_channels", "%d", c->model_channels);
  sige_describe_ints(out, "channel_mult", c->channel_mult, c->n_channel_mult);
  sige_describe_line(out, "num_res_blocks", "%d", c->num_res_blocks);
  sige_describe_ints(out, "attention_resolutions", c->attention_resolutions,
                     c->n_attention_resolutions);
  sige_describe_line(out, "num_heads", "%d", c->num_heads);
  sige_describe_line(out, "transformer_depth", "%d", c->transformer_depth);
  sige_describe_line(out, "context_dim", "%d", c->context_dim);
  sige_describe_line(out, "channels in -> out", "%d -> %d", c->in_channels, c->out_channels);
  sige_describe_line(out, "latent", "%d x %d", c->latent_h, c->latent_w);
}

const sige_model_class sige_sd_unet_class = {
    .kind = SIGE_MODEL_SD_UNET,
    .name = "sd-unet",
    .config_size = sizeof(sige_sd_unet_config),
    .sparse_offset = offsetof(sige_sd_unet_config, sparse),
    .declare = sd_declare,
    .free = sd_free,
    .forward = sd_forward,
    .input_shape = sd_input_shape,
    .lowest_level = sd_lowest_level,
    .recognise = sd_recognise,
    .infer = sd_infer,
    .describe = sd_describe,
};
