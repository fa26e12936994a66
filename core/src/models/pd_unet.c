/* The Progressive-Distillation UNet of the published SIGE code
 * (diffusion/models/pd_arch), the sibling of ddpm_unet.c.
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
 * statistics) and conv_out are dense.  In a sparse pass the pooled input of a
 * down block (and its residual) is computed densely, as the published code
 * does; an up block gathers through a nearest-neighbour index map instead of
 * materialising the upsampled tensor. */
#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"

typedef enum { PD_RESAMPLE_NONE, PD_RESAMPLE_DOWN, PD_RESAMPLE_UP } pd_resample;

typedef struct {
  int cin, cout;
  pd_resample resample;
  sige_tensor *n1_g, *n1_b, *n2_g, *n2_b;
  sige_conv_layer conv1, conv2, nin; /* nin.weight NULL when cin == cout */
  sige_tensor *temb_w, *temb_b;      /* [2 cout, temb_ch]: scale | shift */
} pd_resblock;

typedef struct {
  int heads, head_dim;
  sige_tensor *n_g, *n_b;
  sige_conv_layer qkv, proj; /* qkv: [3 C, C, 1, 1] (q | k | v) */
} pd_attn;

typedef struct {
  pd_resblock *blocks;
  pd_attn *attn; /* NULL when the level has no attention */
  int n_blocks;
  pd_resblock resample; /* down levels: downsample; up levels: upsample */
  gboolean has_resample;
} pd_level;

struct pd_model {
  sige_pd_config cfg;
  sige_tensor *temb0_w, *temb0_b, *temb1_w, *temb1_b;
  sige_conv_layer conv_in, conv_out;
  pd_level *down, *up;
  pd_resblock mid1, mid2;
  pd_attn mid_attn;
  sige_tensor *out_g, *out_b;
};

void sige_pd_config_init(sige_pd_config *c) {
  memset(c, 0, sizeof *c);
  /* diffusion/configs/church_pd128-sige.yml */
  c->ch = 64;
  const int mult[5] = {1, 2, 4, 6, 8};
  memcpy(c->ch_mult, mult, sizeof mult);
  c->n_ch_mult = 5;
  c->num_res_blocks = 3;
  const int attn[3] = {8, 16, 32};
  memcpy(c->attn_resolutions, attn, sizeof attn);
  c->n_attn_resolutions = 3;
  c->head_dim = 64;
  c->temb_ch = 768;
  c->in_ch = 3;
  c->out_ch = 6;
  c->image_size = 128;
  c->groupnorm_groups = 32;
  c->groupnorm_eps = 1e-6f;
  c->block_size_normal = 6;
  c->block_size_instance = 4;
  c->sparse_resolution_threshold = 64;
  c->diff_eps = 0.02f;
  c->mask_dilate_radius = 2;
  c->pyramid_dilation = 1;
  c->pyramid_threshold = 0.3f;
}

static void resblock_clear(pd_resblock *b) {
  sige_tensor_free(b->n1_g); sige_tensor_free(b->n1_b);
  sige_tensor_free(b->n2_g); sige_tensor_free(b->n2_b);
  sige_tensor_free(b->temb_w); sige_tensor_free(b->temb_b);
  sige_conv_layer_clear(&b->conv1);
  sige_conv_layer_clear(&b->conv2);
  sige_conv_layer_clear(&b->nin);
}

static void attn_clear(pd_attn *a) {
  sige_tensor_free(a->n_g); sige_tensor_free(a->n_b);
  sige_conv_layer_clear(&a->qkv);
  sige_conv_layer_clear(&a->proj);
}

static void level_clear(pd_level *l) {
  for (int j = 0; j < l->n_blocks; j++) {
    resblock_clear(&l->blocks[j]);
    if (l->attn) attn_clear(&l->attn[j]);
  }
  g_free(l->blocks);
  g_free(l->attn);
  resblock_clear(&l->resample);
}

