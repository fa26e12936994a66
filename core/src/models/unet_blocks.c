/* The diffusion UNet blocks (see unet_blocks.h).
 *
 * Each block is written once against the pass primitives: convolutions go
 * through sige_pass_conv, and each GroupNorm is expressed as a per-channel
 * affine (what the sparse mode freezes). */
#include "unet_blocks.h"

#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"

/* ---- declarations ------------------------------------------------------- */

const sige_unet_resblock_names sige_unet_names_ermongroup = {
    "norm1", "conv1", "temb_proj", "norm2", "conv2", "nin_shortcut"};
const sige_unet_resblock_names sige_unet_names_openai = {
    "in_layers.0", "in_layers.2", "emb_layers.1", "out_layers.0", "out_layers.3",
    "skip_connection"};

void sige_unet_resblock_declare_named(sige_param_list *l, sige_unet_resblock *b,
                                      const sige_unet_resblock_names *nm, const char *p, int cin,
                                      int cout, int temb_ch, int temb_out,
                                      sige_unet_resample resample) {
  b->cin = cin;
  b->cout = cout;
  b->resample = resample;
  /* in forward order (the random-weight generator draws in list order) */
  sige_params_norm(l, &b->n1_g, &b->n1_b, cin, "%s.%s", p, nm->norm1);
  sige_params_conv(l, &b->conv1, cout, cin, 3, 1, 1, TRUE, "%s.%s", p, nm->conv1);
  if (temb_ch > 0) /* the VAE's blocks have no time embedding */
    sige_params_linear(l, &b->temb_w, &b->temb_b, temb_out, temb_ch, "%s.%s", p, nm->temb);
  sige_params_norm(l, &b->n2_g, &b->n2_b, cout, "%s.%s", p, nm->norm2);
  sige_params_conv(l, &b->conv2, cout, cout, 3, 1, 1, TRUE, "%s.%s", p, nm->conv2);
  if (cin != cout)
    sige_params_conv(l, &b->nin, cout, cin, 1, 1, 0, TRUE, "%s.%s", p, nm->shortcut);
}

