/* The diffusion UNet blocks (see unet_blocks.h).
 *
 * Each block is written once against the run primitives: convolutions go
 * through sige_run_conv, and each GroupNorm is expressed as a per-channel
 * affine (what the sparse mode freezes). */
#include "unet_blocks.h"

#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"

/* ---- declarations ------------------------------------------------------- */

void sige_unet_resblock_declare(sige_param_list *l, sige_unet_resblock *b, const char *p, int cin,
                                int cout, int temb_ch, int temb_out, sige_unet_resample resample) {
  b->cin = cin;
  b->cout = cout;
  b->resample = resample;
  /* in forward order (the random-weight generator draws in list order) */
  sige_params_norm(l, &b->n1_g, &b->n1_b, cin, "%s.norm1", p);
  sige_params_conv(l, &b->conv1, cout, cin, 3, 1, 1, TRUE, "%s.conv1", p);
  sige_params_linear(l, &b->temb_w, &b->temb_b, temb_out, temb_ch, "%s.temb_proj", p);
  sige_params_norm(l, &b->n2_g, &b->n2_b, cout, "%s.norm2", p);
  sige_params_conv(l, &b->conv2, cout, cout, 3, 1, 1, TRUE, "%s.conv2", p);
  if (cin != cout) sige_params_conv(l, &b->nin, cout, cin, 1, 1, 0, TRUE, "%s.nin_shortcut", p);
}

void sige_unet_resblock_clear(sige_unet_resblock *b) {
  sige_tensor_free(b->n1_g);
  sige_tensor_free(b->n1_b);
  sige_tensor_free(b->n2_g);
  sige_tensor_free(b->n2_b);
  sige_tensor_free(b->temb_w);
  sige_tensor_free(b->temb_b);
  sige_conv_layer_clear(&b->conv1);
  sige_conv_layer_clear(&b->conv2);
  sige_conv_layer_clear(&b->nin);
}

void sige_unet_attn_declare(sige_param_list *l, sige_unet_attn *a, const char *p, int c, int heads,
                            int head_dim) {
  a->heads = heads;
  a->head_dim = head_dim;
  sige_params_norm(l, &a->n_g, &a->n_b, c, "%s.norm", p);
  if (heads > 0) {
    sige_params_conv(l, &a->qkv, 3 * c, c, 1, 1, 0, TRUE, "%s.qkv", p);
  } else {
    sige_params_conv(l, &a->q, c, c, 1, 1, 0, TRUE, "%s.q", p);
    sige_params_conv(l, &a->k, c, c, 1, 1, 0, TRUE, "%s.k", p);
    sige_params_conv(l, &a->v, c, c, 1, 1, 0, TRUE, "%s.v", p);
  }
  sige_params_conv(l, &a->proj, c, c, 1, 1, 0, TRUE, "%s.proj_out", p);
}

void sige_unet_attn_clear(sige_unet_attn *a) {
  sige_tensor_free(a->n_g);
  sige_tensor_free(a->n_b);
  sige_conv_layer_clear(&a->q);
  sige_conv_layer_clear(&a->k);
  sige_conv_layer_clear(&a->v);
  sige_conv_layer_clear(&a->qkv);
  sige_conv_layer_clear(&a->proj);
}

void sige_unet_temb_declare(sige_param_list *l, sige_unet_temb *e, int ch, int temb_ch) {
  e->ch = ch;
  e->temb_ch = temb_ch;
  sige_params_linear(l, &e->w0, &e->b0, temb_ch, ch, "temb.dense.0");
  sige_params_linear(l, &e->w1, &e->b1, temb_ch, temb_ch, "temb.dense.1");
}

void sige_unet_temb_clear(sige_unet_temb *e) {
  sige_tensor_free(e->w0);
  sige_tensor_free(e->b0);
  sige_tensor_free(e->w1);
  sige_tensor_free(e->b1);
}