void sige_pd_free(pd_model *m) {
  if (!m) return;
  sige_tensor_free(m->temb0_w); sige_tensor_free(m->temb0_b);
  sige_tensor_free(m->temb1_w); sige_tensor_free(m->temb1_b);
  sige_conv_layer_clear(&m->conv_in);
  sige_conv_layer_clear(&m->conv_out);
  for (int i = 0; m->down && i < m->cfg.n_ch_mult; i++) level_clear(&m->down[i]);
  for (int i = 0; m->up && i < m->cfg.n_ch_mult; i++) level_clear(&m->up[i]);
  g_free(m->down);
  g_free(m->up);
  resblock_clear(&m->mid1);
  resblock_clear(&m->mid2);
  attn_clear(&m->mid_attn);
  sige_tensor_free(m->out_g);
  sige_tensor_free(m->out_b);
  g_free(m);
}

static gboolean load_resblock(const sige_weights *w, const char *p, int cin, int cout,
                              pd_resample resample, int temb_ch, pd_resblock *b, GError **error) {
  b->cin = cin;
  b->cout = cout;
  b->resample = resample;
  g_autofree char *n1 = g_strdup_printf("%s.norm1", p);
  g_autofree char *n2 = g_strdup_printf("%s.norm2", p);
  g_autofree char *c1 = g_strdup_printf("%s.conv1", p);
  g_autofree char *c2 = g_strdup_printf("%s.conv2", p);
  g_autofree char *ns = g_strdup_printf("%s.nin_shortcut", p);
  g_autofree char *tw = g_strdup_printf("%s.temb_proj.weight", p);
  g_autofree char *tb = g_strdup_printf("%s.temb_proj.bias", p);
  if (!sige_load_norm(w, n1, cin, &b->n1_g, &b->n1_b, error) ||
      !sige_load_norm(w, n2, cout, &b->n2_g, &b->n2_b, error) ||
      !sige_load_conv(w, c1, cout, cin, 3, 1, 1, TRUE, &b->conv1, error) ||
      !sige_load_conv(w, c2, cout, cout, 3, 1, 1, TRUE, &b->conv2, error) ||
      !(b->temb_w = sige_load_matrix(w, tw, 2 * cout, temb_ch, error)) ||
      !(b->temb_b = sige_load_vector(w, tb, 2 * cout, error)))
    return FALSE;
  if (cin != cout && !sige_load_conv(w, ns, cout, cin, 1, 1, 0, TRUE, &b->nin, error)) return FALSE;
  return TRUE;
}

static gboolean load_attn(const sige_pd_config *cfg, const sige_weights *w, const char *p, int c,
                          pd_attn *a, GError **error) {
  int hd = cfg->head_dim, nh = cfg->num_heads;
  if (hd > 0 && c % hd == 0) {
    nh = c / hd;
  } else if (hd <= 0 && nh > 0 && c % nh == 0) {
    hd = c / nh;
  } else {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "%s: %d channels do not split into heads (head_dim %d, num_heads %d)", p, c,
                cfg->head_dim, cfg->num_heads);
    return FALSE;
  }
  a->heads = nh;
  a->head_dim = hd;
  g_autofree char *n = g_strdup_printf("%s.norm", p);
  g_autofree char *q = g_strdup_printf("%s.qkv", p);
  g_autofree char *o = g_strdup_printf("%s.proj_out", p);
  return sige_load_norm(w, n, c, &a->n_g, &a->n_b, error) &&
         sige_load_conv(w, q, 3 * c, c, 1, 1, 0, TRUE, &a->qkv, error) &&
         sige_load_conv(w, o, c, c, 1, 1, 0, TRUE, &a->proj, error);
}

static gboolean has_attn(const sige_pd_config *c, int res) {
  for (int i = 0; i < c->n_attn_resolutions; i++)
    if (c->attn_resolutions[i] == res) return TRUE;
  return FALSE;
}