void sige_unet_resblock_declare(sige_param_list *l, sige_unet_resblock *b, const char *p, int cin,
                                int cout, int temb_ch, int temb_out, sige_unet_resample resample) {
  sige_unet_resblock_declare_named(l, b, &sige_unet_names_ermongroup, p, cin, cout, temb_ch,
                                   temb_out, resample);
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

void sige_unet_temb_declare_ldm(sige_param_list *l, sige_unet_temb *e, const char *prefix, int ch,
                                int temb_ch) {
  e->ch = ch;
  e->temb_ch = temb_ch;
  e->ldm = TRUE;
  sige_params_linear(l, &e->w0, &e->b0, temb_ch, ch, "%stime_embed.0", prefix);
  sige_params_linear(l, &e->w1, &e->b1, temb_ch, temb_ch, "%stime_embed.2", prefix);
}

void sige_unet_temb_clear(sige_unet_temb *e) {
  sige_tensor_free(e->w0);
  sige_tensor_free(e->b0);
  sige_tensor_free(e->w1);
  sige_tensor_free(e->b1);
}

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
static void group_norm_affine_offset(const sige_unet_norms *n, sige_pass *pass,
                                     const sige_tensor *x, const sige_tensor *gamma,
                                     const sige_tensor *beta, const float *offset, float *scale,
                                     float *shift) {
  const int C = SIGE_C(x), G = n->groups, cpg = C / G;
  const size_t plane = (size_t)SIGE_H(x) * SIGE_W(x);
  double *sum = g_new0(double, 2 * (size_t)C), *sq = sum + C;
  sige_channel_moments(pass->ctx, x, sum, sq);
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

/* Modulation (x * s + b) * (1 + ms) + mt = x * s (1 + ms) + (b (1 + ms) + mt). */
gboolean sige_unet_norm_fresh(const sige_unet_norms *n, sige_pass *pass, const sige_tensor *x,
                           const sige_tensor *gamma, const sige_tensor *beta, const float *temb,
                           float *scale, float *shift, GError **error) {
  const int C = (int)gamma->numel;
  if (!check_groups(n, C, error)) return FALSE;
  if (n->temb_mode == SIGE_UNET_TEMB_ADD) {
    group_norm_affine_offset(n, pass, x, gamma, beta, temb, scale, shift);
    return TRUE;
  }
  sige_group_norm_affine(pass->ctx, x, n->groups, n->eps, gamma, beta, scale, shift);
  for (int c = 0; temb && c < C; c++) {
    const float f = 1.0f + temb[c];
    scale[c] *= f;
    shift[c] = shift[c] * f + temb[C + c];
  }
  return TRUE;
}

/* The statistics of a norm: computed (and recorded) in full and dense
 * passes, frozen ones in sparse passes. */
static gboolean norm_stats(const sige_unet_norms *n, sige_pass *pass, const sige_tensor *x,
                           const sige_tensor *gamma, const sige_tensor *beta, const float *temb,
                           float *scale, float *shift, GError **error) {
  if (n->fresh_stats) {
    g_autoptr(sige_tensor) x32 = NULL; /* x may be an F16 cache view */
    if (x->storage == SIGE_STORAGE_F16 && !(x = x32 = sige_tensor_to_f32(x, error)))
      return FALSE;
    return sige_unet_norm_fresh(n, pass, x, gamma, beta, temb, scale, shift, error);
  }
  if (sige_pass_needs_stats(pass) &&
      !sige_unet_norm_fresh(n, pass, x, gamma, beta, temb, scale, shift, error))
    return FALSE;
  return sige_pass_stats(pass, (int)gamma->numel, scale, shift, error);
}

/* ---- forwards ----------------------------------------------------------- */

static sige_tensor *rows_like(const sige_tensor *x, int64_t rows, int cols, GError **error);

/* avg_pool2x2(act(x * scale + shift)) as a new dense tensor (x may be F16). */
static sige_tensor *pooled(sige_pass *pass, const sige_tensor *x, const float *scale,
                           const float *shift, sige_act act, GError **error) {
  g_autoptr(sige_tensor) z = sige_materialize(x, NULL, error);
  if (!z) return NULL;
  if (scale) sige_channel_affine(pass->ctx, z, scale, shift, FALSE, act, z);
  sige_tensor *out = sige_tensor_new4_like(z, 1, SIGE_C(z), SIGE_H(z) / 2, SIGE_W(z) / 2, error);
  if (out) sige_avg_pool2x2(pass->ctx, z, out);
  return out;
}

/* The nearest x2 index map of an h x w input (idx: 2 (h + w) ints). */
static sige_resample_map nearest_x2(int h, int w, int *idx) {
  sige_nearest_indices(h, 2 * h, idx);
  sige_nearest_indices(w, 2 * w, idx + 2 * h);
  return (sige_resample_map){2 * h, 2 * w, idx, idx + 2 * h};
}

/* One residual block on x (or on the channel concatenation [x, skip]), in
 * any mode.  temb: this block's temb_proj(swish(temb)).  A resampling block
 * (PD) pools or upsamples inside: in a sparse pass the pooled input of a
 * down block (and its residual) is computed densely, as the published code
 * does; an up block gathers through a nearest-neighbour index map instead
 * of materialising the upsampled tensor. */
sige_tensor *sige_unet_resblock_forward(const sige_unet_norms *n, const sige_unet_resblock *b,
                                        const sige_unet_geometry *geo, sige_pass *pass,
                                        gboolean sparse, const sige_tensor *x,
                                        const sige_tensor *skip, const float *temb,
                                        GError **error) {
  sige_tensor *xin = NULL, *h = NULL, *t = NULL, *xs = NULL, *res = NULL, *out = NULL;
  g_autofree float *s1 = g_new(float, b->cin), *sh1 = g_new(float, b->cin);
  g_autofree float *s2 = g_new(float, b->cout), *sh2 = g_new(float, b->cout);
  g_autofree int *idx = NULL;
  sige_resample_map map;
  if (!sige_pass_begin_group(pass, sparse, error)) return NULL;
  const gboolean dense = !sige_pass_is_sparse(pass);
  if (skip && b->resample != SIGE_UNET_RESAMPLE_NONE) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "%s: a resampling block has no skip",
                n->name);
    return NULL;
  }
  if (b->resample != SIGE_UNET_RESAMPLE_NONE && b->nin.weight) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: resampling blocks must keep their width (%d -> %d)", n->name, b->cin,
                b->cout);
    return NULL;
  }
  if (b->resample == SIGE_UNET_RESAMPLE_UP) {
    idx = g_new(int, 2 * (SIGE_H(x) + SIGE_W(x)));
    map = nearest_x2(SIGE_H(x), SIGE_W(x), idx);
  }
  /* the concatenated input exists only where the pass is dense */
  if (skip && dense && !(xin = sige_concat_dense(pass->ctx, x, skip, error))) goto out;
  if (!norm_stats(n, pass, xin ? xin : x, b->n1_g, b->n1_b, NULL, s1, sh1, error))
    goto out;
  /* Sparse with frozen statistics, no skip, not pooling: conv1 reads its
   * input straight from x (through the upsampling map) with norm1 and
   * swish applied on the fly, into its cache slot (sige_sparse_conv; the
   * CPU fuses gather and Winograd input transform), instead of gathering a
   * block batch first: the same values, one pass over the blocks fewer.
   * conv2 then reads that slot, fused likewise where there is no shortcut
   * conv; with one it gathers a batch for conv2 as below. */
  if (!dense && !n->fresh_stats && !skip && b->resample != SIGE_UNET_RESAMPLE_DOWN) {
    const sige_resample_map *xmap = b->resample == SIGE_UNET_RESAMPLE_UP ? &map : NULL;
    if (!norm_stats(n, pass, x, b->n2_g, b->n2_b, temb, s2, sh2, error)) goto out;
    g_autoptr(sige_tensor) mid =
        sige_pass_gather_conv_scatter(pass, &geo->main, x, xmap, s1, sh1, SIGE_ACT_SWISH,
                                      &b->conv1, SIGE_ACT_NONE, NULL, NULL, error);
    if (!mid) goto out;
    if (!b->nin.weight) {
      out = sige_pass_gather_conv_scatter(pass, &geo->main, mid, NULL, s2, sh2, SIGE_ACT_SWISH,
                                          &b->conv2, SIGE_ACT_NONE, x, xmap, error);
      goto out;
    }
    if (!(h = sige_pass_gather(pass, &geo->main, mid, NULL, s2, sh2, SIGE_ACT_SWISH, error)) ||
        !(t = sige_pass_conv(pass, &b->conv2, h, error)))
      goto out;
    g_autoptr(sige_tensor) g = sige_pass_gather(pass, &geo->shortcut, x, NULL, NULL, NULL,
                                                SIGE_ACT_NONE, error);
    if (!g || !(xs = sige_pass_conv(pass, &b->nin, g, error))) goto out;
    out = sige_pass_scatter_block_residual(pass, &geo->main, g_steal_pointer(&t), &geo->shortcut,
                                          g_steal_pointer(&xs), error);
    goto out;
  }
  switch (b->resample) {
    case SIGE_UNET_RESAMPLE_NONE:
      h = sige_pass_gather_cat(pass, &geo->main, x, NULL, skip, xin, s1, sh1, SIGE_ACT_SWISH, error);
      break;
    case SIGE_UNET_RESAMPLE_UP: /* nearest x2 commutes with the per-channel affine and swish */
      h = sige_pass_gather(pass, &geo->main, x, &map, s1, sh1, SIGE_ACT_SWISH, error);
      break;
    case SIGE_UNET_RESAMPLE_DOWN: { /* pooling does not: pool the activated input densely */
      sige_tensor *p = pooled(pass, x, s1, sh1, SIGE_ACT_SWISH, error);
      if (!p || dense) {
        h = p;
        break;
      }
      h = sige_pass_gather(pass, &geo->main, p, NULL, NULL, NULL, SIGE_ACT_NONE, error);
      sige_tensor_free(p);
      break;
    }
  }
  if (!h) goto out;
  /* Sparse with frozen statistics and no shortcut conv: conv1's blocks go
   * straight into its cache slot and conv2 reads its input from there
   * (the CPU fuses the Winograd transforms into those scatters and
   * gathers); the block outputs are the same as below. */
  if (!dense && !n->fresh_stats && !b->nin.weight) {
    if (!norm_stats(n, pass, h, b->n2_g, b->n2_b, temb, s2, sh2, error)) goto out;
    g_autoptr(sige_tensor) mid = sige_pass_conv_scatter(pass, &b->conv1, g_steal_pointer(&h),
                                                        SIGE_ACT_NONE, &geo->main, NULL, NULL,
                                                        error);
    if (!mid) goto out;
    const sige_tensor *r = x;
    const sige_resample_map *rmap = b->resample == SIGE_UNET_RESAMPLE_UP ? &map : NULL;
    if (b->resample == SIGE_UNET_RESAMPLE_DOWN &&
        !(r = res = pooled(pass, x, NULL, NULL, SIGE_ACT_NONE, error)))
      goto out;
    out = sige_pass_gather_conv_scatter(pass, &geo->main, mid, NULL, s2, sh2, SIGE_ACT_SWISH,
                                        &b->conv2, SIGE_ACT_NONE, r, rmap, error);
    goto out;
  }
  if (!(t = sige_pass_conv(pass, &b->conv1, h, error))) goto out;
  g_clear_pointer(&h, sige_tensor_free);
  /* the time embedding is folded into norm2's scale and shift */
  if (!norm_stats(n, pass, t, b->n2_g, b->n2_b, temb, s2, sh2, error)) goto out;
  if (!(h = sige_pass_scatter_gather(pass, &geo->main, g_steal_pointer(&t), &geo->main, s2, sh2,
                                    SIGE_ACT_SWISH, error)))
    goto out;
  if (!(t = sige_pass_conv(pass, &b->conv2, h, error))) goto out;
  switch (b->resample) {
    case SIGE_UNET_RESAMPLE_NONE:
      if (b->nin.weight) {
        g_autoptr(sige_tensor) g = sige_pass_gather_cat(pass, &geo->shortcut, x, NULL, skip, xin,
                                                       NULL, NULL, SIGE_ACT_NONE, error);
        if (!g || !(xs = sige_pass_conv(pass, &b->nin, g, error))) goto out;
        out = sige_pass_scatter_block_residual(pass, &geo->main, g_steal_pointer(&t),
                                              &geo->shortcut, g_steal_pointer(&xs), error);
      } else {
        out = sige_pass_scatter(pass, &geo->main, g_steal_pointer(&t), x, NULL, error);
      }
      break;
    case SIGE_UNET_RESAMPLE_UP:
      out = sige_pass_scatter(pass, &geo->main, g_steal_pointer(&t), x, &map, error);
      break;
    case SIGE_UNET_RESAMPLE_DOWN:
      if ((res = pooled(pass, x, NULL, NULL, SIGE_ACT_NONE, error)))
        out = sige_pass_scatter(pass, &geo->main, g_steal_pointer(&t), res, NULL, error);
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
sige_tensor *sige_unet_attn_forward(const sige_unet_norms *n, const sige_unet_attn *a,
                                    sige_pass *pass, const sige_tensor *x_in, GError **error) {
  const int C = SIGE_C(x_in);
  g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
  if (!sige_pass_begin_group(pass, FALSE, error)) return NULL;
  g_autoptr(sige_tensor) x32 = NULL;
  const sige_tensor *x = x_in;
  /* the multi-head op reads float32 only (x may be an F16 cache view) */
  if (a->heads && x->storage == SIGE_STORAGE_F16 && !(x = x32 = sige_tensor_to_f32(x_in, error)))
    return NULL;
  if (!norm_stats(n, pass, x, a->n_g, a->n_b, NULL, scale, shift, error)) return NULL;
  /* The published sparse DDPM code stores an attention norm's statistics as
   * a tensor where it meant a per-cache dict, so its sparse pass indexes
   * channel 0's scale and shift and applies them to every channel.
   * Reproduced only on request (the reference vectors were made that way). */
  if (!sige_pass_needs_stats(pass) && n->attention_quirk) {
    for (int c = 1; c < C; c++) {
      scale[c] = scale[0];
      shift[c] = shift[0];
    }
  }
  sige_tensor *out = sige_tensor_new4_like(x, 1, C, SIGE_H(x), SIGE_W(x), error);
  if (!out) return NULL;
  gboolean ok;
  if (a->heads) {
    ok = sige_multihead_attention(pass->ctx, x, a->qkv.weight, a->qkv.bias, a->proj.weight,
                                  a->proj.bias, a->heads, a->head_dim, scale, shift, out, error);
  } else {
    sige_attention_params p = {
        .groups = n->groups, .eps = n->eps,
        .norm_gamma = a->n_g, .norm_beta = a->n_b,
        .q_w = a->q.weight, .q_b = a->q.bias, .k_w = a->k.weight, .k_b = a->k.bias,
        .v_w = a->v.weight, .v_b = a->v.bias, .proj_w = a->proj.weight, .proj_b = a->proj.bias};
    ok = sige_attention_frozen(pass->ctx, x, &p, scale, shift, out, error);
  }
  if (!ok) g_clear_pointer(&out, sige_tensor_free);
  return out;
}

/* A [N, C, H, W] tensor (a CNHW block batch, or N = 1 NCHW) seen as the
 * NCHW map [1, C, N H, W] over the same memory: what the token ops read. */
static sige_tensor map_view(const sige_tensor *t) {
  sige_tensor v = *t;
  v.owned = FALSE;
  v.layout = SIGE_LAYOUT_NCHW;
  v.shape[0] = 1;
  v.shape[2] = (int64_t)SIGE_N(t) * SIGE_H(t);
  return v;
}

/* The VAE's attention block, sparse where the pass is: queries from the
 * gathered blocks of g, keys and values scattered into (and read from)
 * the full maps, so that every active query sees every position. */
sige_tensor *sige_unet_attn_blocks_forward(const sige_unet_norms *n, const sige_unet_attn *a,
                                           const sige_block_geometry *g, sige_pass *pass,
                                           const sige_tensor *x, GError **error) {
  const int C = SIGE_C(x);
  if (a->heads) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: sparse attention has a single head", n->name);
    return NULL;
  }
  g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
  sige_tensor *q = NULL, *k = NULL, *v = NULL, *kf = NULL, *vf = NULL, *o = NULL, *y = NULL;
  g_autoptr(sige_tensor) h = NULL, k32 = NULL, v32 = NULL, qt = NULL, kt = NULL, vt = NULL,
                         ot = NULL;
  if (!sige_pass_begin_group(pass, TRUE, error) ||
      !norm_stats(n, pass, x, a->n_g, a->n_b, NULL, scale, shift, error) ||
      !(h = sige_pass_gather(pass, g, x, NULL, scale, shift, SIGE_ACT_NONE, error)) ||
      !(q = sige_pass_conv(pass, &a->q, h, error)) || !(k = sige_pass_conv(pass, &a->k, h, error)) ||
      !(v = sige_pass_conv(pass, &a->v, h, error)))
    goto out;
  if (!(kf = sige_pass_scatter(pass, g, g_steal_pointer(&k), NULL, NULL, error)) ||
      !(vf = sige_pass_scatter(pass, g, g_steal_pointer(&v), NULL, NULL, error)))
    goto out;
  /* with fp16 caches the full maps are F16 views */
  const sige_tensor *kr = kf, *vr = vf;
  if (kf->storage == SIGE_STORAGE_F16 && !(kr = k32 = sige_tensor_to_f32(kf, error))) goto out;
  if (vf->storage == SIGE_STORAGE_F16 && !(vr = v32 = sige_tensor_to_f32(vf, error))) goto out;
  const sige_tensor qm = map_view(q), km = map_view(kr), vm = map_view(vr);
  const int nq = SIGE_H(&qm) * SIGE_W(&qm), nk = SIGE_H(&km) * SIGE_W(&km);
  if (!(qt = rows_like(q, nq, C, error)) || !(kt = rows_like(q, nk, C, error)) ||
      !(vt = rows_like(q, nk, C, error)) || !(ot = rows_like(q, nq, C, error)) ||
      !(o = sige_tensor_dup(q, error)))
    goto out;
  sige_map_to_tokens(pass->ctx, &qm, qt);
  sige_map_to_tokens(pass->ctx, &km, kt);
  sige_map_to_tokens(pass->ctx, &vm, vt);
  if (!sige_token_attention(pass->ctx, qt, kt, vt, 1, 1, FALSE, ot, error)) goto out;
  {
    sige_tensor om = map_view(o);
    sige_tokens_to_map(pass->ctx, ot, &om);
  }
  sige_tensor *p = sige_pass_conv(pass, &a->proj, o, error);
  if (p) y = sige_pass_scatter(pass, g, p, x, NULL, error);
out:
  sige_tensor_free(q);
  sige_tensor_free(k);
  sige_tensor_free(v);
  sige_tensor_free(kf);
  sige_tensor_free(vf);
  sige_tensor_free(o);
  return y;
}

