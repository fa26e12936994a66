/* The DDPM UNet (Ho et al.; ermongroup/ddim checkpoint names).
 *
 * Written against the run primitives so that the sparse mode can reuse the
 * same forward: convolutions go through sige_run_conv, and each GroupNorm is
 * expressed as a per-channel affine (what the sparse mode freezes). */
#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"

typedef struct {
  int cin, cout;
  sige_tensor *n1_g, *n1_b, *n2_g, *n2_b;
  sige_conv_layer conv1, conv2, nin; /* nin.weight NULL when cin == cout */
  sige_tensor *temb_w, *temb_b;
} ddpm_resblock;

typedef struct {
  sige_tensor *n_g, *n_b;
  sige_conv_layer q, k, v, proj;
} ddpm_attn;

typedef struct {
  ddpm_resblock *blocks;
  ddpm_attn *attn; /* NULL when the level has no attention */
  int n_blocks;
  sige_conv_layer resample; /* downsample (down levels) / upsample conv (up levels) */
  gboolean has_resample;
} ddpm_level;

struct ddpm_model {
  sige_ddpm_config cfg;
  int temb_ch;
  sige_tensor *temb0_w, *temb0_b, *temb1_w, *temb1_b;
  sige_conv_layer conv_in, conv_out;
  ddpm_level *down, *up;
  ddpm_resblock mid1, mid2;
  ddpm_attn mid_attn;
  sige_tensor *out_g, *out_b;
};

void sige_ddpm_config_init(sige_ddpm_config *c) {
  memset(c, 0, sizeof *c);
  c->ch = 128;
  const int mult[6] = {1, 1, 2, 2, 4, 4};
  memcpy(c->ch_mult, mult, sizeof mult);
  c->n_ch_mult = 6;
  c->num_res_blocks = 2;
  c->attn_resolutions[0] = 16;
  c->n_attn_resolutions = 1;
  c->in_ch = c->out_ch = 3;
  c->image_size = 256;
  c->resamp_with_conv = TRUE;
  c->groupnorm_groups = 32;
  c->groupnorm_eps = 1e-6f;
  c->block_size_normal = 6;
  c->block_size_instance = 4;
  c->sparse_resolution_threshold = 64;
  c->diff_eps = 0.01f;
  c->mask_dilate_radius = 5;
  c->pyramid_dilation = 1;
  c->pyramid_threshold = 0.3f;
}

static void resblock_clear(ddpm_resblock *b) {
  sige_tensor_free(b->n1_g); sige_tensor_free(b->n1_b);
  sige_tensor_free(b->n2_g); sige_tensor_free(b->n2_b);
  sige_tensor_free(b->temb_w); sige_tensor_free(b->temb_b);
  sige_conv_layer_clear(&b->conv1);
  sige_conv_layer_clear(&b->conv2);
  sige_conv_layer_clear(&b->nin);
}

static void attn_clear(ddpm_attn *a) {
  sige_tensor_free(a->n_g); sige_tensor_free(a->n_b);
  sige_conv_layer_clear(&a->q); sige_conv_layer_clear(&a->k);
  sige_conv_layer_clear(&a->v); sige_conv_layer_clear(&a->proj);
}

static void level_clear(ddpm_level *l) {
  for (int j = 0; j < l->n_blocks; j++) {
    resblock_clear(&l->blocks[j]);
    if (l->attn) attn_clear(&l->attn[j]);
  }
  g_free(l->blocks);
  g_free(l->attn);
  sige_conv_layer_clear(&l->resample);
}

void sige_ddpm_free(ddpm_model *m) {
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
                              int temb_ch, ddpm_resblock *b, GError **error) {
  b->cin = cin;
  b->cout = cout;
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
      !(b->temb_w = sige_load_matrix(w, tw, cout, temb_ch, error)) ||
      !(b->temb_b = sige_load_vector(w, tb, cout, error)))
    return FALSE;
  if (cin != cout && !sige_load_conv(w, ns, cout, cin, 1, 1, 0, TRUE, &b->nin, error)) return FALSE;
  return TRUE;
}