pd_model *sige_pd_build(const sige_pd_config *cfg, const sige_weights *w, GError **error) {
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
  pd_model *m = g_new0(pd_model, 1);
  m->cfg = *cfg;
  const int ch = cfg->ch, L = cfg->n_ch_mult, nrb = cfg->num_res_blocks, tc = cfg->temb_ch;
  m->down = g_new0(pd_level, L);
  m->up = g_new0(pd_level, L);
  if (!(m->temb0_w = sige_load_matrix(w, "temb.dense.0.weight", tc, ch, error)) ||
      !(m->temb0_b = sige_load_vector(w, "temb.dense.0.bias", tc, error)) ||
      !(m->temb1_w = sige_load_matrix(w, "temb.dense.1.weight", tc, tc, error)) ||
      !(m->temb1_b = sige_load_vector(w, "temb.dense.1.bias", tc, error)) ||
      !sige_load_conv(w, "conv_in", ch, cfg->in_ch, 3, 1, 1, TRUE, &m->conv_in, error))
    goto fail;
  int res = cfg->image_size, block_in = ch;
  int skip_ch[128], n_skip = 0;
  skip_ch[n_skip++] = ch;
  for (int i = 0; i < L; i++) {
    pd_level *l = &m->down[i];
    l->n_blocks = nrb;
    l->blocks = g_new0(pd_resblock, nrb);
    if (has_attn(cfg, res)) l->attn = g_new0(pd_attn, nrb);
    const int block_out = ch * cfg->ch_mult[i];
    for (int j = 0; j < nrb; j++) {
      g_autofree char *p = g_strdup_printf("down.%d.block.%d", i, j);
      if (!load_resblock(w, p, block_in, block_out, PD_RESAMPLE_NONE, tc, &l->blocks[j], error))
        goto fail;
      block_in = block_out;
      if (l->attn) {
        g_autofree char *pa = g_strdup_printf("down.%d.attn.%d", i, j);
        if (!load_attn(cfg, w, pa, block_in, &l->attn[j], error)) goto fail;
      }
      skip_ch[n_skip++] = block_in;
    }
    if (i != L - 1) {
      g_autofree char *p = g_strdup_printf("down.%d.downsample", i);
      if (!load_resblock(w, p, block_in, block_in, PD_RESAMPLE_DOWN, tc, &l->resample, error))
        goto fail;
      l->has_resample = TRUE;
      res /= 2;
      skip_ch[n_skip++] = block_in;
    }
  }
  if (!load_resblock(w, "mid.block_1", block_in, block_in, PD_RESAMPLE_NONE, tc, &m->mid1, error) ||
      !load_attn(cfg, w, "mid.attn_1", block_in, &m->mid_attn, error) ||
      !load_resblock(w, "mid.block_2", block_in, block_in, PD_RESAMPLE_NONE, tc, &m->mid2, error))
    goto fail;
  for (int i = L - 1; i >= 0; i--) {
    pd_level *l = &m->up[i];
    l->n_blocks = nrb + 1;
    l->blocks = g_new0(pd_resblock, nrb + 1);
    if (has_attn(cfg, res)) l->attn = g_new0(pd_attn, nrb + 1);
    const int block_out = ch * cfg->ch_mult[i];
    for (int j = 0; j < nrb + 1; j++) {
      const int skip = skip_ch[--n_skip];
      g_autofree char *p = g_strdup_printf("up.%d.block.%d", i, j);
      if (!load_resblock(w, p, block_in + skip, block_out, PD_RESAMPLE_NONE, tc, &l->blocks[j],
                         error))
        goto fail;
      block_in = block_out;
      if (l->attn) {
        g_autofree char *pa = g_strdup_printf("up.%d.attn.%d", i, j);
        if (!load_attn(cfg, w, pa, block_in, &l->attn[j], error)) goto fail;
      }
    }
    if (i != 0) {
      g_autofree char *p = g_strdup_printf("up.%d.upsample", i);
      if (!load_resblock(w, p, block_in, block_out, PD_RESAMPLE_UP, tc, &l->resample, error))
        goto fail;
      l->has_resample = TRUE;
      res *= 2;
    }
  }
  if (!sige_load_norm(w, "norm_out", block_in, &m->out_g, &m->out_b, error) ||
      !sige_load_conv(w, "conv_out", cfg->out_ch, block_in, 3, 1, 1, TRUE, &m->conv_out, error))
    goto fail;
  return m;
fail:
  sige_pd_free(m);
  return NULL;
}