/* Stride-2 conv downsample (padding (0,1,0,1)) or nearest-x2 upsample + conv. */
sige_tensor *sige_unet_resample_conv_forward(const sige_conv_layer *conv,
                                             const sige_block_geometry *g, sige_pass *pass,
                                             gboolean sparse, const sige_tensor *x, gboolean up,
                                             GError **error) {
  if (!sige_pass_begin_group(pass, sparse, error)) return NULL;
  g_autofree int *idx = NULL;
  sige_resample_map map;
  if (up) {
    idx = g_new(int, 2 * (SIGE_H(x) + SIGE_W(x)));
    map = nearest_x2(SIGE_H(x), SIGE_W(x), idx);
  }
  /* sparse: one sige_sparse_conv reading x through the map (no block batch) */
  if (sige_pass_is_sparse(pass))
    return sige_pass_gather_conv_scatter(pass, g, x, up ? &map : NULL, NULL, NULL, SIGE_ACT_NONE,
                                         conv, SIGE_ACT_NONE, NULL, NULL, error);
  sige_tensor *h = sige_pass_gather(pass, g, x, up ? &map : NULL, NULL, NULL, SIGE_ACT_NONE, error);
  if (!h) return NULL;
  sige_tensor *t = sige_pass_conv(pass, conv, h, error);
  sige_tensor_free(h);
  return t ? sige_pass_scatter(pass, g, t, NULL, NULL, error) : NULL;
}