static void level_clear(sige_unet_level *l) {
  for (int j = 0; j < l->n_blocks; j++) {
    sige_unet_resblock_clear(&l->blocks[j]);
    if (l->attn) sige_unet_attn_clear(&l->attn[j]);
  }
  g_free(l->blocks);
  g_free(l->attn);
  sige_conv_layer_clear(&l->resample_conv);
  sige_unet_resblock_clear(&l->resample_block);
}

void sige_unet_clear(sige_unet *u) {
  sige_unet_temb_clear(&u->temb);
  sige_conv_layer_clear(&u->conv_in);
  sige_conv_layer_clear(&u->conv_out);
  for (int i = 0; u->down && i < u->n_levels; i++) level_clear(&u->down[i]);
  for (int i = 0; u->up && i < u->n_levels; i++) level_clear(&u->up[i]);
  g_free(u->down);
  g_free(u->up);
  sige_unet_resblock_clear(&u->mid1);
  sige_unet_resblock_clear(&u->mid2);
  sige_unet_attn_clear(&u->mid_attn);
  sige_tensor_free(u->out_g);
  sige_tensor_free(u->out_b);
  memset(u, 0, sizeof *u);
}

static gboolean has_attn(const sige_unet_layout *lay, int res) {
  for (int i = 0; i < lay->n_attn_res; i++)
    if (lay->attn_res[i] == res) return TRUE;
  return FALSE;
}

/* Single-head attention, or heads of head_dim (else num_heads heads). */
static gboolean attn_declare(sige_param_list *l, const sige_unet_layout *lay, sige_unet_attn *a,
                             const char *p, int c, GError **error) {
  if (!lay->heads) {
    sige_unet_attn_declare(l, a, p, c, 0, 0);
    return TRUE;
  }
  int hd = lay->head_dim, nh = lay->num_heads;
  if (hd > 0 && c % hd == 0) {
    nh = c / hd;
  } else if (hd <= 0 && nh > 0 && c % nh == 0) {
    hd = c / nh;
  } else {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "%s: %d channels do not split into heads (head_dim %d, num_heads %d)", p, c,
                lay->head_dim, lay->num_heads);
    return FALSE;
  }
  sige_unet_attn_declare(l, a, p, c, nh, hd);
  return TRUE;
}

/* A level's blocks and attention ("<dir>.<i>.block.<j>", "<dir>.<i>.attn.<j>");
 * skip: the widths of the skip inputs the up blocks concatenate (NULL down). */
static gboolean level_declare(sige_param_list *l, const sige_unet_layout *lay, sige_unet_level *lv,
                              const char *dir, int i, int res, int n_blocks, int *block_in,
                              int *skip, int *n_skip, GError **error) {
  const int tc = lay->temb_ch, block_out = lay->ch * lay->ch_mult[i];
  const gboolean up = skip && !strcmp(dir, "up");
  lv->n_blocks = n_blocks;
  lv->blocks = g_new0(sige_unet_resblock, n_blocks);
  if (has_attn(lay, res)) lv->attn = g_new0(sige_unet_attn, n_blocks);
  for (int j = 0; j < n_blocks; j++) {
    const int cin = *block_in + (up ? skip[--*n_skip] : 0);
    g_autofree char *p = g_strdup_printf("%s.%d.block.%d", dir, i, j);
    sige_unet_resblock_declare(l, &lv->blocks[j], p, cin, block_out, tc,
                               lay->temb_out_mult * block_out, SIGE_UNET_RESAMPLE_NONE);
    *block_in = block_out;
    if (lv->attn) {
      g_autofree char *pa = g_strdup_printf("%s.%d.attn.%d", dir, i, j);
      if (!attn_declare(l, lay, &lv->attn[j], pa, block_out, error)) return FALSE;
    }
    if (!up) skip[(*n_skip)++] = block_out;
  }
  return TRUE;
}

/* The level's resampling: a stride-2 conv with padding (0, 1, 0, 1) or a
 * nearest x2 + conv (DDPM), or a resampling residual block (PD). */