/* ---- layers ------------------------------------------------------------ */

static gboolean check_groups(const pd_model *m, int C, GError **error) {
  if (C % m->cfg.groupnorm_groups == 0) return TRUE;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              "PD UNet: %d channels do not split into %d GroupNorm groups", C,
              m->cfg.groupnorm_groups);
  return FALSE;
}

/* A GroupNorm as a per-channel affine, computed (and recorded) in full and
 * dense passes and frozen in sparse ones.  mod (2 C floats: scale | shift,
 * or NULL) is the time modulation applied after the norm:
 * (x * s + b) * (1 + ms) + mt = x * s (1 + ms) + (b (1 + ms) + mt). */
static gboolean norm_stats(const pd_model *m, sige_run *run, const sige_tensor *x,
                           const sige_tensor *gamma, const sige_tensor *beta, const float *mod,
                           float *scale, float *shift, GError **error) {
  const int C = (int)gamma->numel;
  if (sige_run_needs_stats(run)) {
    if (!check_groups(m, C, error)) return FALSE;
    sige_group_norm_affine(run->ctx, x, m->cfg.groupnorm_groups, m->cfg.groupnorm_eps, gamma,
                           beta, scale, shift);
    if (mod) {
      for (int c = 0; c < C; c++) {
        const float f = 1.0f + mod[c];
        scale[c] *= f;
        shift[c] = shift[c] * f + mod[C + c];
      }
    }
  }
  return sige_run_stats(run, C, scale, shift, error);
}

/* avg_pool2x2(act(x * scale + shift)) as a new dense tensor (x may be F16). */
static sige_tensor *pooled(sige_run *run, const sige_tensor *x, const float *scale,
                           const float *shift, sige_act act, GError **error) {
  g_autoptr(sige_tensor) z = sige_materialize(x, NULL, error);
  if (!z) return NULL;
  if (scale) sige_channel_affine(run->ctx, z, scale, shift, FALSE, act, z);
  sige_tensor *out = sige_tensor_new4_like(z, 1, SIGE_C(z), SIGE_H(z) / 2, SIGE_W(z) / 2, error);
  if (out) sige_avg_pool2x2(run->ctx, z, out);
  return out;
}

typedef struct {
  sige_block_geometry main, shortcut;
} pd_geometry;

/* One residual block on x (or on the channel concatenation [x, skip]), in
 * any mode.  mod: this block's temb_proj(swish(temb)) (2 cout floats). */