/* sinusoid(t_in) -> dense.0 -> swish -> dense.1 -> swish
 * (every block projects swish(temb)); a new [1, temb_ch] tensor. */
sige_tensor *sige_unet_temb_forward(const sige_unet_temb *e, sige_pass *pass, float t_in,
                                   GError **error) {
  int64_t s1[2] = {1, e->ch}, s2[2] = {1, e->temb_ch};
  g_autoptr(sige_tensor) emb = sige_tensor_new(2, s1, error);
  g_autoptr(sige_tensor) tmp = emb ? sige_tensor_new(2, s2, error) : NULL;
  sige_tensor *temb = tmp ? sige_tensor_new(2, s2, error) : NULL;
  if (!temb) return NULL;
  if (e->ldm)
    sige_timestep_embedding_ldm(&t_in, 1, e->ch, emb);
  else
    sige_timestep_embedding(&t_in, 1, e->ch, emb);
  if (!sige_linear(pass->ctx, emb, e->w0, e->b0, tmp, error)) goto fail;
  sige_activation(pass->ctx, tmp, SIGE_ACT_SWISH, tmp);
  if (!sige_linear(pass->ctx, tmp, e->w1, e->b1, temb, error)) goto fail;
  sige_activation(pass->ctx, temb, SIGE_ACT_SWISH, temb);
  return temb;
fail:
  sige_tensor_free(temb);
  return NULL;
}