static void resample_declare(sige_param_list *l, const sige_unet_layout *lay, sige_unet_level *lv,
                             const char *dir, int i, int c) {
  const gboolean down = !strcmp(dir, "down");
  lv->has_resample = TRUE;
  lv->resample_is_block = lay->resample_blocks;
  if (lay->resample_blocks) {
    g_autofree char *p = g_strdup_printf("%s.%d.%s", dir, i, down ? "downsample" : "upsample");
    sige_unet_resblock_declare(l, &lv->resample_block, p, c, c, lay->temb_ch,
                               lay->temb_out_mult * c,
                               down ? SIGE_UNET_RESAMPLE_DOWN : SIGE_UNET_RESAMPLE_UP);
  } else {
    sige_params_conv(l, &lv->resample_conv, c, c, 3, down ? 2 : 1, down ? 0 : 1, TRUE,
                     "%s.%d.%s.conv", dir, i, down ? "downsample" : "upsample");
  }
}

static gboolean unet_declare(sige_param_list *l, sige_unet *u, const sige_unet_layout *lay,
                             GError **error) {
  const int L = lay->n_levels, nrb = lay->num_res_blocks, tc = lay->temb_ch;
  u->n_levels = L;
  u->down = g_new0(sige_unet_level, L);
  u->up = g_new0(sige_unet_level, L);
  sige_unet_temb_declare(l, &u->temb, lay->ch, tc);
  sige_params_conv(l, &u->conv_in, lay->ch, lay->in_ch, 3, 1, 1, TRUE, "conv_in");
  int res = lay->image_size, block_in = lay->ch;
  g_autofree int *skip = g_new(int, 1 + (size_t)L * (nrb + 1));
  int n_skip = 0;
  skip[n_skip++] = lay->ch;
  for (int i = 0; i < L; i++) {
    if (!level_declare(l, lay, &u->down[i], "down", i, res, nrb, &block_in, skip, &n_skip, error))
      return FALSE;
    if (i != L - 1) {
      resample_declare(l, lay, &u->down[i], "down", i, block_in);
      res /= 2;
      skip[n_skip++] = block_in;
    }
  }
  const int mo = lay->temb_out_mult * block_in;
  sige_unet_resblock_declare(l, &u->mid1, "mid.block_1", block_in, block_in, tc, mo,
                             SIGE_UNET_RESAMPLE_NONE);
  if (!attn_declare(l, lay, &u->mid_attn, "mid.attn_1", block_in, error)) return FALSE;
  sige_unet_resblock_declare(l, &u->mid2, "mid.block_2", block_in, block_in, tc, mo,
                             SIGE_UNET_RESAMPLE_NONE);
  for (int i = L - 1; i >= 0; i--) {
    if (!level_declare(l, lay, &u->up[i], "up", i, res, nrb + 1, &block_in, skip, &n_skip,
                       error))
      return FALSE;
    if (i != 0) {
      resample_declare(l, lay, &u->up[i], "up", i, block_in);
      res *= 2;
    }
  }
  sige_params_norm(l, &u->out_g, &u->out_b, block_in, "norm_out");
  sige_params_conv(l, &u->conv_out, lay->out_ch, block_in, 3, 1, 1, TRUE, "conv_out");
  return TRUE;
}

void sige_unet_finish(sige_unet *u) {
  for (int i = 0; i < u->n_levels; i++) {
    sige_conv_layer *c = &u->down[i].resample_conv;
    if (c->weight) c->params.pad_bottom = c->params.pad_right = 1;
  }
}