static sige_tensor *resblock_forward(const pd_model *m, const pd_resblock *b,
                                     const pd_geometry *geo, sige_run *run, gboolean sparse,
                                     const sige_tensor *x, const sige_tensor *skip,
                                     const float *mod, GError **error) {
  sige_tensor *xin = NULL, *h = NULL, *t = NULL, *xs = NULL, *res = NULL, *out = NULL;
  g_autofree float *s1 = g_new(float, b->cin), *sh1 = g_new(float, b->cin);
  g_autofree float *s2 = g_new(float, b->cout), *sh2 = g_new(float, b->cout);
  g_autofree int *idx = NULL;
  sige_resample_map map;
  if (!sige_run_layer(run, sparse, error)) return NULL;
  const gboolean dense = !sige_run_is_sparse(run);
  if (skip && b->resample != PD_RESAMPLE_NONE) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "PD UNet: a resampling block has no skip");
    return NULL;
  }
  if (b->resample != PD_RESAMPLE_NONE && b->nin.weight) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "PD UNet: resampling blocks must keep their width (%d -> %d)", b->cin, b->cout);
    return NULL;
  }
  if (b->resample == PD_RESAMPLE_UP) {
    const int H = SIGE_H(x), W = SIGE_W(x);
    idx = g_new(int, 2 * (H + W));
    sige_nearest_indices(H, 2 * H, idx);
    sige_nearest_indices(W, 2 * W, idx + 2 * H);
    map = (sige_resample_map){2 * H, 2 * W, idx, idx + 2 * H};
  }
  /* the concatenated input exists only where the pass is dense */
  if (skip && dense && !(xin = sige_concat_dense(run->ctx, x, skip, error))) goto out;
  if (!norm_stats(m, run, xin ? xin : x, b->n1_g, b->n1_b, NULL, s1, sh1, error)) goto out;
  switch (b->resample) {
    case PD_RESAMPLE_NONE:
      h = sige_run_gather_cat(run, &geo->main, x, NULL, skip, xin, s1, sh1, SIGE_ACT_SWISH, error);
      break;
    case PD_RESAMPLE_UP: /* nearest x2 commutes with the per-channel affine and swish */
      h = sige_run_gather(run, &geo->main, x, &map, s1, sh1, SIGE_ACT_SWISH, error);
      break;
    case PD_RESAMPLE_DOWN: { /* pooling does not: pool the activated input densely */
      sige_tensor *p = pooled(run, x, s1, sh1, SIGE_ACT_SWISH, error);
      if (!p || dense) {
        h = p;
        break;
      }
      h = sige_run_gather(run, &geo->main, p, NULL, NULL, NULL, SIGE_ACT_NONE, error);
      sige_tensor_free(p);
      break;
    }
  }
  if (!h || !(t = sige_run_conv(run, &b->conv1, h, error))) goto out;
  g_clear_pointer(&h, sige_tensor_free);
  if (!norm_stats(m, run, t, b->n2_g, b->n2_b, mod, s2, sh2, error)) goto out;
  if (!(h = sige_run_scatter_gather(run, &geo->main, g_steal_pointer(&t), &geo->main, s2, sh2,
                                    SIGE_ACT_SWISH, error)))
    goto out;
  if (!(t = sige_run_conv(run, &b->conv2, h, error))) goto out;
  switch (b->resample) {
    case PD_RESAMPLE_NONE:
      if (b->nin.weight) {
        g_autoptr(sige_tensor) g = sige_run_gather_cat(run, &geo->shortcut, x, NULL, skip, xin,
                                                       NULL, NULL, SIGE_ACT_NONE, error);
        if (!g || !(xs = sige_run_conv(run, &b->nin, g, error))) goto out;
        out = sige_run_scatter_block_residual(run, &geo->main, g_steal_pointer(&t),
                                              &geo->shortcut, g_steal_pointer(&xs), error);
      } else {
        out = sige_run_scatter(run, &geo->main, g_steal_pointer(&t), x, NULL, error);
      }
      break;
    case PD_RESAMPLE_UP:
      out = sige_run_scatter(run, &geo->main, g_steal_pointer(&t), x, &map, error);
      break;
    case PD_RESAMPLE_DOWN:
      if ((res = pooled(run, x, NULL, NULL, SIGE_ACT_NONE, error)))
        out = sige_run_scatter(run, &geo->main, g_steal_pointer(&t), res, NULL, error);
      break;
  }
out:
  sige_tensor_free(xin);
  sige_tensor_free(h);
  sige_tensor_free(t);
  sige_tensor_free(xs);
  sige_tensor_free(res);
  return out;
}

/* Attention runs densely in every mode, with the norm's statistics frozen
 * in sparse passes (per channel: the published PD code keys them by cache
 * correctly, unlike its DDPM UNet). */
static sige_tensor *attn_forward(const pd_model *m, const pd_attn *a, sige_run *run,
                                 const sige_tensor *x_in, GError **error) {
  const int C = SIGE_C(x_in);
  g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
  if (!sige_run_layer(run, FALSE, error)) return NULL;
  g_autoptr(sige_tensor) x32 = NULL;
  const sige_tensor *x = x_in;
  if (x->storage == SIGE_STORAGE_F16 && !(x = x32 = sige_tensor_to_f32(x_in, error))) return NULL;
  if (!norm_stats(m, run, x, a->n_g, a->n_b, NULL, scale, shift, error)) return NULL;
  sige_tensor *out = sige_tensor_new4_like(x, 1, C, SIGE_H(x), SIGE_W(x), error);
  if (out && !sige_multihead_attention(run->ctx, x, a->qkv.weight, a->qkv.bias, a->proj.weight,
                                       a->proj.bias, a->heads, a->head_dim, scale, shift, out,
                                       error))
    g_clear_pointer(&out, sige_tensor_free);
  return out;
}