/* A block's projection of swish(temb) (only the dense and full passes use
 * it; a sparse pass has it folded into the frozen norm2 statistics). */
float *sige_unet_temb_proj(sige_pass *pass, const sige_tensor *temb, const sige_unet_resblock *b,
                           GError **error) {
  const int n = (int)b->temb_b->numel;
  int64_t ps[2] = {1, n};
  g_autoptr(sige_tensor) pt = sige_tensor_new(2, ps, error);
  if (!pt || !sige_linear(pass->ctx, temb, b->temb_w, b->temb_b, pt, error)) return NULL;
  return g_memdup2(pt->data, sizeof(float) * n);
}


/* ---- spatial transformer (Stable Diffusion) ------------------------------ */

gboolean sige_unet_transformer_declare(sige_param_list *l, sige_unet_transformer *t,
                                       const char *p, int c, int heads, int depth,
                                       int context_dim, int ff, const sige_unet_norms *norm,
                                       float ln_eps, GError **error) {
  if (heads < 1 || c % heads || depth < 1 || context_dim < 1 || ff < 1) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "%s: %d channels do not split into %d heads (depth %d, context_dim %d, "
                "feed-forward %d)", p, c, heads, depth, context_dim, ff);
    return FALSE;
  }
  t->c = t->inner = c;
  t->heads = heads;
  t->depth = depth;
  t->context_dim = context_dim;
  t->ff = ff;
  t->ln_eps = ln_eps;
  t->norm = *norm;
  t->blocks = g_new0(sige_unet_tblock, depth);
  const int in = t->inner;
  sige_params_norm(l, &t->n_g, &t->n_b, c, "%s.norm", p);
  sige_params_conv(l, &t->proj_in, in, c, 1, 1, 0, TRUE, "%s.proj_in", p);
  for (int i = 0; i < depth; i++) {
    sige_unet_tblock *b = &t->blocks[i];
    g_autofree char *q = g_strdup_printf("%s.transformer_blocks.%d", p, i);
    sige_params_norm(l, &b->n1_g, &b->n1_b, in, "%s.norm1", q);
    sige_params_matrix(l, &b->q1, in, in, "%s.attn1.to_q.weight", q);
    sige_params_matrix(l, &b->k1, in, in, "%s.attn1.to_k.weight", q);
    sige_params_matrix(l, &b->v1, in, in, "%s.attn1.to_v.weight", q);
    sige_params_linear(l, &b->o1_w, &b->o1_b, in, in, "%s.attn1.to_out.0", q);
    sige_params_norm(l, &b->n2_g, &b->n2_b, in, "%s.norm2", q);
    sige_params_matrix(l, &b->q2, in, in, "%s.attn2.to_q.weight", q);
    sige_params_matrix(l, &b->k2, in, context_dim, "%s.attn2.to_k.weight", q);
    sige_params_matrix(l, &b->v2, in, context_dim, "%s.attn2.to_v.weight", q);
    sige_params_linear(l, &b->o2_w, &b->o2_b, in, in, "%s.attn2.to_out.0", q);
    sige_params_norm(l, &b->n3_g, &b->n3_b, in, "%s.norm3", q);
    sige_params_linear(l, &b->ff1_w, &b->ff1_b, 2 * ff, in, "%s.ff.net.0.proj", q);
    sige_params_linear(l, &b->ff2_w, &b->ff2_b, in, ff, "%s.ff.net.2", q);
  }
  sige_params_conv(l, &t->proj_out, c, in, 1, 1, 0, TRUE, "%s.proj_out", p);
  return TRUE;
}