sige_unet *sige_unet_new(sige_param_list *l, const sige_unet_layout *lay,
                         const sige_unet_norms *norms, const sige_sparse_config *sp,
                         int sparse_threshold, GError **error) {
  sige_unet *u = g_new0(sige_unet, 1);
  u->norms = *norms;
  u->sparse_threshold = sparse_threshold;
  u->block_size = sp->block_size;
  u->shortcut_block_size = sp->shortcut_block_size;
  u->image_size = lay->image_size;
  u->in_ch = lay->in_ch;
  u->mid_sparse_by_res = lay->mid_sparse_by_res;
  u->upsample_always_sparse = lay->upsample_always_sparse;
  if (!unet_declare(l, u, lay, error)) {
    sige_unet_free(u);
    return NULL;
  }
  return u;
}

void sige_unet_free(void *u) {
  if (!u) return;
  sige_unet_clear(u);
  g_free(u);
}

void sige_unet_input_shape(int in_ch, int image_size, int64_t shape[4]) {
  shape[0] = 1;
  shape[1] = in_ch;
  shape[2] = shape[3] = image_size;
}

int sige_unet_lowest_level(int image_size, int n_levels) { return image_size >> (n_levels - 1); }

/* ---- normalisation ------------------------------------------------------ */

static gboolean check_groups(const sige_unet_norms *n, int C, GError **error) {
  if (C % n->groups == 0) return TRUE;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              "%s: %d channels do not split into %d GroupNorm groups", n->name, C, n->groups);
  return FALSE;
}

/* GroupNorm of (x + offset[c]) as a per-channel affine: scale[c], shift[c]
 * (offset may be NULL).  Per-channel sums in double, then combined per group,
 * so that the time-embedding offset needs no copy of x. */