gboolean sige_pd_forward(const pd_model *m, sige_run *run, const sige_tensor *x, float logsnr,
                         sige_tensor **out, GError **error) {
  const sige_pd_config *c = &m->cfg;
  *out = NULL;
  if (x->ndim != 4 || SIGE_N(x) != 1 || SIGE_C(x) != c->in_ch || SIGE_H(x) != c->image_size ||
      SIGE_W(x) != c->image_size) {
    char buf[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE, "PD UNet input is %s; expected [1, %d, %d, %d]",
                sige_tensor_shape_str(x, buf, sizeof buf), c->in_ch, c->image_size, c->image_size);
    return FALSE;
  }
  const int L = c->n_ch_mult, nrb = c->num_res_blocks, thr = c->sparse_resolution_threshold;
  pd_geometry geo;
  sige_block_geometry_init(&geo.main, 3, 1, 1, c->block_size_normal);
  sige_block_geometry_init(&geo.shortcut, 1, 1, 0, c->block_size_instance);
  gboolean ok = FALSE;
  /* hs holds the skip tensors; some are views on caches (not owned data) */
  GPtrArray *hs = g_ptr_array_new_with_free_func((GDestroyNotify)sige_tensor_free);
  sige_tensor *h = NULL, *e = NULL, *tmp = NULL, *temb = NULL, *a = NULL;
  float *mod = NULL;
  int64_t s1[2] = {1, c->ch}, s2[2] = {1, c->temb_ch};
  run->layers_total = L * (2 * nrb + 3) + 6;
  if (!sige_run_layer(run, FALSE, error)) goto done;
  if (!(e = sige_tensor_new(2, s1, error)) || !(tmp = sige_tensor_new(2, s2, error)) ||
      !(temb = sige_tensor_new(2, s2, error)))
    goto done;
  {
    /* "inv_cos": the published float32 maths, clip to [-20, 20] */
    const float ls = fminf(fmaxf(logsnr, -20.0f), 20.0f);
    const float u = atanf(expf(-0.5f * ls)) / (float)(0.5 * G_PI);
    const float tin = u * 1000.0f;
    sige_timestep_embedding(&tin, 1, c->ch, e);
  }
  if (!sige_linear(run->ctx, e, m->temb0_w, m->temb0_b, tmp, error)) goto done;
  sige_activation(run->ctx, tmp, SIGE_ACT_SWISH, tmp);
  if (!sige_linear(run->ctx, tmp, m->temb1_w, m->temb1_b, temb, error)) goto done;
  /* every block projects swish(temb) */
  sige_activation(run->ctx, temb, SIGE_ACT_SWISH, temb);

  /* a block's modulation (scale | shift); only the dense and full passes use it */
#define TEMB_PROJ(blk)                                                                   \
  do {                                                                                   \
    int64_t ps[2] = {1, 2 * (blk)->cout};                                                \
    g_autoptr(sige_tensor) pt = sige_tensor_new(2, ps, error);                           \
    if (!pt || !sige_linear(run->ctx, temb, (blk)->temb_w, (blk)->temb_b, pt, error))    \
      goto done;                                                                         \
    g_free(mod);                                                                         \
    mod = g_memdup2(pt->data, sizeof(float) * 2 * (blk)->cout);                          \
  } while (0)

  if (!(h = sige_run_conv(run, &m->conv_in, x, error))) goto done;
  g_ptr_array_add(hs, g_steal_pointer(&h));
  int res = c->image_size;
  for (int i = 0; i < L; i++) {
    const pd_level *l = &m->down[i];
    for (int j = 0; j < nrb; j++) {
      TEMB_PROJ(&l->blocks[j]);
      h = resblock_forward(m, &l->blocks[j], &geo, run, res >= thr,
                           g_ptr_array_index(hs, hs->len - 1), NULL, mod, error);
      if (!h) goto done;
      if (l->attn) {
        a = attn_forward(m, &l->attn[j], run, h, error);
        g_clear_pointer(&h, sige_tensor_free);
        if (!(h = g_steal_pointer(&a))) goto done;
      }
      g_ptr_array_add(hs, g_steal_pointer(&h));
    }
    if (l->has_resample) {
      /* sparse by its input resolution (its convolutions run at res / 2) */
      TEMB_PROJ(&l->resample);
      h = resblock_forward(m, &l->resample, &geo, run, res >= thr,
                           g_ptr_array_index(hs, hs->len - 1), NULL, mod, error);
      if (!h) goto done;
      g_ptr_array_add(hs, g_steal_pointer(&h));
      res /= 2;
    }
  }
  TEMB_PROJ(&m->mid1);
  h = resblock_forward(m, &m->mid1, &geo, run, res >= thr, g_ptr_array_index(hs, hs->len - 1),
                       NULL, mod, error);
  if (!h || !(a = attn_forward(m, &m->mid_attn, run, h, error))) goto done;
  g_clear_pointer(&h, sige_tensor_free);
  TEMB_PROJ(&m->mid2);
  h = resblock_forward(m, &m->mid2, &geo, run, res >= thr, a, NULL, mod, error);
  g_clear_pointer(&a, sige_tensor_free);
  if (!h) goto done;
  for (int i = L - 1; i >= 0; i--) {
    const pd_level *l = &m->up[i];
    for (int j = 0; j < nrb + 1; j++) {
      TEMB_PROJ(&l->blocks[j]);
      sige_tensor *skip = g_ptr_array_steal_index(hs, hs->len - 1);
      sige_tensor *y = resblock_forward(m, &l->blocks[j], &geo, run, res >= thr, h, skip, mod,
                                        error);
      sige_tensor_free(skip);
      g_clear_pointer(&h, sige_tensor_free);
      if (!(h = y)) goto done;
      if (l->attn) {
        a = attn_forward(m, &l->attn[j], run, h, error);
        g_clear_pointer(&h, sige_tensor_free);
        if (!(h = g_steal_pointer(&a))) goto done;
      }
    }
    if (l->has_resample) {
      /* sparse by its input resolution (its convolutions run at res * 2) */
      TEMB_PROJ(&l->resample);
      sige_tensor *u = resblock_forward(m, &l->resample, &geo, run, res >= thr, h, NULL, mod,
                                        error);
      g_clear_pointer(&h, sige_tensor_free);
      if (!(h = u)) goto done;
      res *= 2;
    }
  }
  /* norm_out uses fresh statistics in every mode */
  if (!sige_run_layer(run, FALSE, error)) goto done;
  if (h->storage == SIGE_STORAGE_F16) { /* an F16 cache view (fp16 caches) */
    sige_tensor *h32 = sige_tensor_to_f32(h, error);
    sige_tensor_free(h);
    if (!(h = h32)) goto done;
  }
  {
    const int C = SIGE_C(h);
    if (!check_groups(m, C, error)) goto done;
    g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
    sige_group_norm_affine(run->ctx, h, c->groupnorm_groups, c->groupnorm_eps, m->out_g, m->out_b,
                           scale, shift);
    g_autoptr(sige_tensor) n = sige_tensor_new4_like(h, 1, C, SIGE_H(h), SIGE_W(h), error);
    if (!n) goto done;
    sige_channel_affine(run->ctx, h, scale, shift, FALSE, SIGE_ACT_SWISH, n);
    *out = sige_run_conv(run, &m->conv_out, n, error);
    ok = *out != NULL;
  }
#undef TEMB_PROJ
done:
  sige_tensor_free(h);
  sige_tensor_free(a);
  sige_tensor_free(e);
  sige_tensor_free(tmp);
  sige_tensor_free(temb);
  g_free(mod);
  g_ptr_array_unref(hs);
  return ok;
}