void sige_unet_transformer_clear(sige_unet_transformer *t) {
  sige_tensor_free(t->n_g);
  sige_tensor_free(t->n_b);
  sige_conv_layer_clear(&t->proj_in);
  sige_conv_layer_clear(&t->proj_out);
  for (int i = 0; t->blocks && i < t->depth; i++) {
    sige_tensor **p = (sige_tensor **)&t->blocks[i];
    for (size_t j = 0; j < sizeof(sige_unet_tblock) / sizeof(sige_tensor *); j++)
      sige_tensor_free(p[j]);
  }
  g_free(t->blocks);
  memset(t, 0, sizeof *t);
}

/* A [rows, cols] tensor where x lives. */
static sige_tensor *rows_like(const sige_tensor *x, int64_t rows, int cols, GError **error) {
  sige_tensor *t = sige_tensor_new4_like(x, (int)rows, cols, 1, 1, error);
  if (t) t->ndim = 2; /* trailing dims are 1 */
  return t;
}

/* One basic block on the tokens x [n, inner] in place: x += attn1(norm1 x,
 * keys and values from norm1 kv); x += attn2(norm2 x, context);
 * x += ff(norm3 x).  kv: [m, inner] token rows, NULL for x itself. */
static gboolean tblock_forward(const sige_unet_transformer *t, const sige_unet_tblock *b,
                               sige_ctx *ctx, sige_tensor *x, const sige_tensor *kv,
                               const sige_tensor *context, GError **error) {
  const int64_t n = x->shape[0], nk = context->shape[0], m = kv ? kv->shape[0] : n;
  const int in = t->inner;
  g_autoptr(sige_tensor) h = rows_like(x, n, in, error);
  g_autoptr(sige_tensor) q = h ? rows_like(x, n, in, error) : NULL;
  g_autoptr(sige_tensor) k = q ? rows_like(x, m, in, error) : NULL;
  g_autoptr(sige_tensor) v = k ? rows_like(x, m, in, error) : NULL;
  g_autoptr(sige_tensor) hk = v && kv ? rows_like(x, m, in, error) : NULL;
  g_autoptr(sige_tensor) kc = v && (hk || !kv) ? rows_like(x, nk, in, error) : NULL;
  g_autoptr(sige_tensor) vc = kc ? rows_like(x, nk, in, error) : NULL;
  g_autoptr(sige_tensor) f = vc ? rows_like(x, n, 2 * t->ff, error) : NULL;
  g_autoptr(sige_tensor) g = f ? rows_like(x, n, t->ff, error) : NULL;
  if (!g) return FALSE;
  sige_layer_norm(ctx, x, b->n1_g, b->n1_b, t->ln_eps, h);
  if (kv) sige_layer_norm(ctx, kv, b->n1_g, b->n1_b, t->ln_eps, hk);
  const sige_tensor *src = kv ? hk : h;
  if (!sige_linear(ctx, h, b->q1, NULL, q, error) ||
      !sige_linear(ctx, src, b->k1, NULL, k, error) ||
      !sige_linear(ctx, src, b->v1, NULL, v, error) ||
      !sige_token_attention(ctx, q, k, v, 1, t->heads, FALSE, h, error) ||
      !sige_linear(ctx, h, b->o1_w, b->o1_b, q, error))
    return FALSE;
  sige_add(ctx, x, q, x);
  sige_layer_norm(ctx, x, b->n2_g, b->n2_b, t->ln_eps, h);
  if (!sige_linear(ctx, h, b->q2, NULL, q, error) ||
      !sige_linear(ctx, context, b->k2, NULL, kc, error) ||
      !sige_linear(ctx, context, b->v2, NULL, vc, error) ||
      !sige_token_attention(ctx, q, kc, vc, 1, t->heads, FALSE, h, error) ||
      !sige_linear(ctx, h, b->o2_w, b->o2_b, q, error))
    return FALSE;
  sige_add(ctx, x, q, x);
  sige_layer_norm(ctx, x, b->n3_g, b->n3_b, t->ln_eps, h);
  if (!sige_linear(ctx, h, b->ff1_w, b->ff1_b, f, error)) return FALSE;
  sige_geglu(ctx, f, g);
  if (!sige_linear(ctx, g, b->ff2_w, b->ff2_b, q, error)) return FALSE;
  sige_add(ctx, x, q, x);
  return TRUE;
}