static gboolean load_attn(const sige_weights *w, const char *p, int c, ddpm_attn *a,
                          GError **error) {
  g_autofree char *n = g_strdup_printf("%s.norm", p);
  g_autofree char *q = g_strdup_printf("%s.q", p);
  g_autofree char *k = g_strdup_printf("%s.k", p);
  g_autofree char *v = g_strdup_printf("%s.v", p);
  g_autofree char *o = g_strdup_printf("%s.proj_out", p);
  return sige_load_norm(w, n, c, &a->n_g, &a->n_b, error) &&
         sige_load_conv(w, q, c, c, 1, 1, 0, TRUE, &a->q, error) &&
         sige_load_conv(w, k, c, c, 1, 1, 0, TRUE, &a->k, error) &&
         sige_load_conv(w, v, c, c, 1, 1, 0, TRUE, &a->v, error) &&
         sige_load_conv(w, o, c, c, 1, 1, 0, TRUE, &a->proj, error);
}

static gboolean has_attn(const sige_ddpm_config *c, int res) {
  for (int i = 0; i < c->n_attn_resolutions; i++)
    if (c->attn_resolutions[i] == res) return TRUE;
  return FALSE;
}

ddpm_model *sige_ddpm_build(const sige_ddpm_config *cfg, const sige_weights *w, GError **error) {
  if (cfg->n_ch_mult < 1 || cfg->n_ch_mult > 8 || cfg->ch < 1 || cfg->num_res_blocks < 1 ||
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
  ddpm_model *m = g_new0(ddpm_model, 1);
  m->cfg = *cfg;
  const int ch = cfg->ch, L = cfg->n_ch_mult, nrb = cfg->num_res_blocks;
  m->temb_ch = 4 * ch;
  m->down = g_new0(ddpm_level, L);
  m->up = g_new0(ddpm_level, L);
  if (!(m->temb0_w = sige_load_matrix(w, "temb.dense.0.weight", m->temb_ch, ch, error)) ||
      !(m->temb0_b = sige_load_vector(w, "temb.dense.0.bias", m->temb_ch, error)) ||
      !(m->temb1_w = sige_load_matrix(w, "temb.dense.1.weight", m->temb_ch, m->temb_ch, error)) ||
      !(m->temb1_b = sige_load_vector(w, "temb.dense.1.bias", m->temb_ch, error)) ||
      !sige_load_conv(w, "conv_in", ch, cfg->in_ch, 3, 1, 1, TRUE, &m->conv_in, error))
    goto fail;
  int res = cfg->image_size, block_in = ch;
  int skip_ch[64], n_skip = 0;
  skip_ch[n_skip++] = ch;
  for (int i = 0; i < L; i++) {
    ddpm_level *l = &m->down[i];
    l->n_blocks = nrb;
    l->blocks = g_new0(ddpm_resblock, nrb);
    if (has_attn(cfg, res)) l->attn = g_new0(ddpm_attn, nrb);
    const int block_out = ch * cfg->ch_mult[i];
    for (int j = 0; j < nrb; j++) {
      g_autofree char *p = g_strdup_printf("down.%d.block.%d", i, j);
      if (!load_resblock(w, p, block_in, block_out, m->temb_ch, &l->blocks[j], error)) goto fail;
      block_in = block_out;
      if (l->attn) {
        g_autofree char *pa = g_strdup_printf("down.%d.attn.%d", i, j);
        if (!load_attn(w, pa, block_in, &l->attn[j], error)) goto fail;
      }
      skip_ch[n_skip++] = block_in;
    }
    if (i != L - 1) {
      g_autofree char *p = g_strdup_printf("down.%d.downsample.conv", i);
      if (!sige_load_conv(w, p, block_in, block_in, 3, 2, 0, TRUE, &l->resample, error)) goto fail;
      l->resample.params.pad_bottom = l->resample.params.pad_right = 1;
      l->has_resample = TRUE;
      res /= 2;
      skip_ch[n_skip++] = block_in;
    }
  }
  if (!load_resblock(w, "mid.block_1", block_in, block_in, m->temb_ch, &m->mid1, error) ||
      !load_attn(w, "mid.attn_1", block_in, &m->mid_attn, error) ||
      !load_resblock(w, "mid.block_2", block_in, block_in, m->temb_ch, &m->mid2, error))
    goto fail;
  for (int i = L - 1; i >= 0; i--) {
    ddpm_level *l = &m->up[i];
    l->n_blocks = nrb + 1;
    l->blocks = g_new0(ddpm_resblock, nrb + 1);
    if (has_attn(cfg, res)) l->attn = g_new0(ddpm_attn, nrb + 1);
    const int block_out = ch * cfg->ch_mult[i];
    for (int j = 0; j < nrb + 1; j++) {
      const int skip = skip_ch[--n_skip];
      g_autofree char *p = g_strdup_printf("up.%d.block.%d", i, j);
      if (!load_resblock(w, p, block_in + skip, block_out, m->temb_ch, &l->blocks[j], error))
        goto fail;
      block_in = block_out;
      if (l->attn) {
        g_autofree char *pa = g_strdup_printf("up.%d.attn.%d", i, j);
        if (!load_attn(w, pa, block_in, &l->attn[j], error)) goto fail;
      }
    }
    if (i != 0) {
      g_autofree char *p = g_strdup_printf("up.%d.upsample.conv", i);
      if (!sige_load_conv(w, p, block_in, block_in, 3, 1, 1, TRUE, &l->resample, error)) goto fail;
      l->has_resample = TRUE;
      res *= 2;
    }
  }
  if (!sige_load_norm(w, "norm_out", block_in, &m->out_g, &m->out_b, error) ||
      !sige_load_conv(w, "conv_out", cfg->out_ch, block_in, 3, 1, 1, TRUE, &m->conv_out, error))
    goto fail;
  return m;
fail:
  sige_ddpm_free(m);
  return NULL;
}

/* GroupNorm of (x + offset[c]) as a per-channel affine: scale[c], shift[c]
 * (offset may be NULL).  Per-channel sums in double, then combined per group,
 * so that the time-embedding offset needs no copy of x. */
static void group_norm_affine_offset(const ddpm_model *m, sige_run *run, const sige_tensor *x,
                                     const sige_tensor *gamma, const sige_tensor *beta,
                                     const float *offset, float *scale, float *shift) {
  const int C = SIGE_C(x), G = m->cfg.groupnorm_groups, cpg = C / G;
  const size_t plane = (size_t)SIGE_H(x) * SIGE_W(x);
  double *sum = g_new0(double, 2 * (size_t)C), *sq = sum + C;
  sige_channel_moments(run->ctx, x, sum, sq);
  for (int g = 0; g < G; g++) {
    double s1 = 0, s2 = 0;
    for (int c = g * cpg; c < (g + 1) * cpg; c++) {
      const double o = offset ? offset[c] : 0.0;
      s1 += sum[c] + plane * o;
      s2 += sq[c] + 2 * o * sum[c] + plane * o * o;
    }
    const double n = (double)plane * cpg, mean = s1 / n;
    const double var = fmax(s2 / n - mean * mean, 0.0);
    const double inv = 1.0 / sqrt(var + m->cfg.groupnorm_eps);
    for (int c = g * cpg; c < (g + 1) * cpg; c++) {
      const double o = offset ? offset[c] : 0.0;
      const double sc = inv * gamma->data[c];
      scale[c] = (float)sc;
      /* (x + o - mean) * sc + beta, folded into x * sc + shift */
      shift[c] = (float)((o - mean) * sc + beta->data[c]);
    }
  }
  g_free(sum);
}

/* The statistics of a norm: computed (and recorded) in full and dense
 * passes, frozen ones in sparse passes. */
static gboolean norm_stats(const ddpm_model *m, sige_run *run, const sige_tensor *x,
                           const sige_tensor *gamma, const sige_tensor *beta,
                           const float *offset, float *scale, float *shift, GError **error) {
  if (sige_run_needs_stats(run))
    group_norm_affine_offset(m, run, x, gamma, beta, offset, scale, shift);
  return sige_run_stats(run, (int)gamma->numel, scale, shift, error);
}

typedef struct {
  sige_block_geometry main, shortcut, down;
} ddpm_geometry;

/* One residual block on x (or on the channel concatenation [x, skip]), in
 * any mode.  temb_proj: this block's projection of swish(temb) (cout floats). */
static sige_tensor *resblock_forward(const ddpm_model *m, const ddpm_resblock *b,
                                     const ddpm_geometry *geo, sige_run *run, gboolean sparse,
                                     const sige_tensor *x, const sige_tensor *skip,
                                     const float *temb_proj, GError **error) {
  sige_tensor *xin = NULL, *h = NULL, *t = NULL, *xs = NULL, *out = NULL;
  g_autofree float *s1 = g_new(float, b->cin), *sh1 = g_new(float, b->cin);
  g_autofree float *s2 = g_new(float, b->cout), *sh2 = g_new(float, b->cout);
  if (!sige_run_layer(run, sparse, error)) return NULL;
  const gboolean dense = !sige_run_is_sparse(run);
  /* the concatenated input exists only where the pass is dense */
  if (skip && dense && !(xin = sige_concat_dense(run->ctx, x, skip, error))) goto out;
  if (!norm_stats(m, run, xin ? xin : x, b->n1_g, b->n1_b, NULL, s1, sh1, error)) goto out;
  if (!(h = sige_run_gather_cat(run, &geo->main, x, NULL, skip, xin, s1, sh1, SIGE_ACT_SWISH,
                                error)))
    goto out;
  if (!(t = sige_run_conv(run, &b->conv1, h, error))) goto out;
  g_clear_pointer(&h, sige_tensor_free);
  /* the time embedding is added before norm2: fold it into norm2's shift */
  if (!norm_stats(m, run, t, b->n2_g, b->n2_b, temb_proj, s2, sh2, error)) goto out;
  if (!(h = sige_run_scatter_gather(run, &geo->main, g_steal_pointer(&t), &geo->main, s2, sh2,
                                    SIGE_ACT_SWISH, error)))
    goto out;
  if (!(t = sige_run_conv(run, &b->conv2, h, error))) goto out;
  if (b->nin.weight) {
    g_autoptr(sige_tensor) g =
        sige_run_gather_cat(run, &geo->shortcut, x, NULL, skip, xin, NULL, NULL, SIGE_ACT_NONE,
                            error);
    if (!g || !(xs = sige_run_conv(run, &b->nin, g, error))) goto out;
    out = sige_run_scatter_block_residual(run, &geo->main, g_steal_pointer(&t), &geo->shortcut,
                                          g_steal_pointer(&xs), error);
  } else {
    out = sige_run_scatter(run, &geo->main, g_steal_pointer(&t), x, NULL, error);
  }
out:
  sige_tensor_free(xin);
  sige_tensor_free(h);
  sige_tensor_free(t);
  sige_tensor_free(xs);
  return out;
}

/* Attention runs densely in every mode (it is global), with the norm's
 * statistics frozen in sparse passes. */
static sige_tensor *attn_forward(const ddpm_model *m, const ddpm_attn *a, sige_run *run,
                                 const sige_tensor *x, GError **error) {
  const int C = SIGE_C(x);
  g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
  if (!sige_run_layer(run, FALSE, error) ||
      !norm_stats(m, run, x, a->n_g, a->n_b, NULL, scale, shift, error))
    return NULL;
  /* The published code stores an attention norm's statistics as a tensor
   * where it meant a per-cache dict, so its sparse pass indexes channel 0's
   * scale and shift and applies them to every channel.  Reproduced only on
   * request (the reference vectors were made that way). */
  if (!sige_run_needs_stats(run) && m->cfg.published_attention_quirk) {
    for (int c = 1; c < C; c++) {
      scale[c] = scale[0];
      shift[c] = shift[0];
    }
  }
  sige_attention_params p = {
      .groups = m->cfg.groupnorm_groups, .eps = m->cfg.groupnorm_eps,
      .norm_gamma = a->n_g, .norm_beta = a->n_b,
      .q_w = a->q.weight, .q_b = a->q.bias, .k_w = a->k.weight, .k_b = a->k.bias,
      .v_w = a->v.weight, .v_b = a->v.bias, .proj_w = a->proj.weight, .proj_b = a->proj.bias};
  sige_tensor *out = sige_tensor_new4_like(x, 1, C, SIGE_H(x), SIGE_W(x), error);
  if (out && !sige_attention_frozen(run->ctx, x, &p, scale, shift, out, error))
    g_clear_pointer(&out, sige_tensor_free);
  return out;
}

/* Stride-2 downsample (padding (0,1,0,1)) or nearest-x2 upsample + conv. */
static sige_tensor *resample_forward(const sige_conv_layer *conv, const sige_block_geometry *g,
                                     sige_run *run, gboolean sparse, const sige_tensor *x,
                                     gboolean up, GError **error) {
  if (!sige_run_layer(run, sparse, error)) return NULL;
  const int H = SIGE_H(x), W = SIGE_W(x);
  g_autofree int *idx = NULL;
  sige_resample_map map;
  if (up) {
    idx = g_new(int, 2 * (H + W));
    sige_nearest_indices(H, 2 * H, idx);
    sige_nearest_indices(W, 2 * W, idx + 2 * H);
    map = (sige_resample_map){2 * H, 2 * W, idx, idx + 2 * H};
  }
  sige_tensor *h = sige_run_gather(run, g, x, up ? &map : NULL, NULL, NULL, SIGE_ACT_NONE, error);
  if (!h) return NULL;
  sige_tensor *t = sige_run_conv(run, conv, h, error);
  sige_tensor_free(h);
  return t ? sige_run_scatter(run, g, t, NULL, NULL, error) : NULL;
}

gboolean sige_ddpm_forward(const ddpm_model *m, sige_run *run, const sige_tensor *x, float t,
                           sige_tensor **out, GError **error) {
  const sige_ddpm_config *c = &m->cfg;
  *out = NULL;
  if (x->ndim != 4 || SIGE_N(x) != 1 || SIGE_C(x) != c->in_ch || SIGE_H(x) != c->image_size ||
      SIGE_W(x) != c->image_size) {
    char buf[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE, "DDPM UNet input is %s; expected [1, %d, %d, %d]",
                sige_tensor_shape_str(x, buf, sizeof buf), c->in_ch, c->image_size, c->image_size);
    return FALSE;
  }
  const int L = c->n_ch_mult, nrb = c->num_res_blocks, thr = c->sparse_resolution_threshold;
  ddpm_geometry geo;
  sige_block_geometry_init(&geo.main, 3, 1, 1, c->block_size_normal);
  sige_block_geometry_init(&geo.shortcut, 1, 1, 0, c->block_size_instance);
  sige_block_geometry_init(&geo.down, 3, 2, 0, c->block_size_normal);
  gboolean ok = FALSE;
  /* hs holds the skip tensors; some are views on caches (not owned data) */
  GPtrArray *hs = g_ptr_array_new_with_free_func((GDestroyNotify)sige_tensor_free);
  sige_tensor *h = NULL, *e = NULL, *tmp = NULL, *temb = NULL, *a = NULL;
  float *proj = NULL;
  int64_t s1[2] = {1, c->ch}, s2[2] = {1, m->temb_ch};
  run->layers_total = L * (2 * nrb + 3) + 6;
  if (!sige_run_layer(run, FALSE, error)) goto done;
  if (!(e = sige_tensor_new(2, s1, error)) || !(tmp = sige_tensor_new(2, s2, error)) ||
      !(temb = sige_tensor_new(2, s2, error)))
    goto done;
  sige_timestep_embedding(&t, 1, c->ch, e);
  if (!sige_linear(run->ctx, e, m->temb0_w, m->temb0_b, tmp, error)) goto done;
  sige_activation(run->ctx, tmp, SIGE_ACT_SWISH, tmp);
  if (!sige_linear(run->ctx, tmp, m->temb1_w, m->temb1_b, temb, error)) goto done;
  sige_activation(run->ctx, temb, SIGE_ACT_SWISH, temb);

  /* swish(temb) projected for one block: only the dense and full passes use it */
#define TEMB_PROJ(blk)                                                                   \
  do {                                                                                   \
    int64_t ps[2] = {1, (blk)->cout};                                                    \
    g_autoptr(sige_tensor) pt = sige_tensor_new(2, ps, error);                           \
    if (!pt || !sige_linear(run->ctx, temb, (blk)->temb_w, (blk)->temb_b, pt, error))    \
      goto done;                                                                         \
    g_free(proj);                                                                        \
    proj = g_memdup2(pt->data, sizeof(float) * (blk)->cout);                             \
  } while (0)

  if (!(h = sige_run_conv(run, &m->conv_in, x, error))) goto done;
  g_ptr_array_add(hs, g_steal_pointer(&h));
  int res = c->image_size;
  for (int i = 0; i < L; i++) {
    const ddpm_level *l = &m->down[i];
    for (int j = 0; j < nrb; j++) {
      TEMB_PROJ(&l->blocks[j]);
      h = resblock_forward(m, &l->blocks[j], &geo, run, res >= thr,
                           g_ptr_array_index(hs, hs->len - 1), NULL, proj, error);
      if (!h) goto done;
      if (l->attn) {
        a = attn_forward(m, &l->attn[j], run, h, error);
        g_clear_pointer(&h, sige_tensor_free);
        if (!(h = g_steal_pointer(&a))) goto done;
      }
      g_ptr_array_add(hs, g_steal_pointer(&h));
    }
    if (l->has_resample) {
      h = resample_forward(&l->resample, &geo.down, run, res >= thr,
                           g_ptr_array_index(hs, hs->len - 1), FALSE, error);
      if (!h) goto done;
      g_ptr_array_add(hs, g_steal_pointer(&h));
      res /= 2;
    }
  }
  TEMB_PROJ(&m->mid1);
  h = resblock_forward(m, &m->mid1, &geo, run, FALSE, g_ptr_array_index(hs, hs->len - 1), NULL,
                       proj, error);
  if (!h || !(a = attn_forward(m, &m->mid_attn, run, h, error))) goto done;
  g_clear_pointer(&h, sige_tensor_free);
  TEMB_PROJ(&m->mid2);
  h = resblock_forward(m, &m->mid2, &geo, run, FALSE, a, NULL, proj, error);
  g_clear_pointer(&a, sige_tensor_free);
  if (!h) goto done;
  for (int i = L - 1; i >= 0; i--) {
    const ddpm_level *l = &m->up[i];
    for (int j = 0; j < nrb + 1; j++) {
      TEMB_PROJ(&l->blocks[j]);
      sige_tensor *skip = g_ptr_array_steal_index(hs, hs->len - 1);
      sige_tensor *y = resblock_forward(m, &l->blocks[j], &geo, run, res >= thr, h, skip, proj,
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
      /* the upsample conv is sparse at every level (as in the published code) */
      sige_tensor *u = resample_forward(&l->resample, &geo.main, run, TRUE, h, TRUE, error);
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
    g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
    group_norm_affine_offset(m, run, h, m->out_g, m->out_b, NULL, scale, shift);
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
  g_free(proj);
  g_ptr_array_unref(hs);
  return ok;
}