static void group_norm_affine_offset(const sige_unet_norms *n, sige_run *run,
                                     const sige_tensor *x, const sige_tensor *gamma,
                                     const sige_tensor *beta, const float *offset, float *scale,
                                     float *shift) {
  const int C = SIGE_C(x), G = n->groups, cpg = C / G;
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
    const double cnt = (double)plane * cpg, mean = s1 / cnt;
    const double var = fmax(s2 / cnt - mean * mean, 0.0);
    const double inv = 1.0 / sqrt(var + n->eps);
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

/* Fresh statistics of a GroupNorm with its time embedding (temb: NULL, or
 * the block's projection, added or modulating as n->temb_mode says):
 * modulation (x * s + b) * (1 + ms) + mt = x * s (1 + ms) + (b (1 + ms) + mt). */
static gboolean norm_fresh(const sige_unet_norms *n, sige_run *run, const sige_tensor *x,
                           const sige_tensor *gamma, const sige_tensor *beta, const float *temb,
                           float *scale, float *shift, GError **error) {
  const int C = (int)gamma->numel;
  if (!check_groups(n, C, error)) return FALSE;
  if (n->temb_mode == SIGE_UNET_TEMB_ADD) {
    group_norm_affine_offset(n, run, x, gamma, beta, temb, scale, shift);
    return TRUE;
  }
  sige_group_norm_affine(run->ctx, x, n->groups, n->eps, gamma, beta, scale, shift);
  for (int c = 0; temb && c < C; c++) {
    const float f = 1.0f + temb[c];
    scale[c] *= f;
    shift[c] = shift[c] * f + temb[C + c];
  }
  return TRUE;
}

/* The statistics of a norm: computed (and recorded) in full and dense
 * passes, frozen ones in sparse passes. */
static gboolean norm_stats(const sige_unet_norms *n, sige_run *run, const sige_tensor *x,
                           const sige_tensor *gamma, const sige_tensor *beta, const float *temb,
                           float *scale, float *shift, GError **error) {
  if (sige_run_needs_stats(run) &&
      !norm_fresh(n, run, x, gamma, beta, temb, scale, shift, error))
    return FALSE;
  return sige_run_stats(run, (int)gamma->numel, scale, shift, error);
}

/* ---- forwards ----------------------------------------------------------- */

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

/* The nearest x2 index map of an h x w input (idx: 2 (h + w) ints). */
static sige_resample_map nearest_x2(int h, int w, int *idx) {
  sige_nearest_indices(h, 2 * h, idx);
  sige_nearest_indices(w, 2 * w, idx + 2 * h);
  return (sige_resample_map){2 * h, 2 * w, idx, idx + 2 * h};
}

typedef struct {
  sige_block_geometry main, shortcut, down;
} unet_geometry;

/* One residual block on x (or on the channel concatenation [x, skip]), in
 * any mode.  temb: this block's temb_proj(swish(temb)).  A resampling block
 * (PD) pools or upsamples inside: in a sparse pass the pooled input of a
 * down block (and its residual) is computed densely, as the published code
 * does; an up block gathers through a nearest-neighbour index map instead
 * of materialising the upsampled tensor. */
static sige_tensor *resblock_forward(const sige_unet *u, const sige_unet_resblock *b,
                                     const unet_geometry *geo, sige_run *run, gboolean sparse,
                                     const sige_tensor *x, const sige_tensor *skip,
                                     const float *temb, GError **error) {
  sige_tensor *xin = NULL, *h = NULL, *t = NULL, *xs = NULL, *res = NULL, *out = NULL;
  g_autofree float *s1 = g_new(float, b->cin), *sh1 = g_new(float, b->cin);
  g_autofree float *s2 = g_new(float, b->cout), *sh2 = g_new(float, b->cout);
  g_autofree int *idx = NULL;
  sige_resample_map map;
  if (!sige_run_layer(run, sparse, error)) return NULL;
  const gboolean dense = !sige_run_is_sparse(run);
  if (skip && b->resample != SIGE_UNET_RESAMPLE_NONE) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "%s: a resampling block has no skip",
                u->norms.name);
    return NULL;
  }
  if (b->resample != SIGE_UNET_RESAMPLE_NONE && b->nin.weight) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: resampling blocks must keep their width (%d -> %d)", u->norms.name, b->cin,
                b->cout);
    return NULL;
  }
  if (b->resample == SIGE_UNET_RESAMPLE_UP) {
    idx = g_new(int, 2 * (SIGE_H(x) + SIGE_W(x)));
    map = nearest_x2(SIGE_H(x), SIGE_W(x), idx);
  }
  /* the concatenated input exists only where the pass is dense */
  if (skip && dense && !(xin = sige_concat_dense(run->ctx, x, skip, error))) goto out;
  if (!norm_stats(&u->norms, run, xin ? xin : x, b->n1_g, b->n1_b, NULL, s1, sh1, error))
    goto out;
  switch (b->resample) {
    case SIGE_UNET_RESAMPLE_NONE:
      h = sige_run_gather_cat(run, &geo->main, x, NULL, skip, xin, s1, sh1, SIGE_ACT_SWISH, error);
      break;
    case SIGE_UNET_RESAMPLE_UP: /* nearest x2 commutes with the per-channel affine and swish */
      h = sige_run_gather(run, &geo->main, x, &map, s1, sh1, SIGE_ACT_SWISH, error);
      break;
    case SIGE_UNET_RESAMPLE_DOWN: { /* pooling does not: pool the activated input densely */
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
  /* the time embedding is folded into norm2's scale and shift */
  if (!norm_stats(&u->norms, run, t, b->n2_g, b->n2_b, temb, s2, sh2, error)) goto out;
  if (!(h = sige_run_scatter_gather(run, &geo->main, g_steal_pointer(&t), &geo->main, s2, sh2,
                                    SIGE_ACT_SWISH, error)))
    goto out;
  if (!(t = sige_run_conv(run, &b->conv2, h, error))) goto out;
  switch (b->resample) {
    case SIGE_UNET_RESAMPLE_NONE:
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
    case SIGE_UNET_RESAMPLE_UP:
      out = sige_run_scatter(run, &geo->main, g_steal_pointer(&t), x, &map, error);
      break;
    case SIGE_UNET_RESAMPLE_DOWN:
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

/* Attention runs densely in every mode (it is global), with the norm's
 * statistics frozen in sparse passes. */
static sige_tensor *attn_forward(const sige_unet *u, const sige_unet_attn *a, sige_run *run,
                                 const sige_tensor *x_in, GError **error) {
  const int C = SIGE_C(x_in);
  g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
  if (!sige_run_layer(run, FALSE, error)) return NULL;
  g_autoptr(sige_tensor) x32 = NULL;
  const sige_tensor *x = x_in;
  /* the multi-head op reads float32 only (x may be an F16 cache view) */
  if (a->heads && x->storage == SIGE_STORAGE_F16 && !(x = x32 = sige_tensor_to_f32(x_in, error)))
    return NULL;
  if (!norm_stats(&u->norms, run, x, a->n_g, a->n_b, NULL, scale, shift, error)) return NULL;
  /* The published sparse DDPM code stores an attention norm's statistics as
   * a tensor where it meant a per-cache dict, so its sparse pass indexes
   * channel 0's scale and shift and applies them to every channel.
   * Reproduced only on request (the reference vectors were made that way). */
  if (!sige_run_needs_stats(run) && u->norms.attention_quirk) {
    for (int c = 1; c < C; c++) {
      scale[c] = scale[0];
      shift[c] = shift[0];
    }
  }
  sige_tensor *out = sige_tensor_new4_like(x, 1, C, SIGE_H(x), SIGE_W(x), error);
  if (!out) return NULL;
  gboolean ok;
  if (a->heads) {
    ok = sige_multihead_attention(run->ctx, x, a->qkv.weight, a->qkv.bias, a->proj.weight,
                                  a->proj.bias, a->heads, a->head_dim, scale, shift, out, error);
  } else {
    sige_attention_params p = {
        .groups = u->norms.groups, .eps = u->norms.eps,
        .norm_gamma = a->n_g, .norm_beta = a->n_b,
        .q_w = a->q.weight, .q_b = a->q.bias, .k_w = a->k.weight, .k_b = a->k.bias,
        .v_w = a->v.weight, .v_b = a->v.bias, .proj_w = a->proj.weight, .proj_b = a->proj.bias};
    ok = sige_attention_frozen(run->ctx, x, &p, scale, shift, out, error);
  }
  if (!ok) g_clear_pointer(&out, sige_tensor_free);
  return out;
}

/* Stride-2 conv downsample (padding (0,1,0,1)) or nearest-x2 upsample + conv. */
static sige_tensor *resample_conv_forward(const sige_conv_layer *conv,
                                          const sige_block_geometry *g, sige_run *run,
                                          gboolean sparse, const sige_tensor *x, gboolean up,
                                          GError **error) {
  if (!sige_run_layer(run, sparse, error)) return NULL;
  g_autofree int *idx = NULL;
  sige_resample_map map;
  if (up) {
    idx = g_new(int, 2 * (SIGE_H(x) + SIGE_W(x)));
    map = nearest_x2(SIGE_H(x), SIGE_W(x), idx);
  }
  sige_tensor *h = sige_run_gather(run, g, x, up ? &map : NULL, NULL, NULL, SIGE_ACT_NONE, error);
  if (!h) return NULL;
  sige_tensor *t = sige_run_conv(run, conv, h, error);
  sige_tensor_free(h);
  return t ? sige_run_scatter(run, g, t, NULL, NULL, error) : NULL;
}

/* swish(temb) -> sinusoid(t_in) -> dense.0 -> swish -> dense.1 -> swish
 * (every block projects swish(temb)); a new [1, temb_ch] tensor. */
static sige_tensor *temb_forward(const sige_unet_temb *e, sige_run *run, float t_in,
                                 GError **error) {
  int64_t s1[2] = {1, e->ch}, s2[2] = {1, e->temb_ch};
  g_autoptr(sige_tensor) emb = sige_tensor_new(2, s1, error);
  g_autoptr(sige_tensor) tmp = emb ? sige_tensor_new(2, s2, error) : NULL;
  sige_tensor *temb = tmp ? sige_tensor_new(2, s2, error) : NULL;
  if (!temb) return NULL;
  sige_timestep_embedding(&t_in, 1, e->ch, emb);
  if (!sige_linear(run->ctx, emb, e->w0, e->b0, tmp, error)) goto fail;
  sige_activation(run->ctx, tmp, SIGE_ACT_SWISH, tmp);
  if (!sige_linear(run->ctx, tmp, e->w1, e->b1, temb, error)) goto fail;
  sige_activation(run->ctx, temb, SIGE_ACT_SWISH, temb);
  return temb;
fail:
  sige_tensor_free(temb);
  return NULL;
}

/* A block's projection of swish(temb) (only the dense and full passes use
 * it; a sparse pass has it folded into the frozen norm2 statistics). */
static float *temb_proj(sige_run *run, const sige_tensor *temb, const sige_unet_resblock *b,
                        GError **error) {
  const int n = (int)b->temb_b->numel;
  int64_t ps[2] = {1, n};
  g_autoptr(sige_tensor) pt = sige_tensor_new(2, ps, error);
  if (!pt || !sige_linear(run->ctx, temb, b->temb_w, b->temb_b, pt, error)) return NULL;
  return g_memdup2(pt->data, sizeof(float) * n);
}

/* temb_proj then the block (owning nothing it is given). */
static sige_tensor *block_step(const sige_unet *u, const sige_unet_resblock *b,
                               const unet_geometry *geo, sige_run *run, gboolean sparse,
                               const sige_tensor *x, const sige_tensor *skip,
                               const sige_tensor *temb, GError **error) {
  g_autofree float *proj = temb_proj(run, temb, b, error);
  return proj ? resblock_forward(u, b, geo, run, sparse, x, skip, proj, error) : NULL;
}

/* h followed by attention a (h is consumed). */
static sige_tensor *then_attn(const sige_unet *u, const sige_unet_attn *a, sige_run *run,
                              sige_tensor *h, GError **error) {
  if (!h || !a) return h;
  sige_tensor *y = attn_forward(u, a, run, h, error);
  sige_tensor_free(h);
  return y;
}

gboolean sige_unet_forward(const void *impl, sige_run *run, const sige_tensor *x, float t_in,
                           sige_tensor **out, GError **error) {
  const sige_unet *u = impl;
  *out = NULL;
  if (x->ndim != 4 || SIGE_N(x) != 1 || SIGE_C(x) != u->in_ch || SIGE_H(x) != u->image_size ||
      SIGE_W(x) != u->image_size) {
    char buf[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE, "%s input is %s; expected [1, %d, %d, %d]",
                u->norms.name, sige_tensor_shape_str(x, buf, sizeof buf), u->in_ch,
                u->image_size, u->image_size);
    return FALSE;
  }
  const int L = u->n_levels, thr = u->sparse_threshold;
  unet_geometry geo;
  sige_block_geometry_init(&geo.main, 3, 1, 1, u->block_size);
  sige_block_geometry_init(&geo.shortcut, 1, 1, 0, u->shortcut_block_size);
  sige_block_geometry_init(&geo.down, 3, 2, 0, u->block_size);
  gboolean ok = FALSE;
  /* hs holds the skip tensors; some are views on caches (not owned data) */
  GPtrArray *hs = g_ptr_array_new_with_free_func((GDestroyNotify)sige_tensor_free);
  sige_tensor *h = NULL, *temb = NULL;
  run->layers_total = L * (2 * u->down[0].n_blocks + 3) + 6;
  if (!sige_run_layer(run, FALSE, error) || !(temb = temb_forward(&u->temb, run, t_in, error)))
    goto done;
  if (!(h = sige_run_conv(run, &u->conv_in, x, error))) goto done;
  g_ptr_array_add(hs, g_steal_pointer(&h));
  int res = u->image_size;
  for (int i = 0; i < L; i++) {
    const sige_unet_level *l = &u->down[i];
    for (int j = 0; j < l->n_blocks; j++) {
      h = block_step(u, &l->blocks[j], &geo, run, res >= thr, g_ptr_array_index(hs, hs->len - 1),
                     NULL, temb, error);
      if (!(h = then_attn(u, l->attn ? &l->attn[j] : NULL, run, h, error))) goto done;
      g_ptr_array_add(hs, g_steal_pointer(&h));
    }
    if (l->has_resample) {
      /* sparse by its input resolution (a resampling block's convolutions
       * run at res / 2) */
      const sige_tensor *in = g_ptr_array_index(hs, hs->len - 1);
      h = l->resample_is_block
              ? block_step(u, &l->resample_block, &geo, run, res >= thr, in, NULL, temb, error)
              : resample_conv_forward(&l->resample_conv, &geo.down, run, res >= thr, in, FALSE,
                                      error);
      if (!h) goto done;
      g_ptr_array_add(hs, g_steal_pointer(&h));
      res /= 2;
    }
  }
  const gboolean mid_sparse = u->mid_sparse_by_res && res >= thr;
  h = block_step(u, &u->mid1, &geo, run, mid_sparse, g_ptr_array_index(hs, hs->len - 1), NULL,
                 temb, error);
  if (!(h = then_attn(u, &u->mid_attn, run, h, error))) goto done;
  {
    sige_tensor *y = block_step(u, &u->mid2, &geo, run, mid_sparse, h, NULL, temb, error);
    sige_tensor_free(h);
    if (!(h = y)) goto done;
  }
  for (int i = L - 1; i >= 0; i--) {
    const sige_unet_level *l = &u->up[i];
    for (int j = 0; j < l->n_blocks; j++) {
      sige_tensor *skip = g_ptr_array_steal_index(hs, hs->len - 1);
      sige_tensor *y = block_step(u, &l->blocks[j], &geo, run, res >= thr, h, skip, temb, error);
      sige_tensor_free(skip);
      g_clear_pointer(&h, sige_tensor_free);
      if (!(h = then_attn(u, l->attn ? &l->attn[j] : NULL, run, y, error))) goto done;
    }
    if (l->has_resample) {
      /* a resampling block is sparse by its input resolution; the DDPM
       * upsample conv is sparse at every level (as in the published code) */
      sige_tensor *y =
          l->resample_is_block
              ? block_step(u, &l->resample_block, &geo, run, res >= thr, h, NULL, temb, error)
              : resample_conv_forward(&l->resample_conv, &geo.main, run,
                                      u->upsample_always_sparse || res >= thr, h, TRUE, error);
      g_clear_pointer(&h, sige_tensor_free);
      if (!(h = y)) goto done;
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
    if (!norm_fresh(&u->norms, run, h, u->out_g, u->out_b, NULL, scale, shift, error)) goto done;
    g_autoptr(sige_tensor) n = sige_tensor_new4_like(h, 1, C, SIGE_H(h), SIGE_W(h), error);
    if (!n) goto done;
    sige_channel_affine(run->ctx, h, scale, shift, FALSE, SIGE_ACT_SWISH, n);
    *out = sige_run_conv(run, &u->conv_out, n, error);
    ok = *out != NULL;
  }
done:
  sige_tensor_free(h);
  sige_tensor_free(temb);
  g_ptr_array_unref(hs);
  return ok;
}

gboolean sige_unet_infer_levels(const sige_weights *w, const char *path, const char *what, int ch,
                                int image_size, const char *attn_key, int *ch_mult,
                                int *n_ch_mult, int *num_res_blocks, int *attn_res,
                                int *n_attn_res, GError **error) {
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
  *n_attn_res = 0;
  for (int i = 0; i < *n_ch_mult; i++) {
    g_autofree char *k = g_strdup_printf("down.%d.attn.0.%s", i, attn_key);
    if (sige_weights_contains(w, k)) attn_res[(*n_attn_res)++] = image_size >> i;
  }
  return TRUE;
}