/* A CNHW block batch [nb, C, b, b] read as the NCHW map [1, C, nb * b, b]
 * (the same memory: channel-major, then block, row, column), so that the
 * map <-> token ops give the blocks' tokens, block by block. */
static sige_tensor *blocks_as_map(const sige_tensor *blocks) {
  const int64_t shape[4] = {1, SIGE_C(blocks), (int64_t)SIGE_N(blocks) * SIGE_H(blocks),
                            SIGE_W(blocks)};
  sige_tensor *v = sige_tensor_view(blocks->data, 4, shape);
  v->backend = blocks->backend;
  return v;
}

sige_tensor *sige_unet_transformer_forward(const sige_unet_transformer *t,
                                           const sige_block_geometry *g, sige_pass *pass,
                                           gboolean sparse, const sige_tensor *x_in,
                                           const sige_tensor *context, GError **error) {
  const int C = t->c;
  if (SIGE_C(x_in) != C || context->ndim != 2 || context->shape[1] != t->context_dim ||
      (sparse && !g)) {
    char a[64], b[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "spatial transformer: input %s, context %s; expected %d channels and a context "
                "[tokens, %d]", sige_tensor_shape_str(x_in, a, sizeof a),
                sige_tensor_shape_str(context, b, sizeof b), C, t->context_dim);
    return NULL;
  }
  if (!sige_pass_begin_group(pass, sparse, error)) return NULL;
  /* the recording and sparse passes share the published form; a dense
   * pass (or the dense middle block) is the plain transformer */
  const gboolean blocks = sige_pass_is_sparse(pass);
  const gboolean published = blocks || sige_pass_records(pass);
  g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
  if (sige_pass_needs_stats(pass)) {
    g_autoptr(sige_tensor) x32 = sige_materialize(x_in, NULL, error); /* may be F16 */
    if (!x32 || !sige_unet_norm_fresh(&t->norm, pass, x32, t->n_g, t->n_b, NULL, scale, shift,
                                      error))
      return NULL;
  }
  if (!sige_pass_stats(pass, C, scale, shift, error)) return NULL;
  const sige_block_geometry *gg = g ? g : &(sige_block_geometry){.kernel = 1, .stride = 1};
  /* dense: the normalised map; sparse: its active 4x4 blocks */
  g_autoptr(sige_tensor) nx = sige_pass_gather(pass, gg, x_in, NULL, scale, shift, SIGE_ACT_NONE,
                                               error);
  g_autoptr(sige_tensor) p = nx ? sige_pass_conv(pass, &t->proj_in, nx, error) : NULL;
  if (!p) return NULL;
  g_clear_pointer(&nx, sige_tensor_free);
  /* the whole proj_in map: recorded (full pass), updated in place (sparse) */
  g_autoptr(sige_tensor) full = NULL;
  if (published) {
    sige_tensor *own = blocks ? sige_tensor_dup(p, error) : g_steal_pointer(&p);
    if (!own || !(full = sige_pass_scatter(pass, gg, own, NULL, NULL, error))) return NULL;
  }
  if (blocks && SIGE_N(p) == 0) { /* no active block: nothing to scatter */
    sige_tensor *y = sige_pass_conv(pass, &t->proj_out, p, error);
    return y ? sige_pass_scatter(pass, gg, y, x_in, NULL, error) : NULL;
  }
  g_autoptr(sige_tensor) qmap = blocks ? blocks_as_map(p) : NULL;
  const sige_tensor *qsrc = blocks ? qmap : published ? full : p;
  const int64_t n = (int64_t)SIGE_H(qsrc) * SIGE_W(qsrc);
  g_autoptr(sige_tensor) out_map = sige_tensor_new4_like(qsrc, 1, t->inner, SIGE_H(qsrc),
                                                        SIGE_W(qsrc), error);
  if (!out_map) return NULL;
  {
    g_autoptr(sige_tensor) q32 = sige_materialize(qsrc, NULL, error); /* full may be F16 */
    g_autoptr(sige_tensor) tok = q32 ? rows_like(q32, n, t->inner, error) : NULL;
    if (!tok) return NULL;
    sige_map_to_tokens(pass->ctx, q32, tok);
    /* self-attention keys and values: the whole proj_in map's tokens in the
     * published form (for every block of a deeper transformer, as there) */
    g_autoptr(sige_tensor) kv = NULL;
    if (published) {
      g_autoptr(sige_tensor) f32 = blocks ? sige_materialize(full, NULL, error) : NULL;
      const sige_tensor *fm = blocks ? f32 : q32;
      if (!fm || !(kv = rows_like(fm, (int64_t)SIGE_H(fm) * SIGE_W(fm), t->inner, error)))
        return NULL;
      sige_map_to_tokens(pass->ctx, fm, kv);
    }
    for (int i = 0; i < t->depth; i++)
      if (!tblock_forward(t, &t->blocks[i], pass->ctx, tok, kv, context, error)) return NULL;
    sige_tokens_to_map(pass->ctx, tok, out_map);
  }
  sige_tensor *y;
  if (blocks) {
    /* back to the block batch the tokens came from */
    const int64_t shape[4] = {SIGE_N(p), t->inner, SIGE_H(p), SIGE_W(p)};
    g_autoptr(sige_tensor) bview = sige_tensor_view(out_map->data, 4, shape);
    bview->backend = out_map->backend;
    bview->layout = SIGE_LAYOUT_CNHW;
    y = sige_pass_conv(pass, &t->proj_out, bview, error);
  } else {
    y = sige_pass_conv(pass, &t->proj_out, out_map, error);
  }
  return y ? sige_pass_scatter(pass, gg, y, x_in, NULL, error) : NULL;
}
