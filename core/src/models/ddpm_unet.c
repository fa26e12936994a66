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

static sige_tensor *load_matrix(const sige_weights *w, const char *name, int rows, int cols,
                                GError **error) {
  int64_t shape[2] = {rows, cols};
  const sige_tensor *t = sige_weights_require(w, name, 2, shape, error);
  return t ? sige_tensor_dup(t, error) : NULL;
}

static gboolean load_norm(const sige_weights *w, const char *prefix, int c, sige_tensor **g,
                          sige_tensor **b, GError **error) {
  g_autofree char *ng = g_strdup_printf("%s.weight", prefix);
  g_autofree char *nb = g_strdup_printf("%s.bias", prefix);
  return (*g = sige_load_vector(w, ng, c, error)) && (*b = sige_load_vector(w, nb, c, error));
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
  if (!load_norm(w, n1, cin, &b->n1_g, &b->n1_b, error) ||
      !load_norm(w, n2, cout, &b->n2_g, &b->n2_b, error) ||
      !sige_load_conv(w, c1, cout, cin, 3, 1, 1, TRUE, &b->conv1, error) ||
      !sige_load_conv(w, c2, cout, cout, 3, 1, 1, TRUE, &b->conv2, error) ||
      !(b->temb_w = load_matrix(w, tw, cout, temb_ch, error)) ||
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
  return load_norm(w, n, c, &a->n_g, &a->n_b, error) &&
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
  if (!(m->temb0_w = load_matrix(w, "temb.dense.0.weight", m->temb_ch, ch, error)) ||
      !(m->temb0_b = sige_load_vector(w, "temb.dense.0.bias", m->temb_ch, error)) ||
      !(m->temb1_w = load_matrix(w, "temb.dense.1.weight", m->temb_ch, m->temb_ch, error)) ||
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
  if (!load_norm(w, "norm_out", block_in, &m->out_g, &m->out_b, error) ||
      !sige_load_conv(w, "conv_out", cfg->out_ch, block_in, 3, 1, 1, TRUE, &m->conv_out, error))
    goto fail;
  return m;
fail:
  sige_ddpm_free(m);
  return NULL;
}

/* act(GroupNorm(x)) as a new tensor. */
static sige_tensor *norm_act(const ddpm_model *m, sige_run *run, const sige_tensor *x,
                             const sige_tensor *g, const sige_tensor *b, sige_act act,
                             const float *extra_shift, GError **error) {
  const int C = SIGE_C(x);
  g_autofree float *scale = g_new(float, C);
  g_autofree float *shift = g_new(float, C);
  sige_group_norm_affine(run->ctx, x, m->cfg.groupnorm_groups, m->cfg.groupnorm_eps, g, b, scale,
                         shift);
  (void)extra_shift;
  sige_tensor *out = sige_tensor_new4_uninit(1, C, SIGE_H(x), SIGE_W(x), error);
  if (out) sige_channel_affine(run->ctx, x, scale, shift, FALSE, act, out);
  return out;
}

static sige_tensor *resblock_forward(const ddpm_model *m, const ddpm_resblock *b, sige_run *run,
                                     const sige_tensor *x, const sige_tensor *temb_act,
                                     GError **error) {
  sige_tensor *h = NULL, *t = NULL, *sc = NULL, *proj = NULL;
  int64_t pshape[2] = {1, b->cout};
  if (!(h = norm_act(m, run, x, b->n1_g, b->n1_b, SIGE_ACT_SWISH, NULL, error))) goto fail;
  if (!(t = sige_run_conv(run, &b->conv1, h, error))) goto fail;
  g_clear_pointer(&h, sige_tensor_free);
  if (!(proj = sige_tensor_new(2, pshape, error)) ||
      !sige_linear(run->ctx, temb_act, b->temb_w, b->temb_b, proj, error))
    goto fail;
  {
    const size_t plane = (size_t)SIGE_H(t) * SIGE_W(t);
    for (int c = 0; c < b->cout; c++) {
      float *p = t->data + c * plane;
      const float v = proj->data[c];
      for (size_t i = 0; i < plane; i++) p[i] += v;
    }
  }
  if (!(h = norm_act(m, run, t, b->n2_g, b->n2_b, SIGE_ACT_SWISH, NULL, error))) goto fail;
  g_clear_pointer(&t, sige_tensor_free);
  if (!(t = sige_run_conv(run, &b->conv2, h, error))) goto fail;
  if (b->nin.weight) {
    if (!(sc = sige_run_conv(run, &b->nin, x, error))) goto fail;
    sige_add(run->ctx, t, sc, t);
  } else {
    sige_add(run->ctx, t, x, t);
  }
  sige_tensor_free(h);
  sige_tensor_free(sc);
  sige_tensor_free(proj);
  return t;
fail:
  sige_tensor_free(h);
  sige_tensor_free(t);
  sige_tensor_free(sc);
  sige_tensor_free(proj);
  return NULL;
}

static sige_tensor *attn_forward(const ddpm_model *m, const ddpm_attn *a, sige_run *run,
                                 const sige_tensor *x, GError **error) {
  sige_attention_params p = {
      .groups = m->cfg.groupnorm_groups, .eps = m->cfg.groupnorm_eps,
      .norm_gamma = a->n_g, .norm_beta = a->n_b,
      .q_w = a->q.weight, .q_b = a->q.bias, .k_w = a->k.weight, .k_b = a->k.bias,
      .v_w = a->v.weight, .v_b = a->v.bias, .proj_w = a->proj.weight, .proj_b = a->proj.bias};
  sige_tensor *out = sige_tensor_new4_uninit(1, SIGE_C(x), SIGE_H(x), SIGE_W(x), error);
  if (out && !sige_attention(run->ctx, x, &p, out, error)) g_clear_pointer(&out, sige_tensor_free);
  return out;
}

static sige_tensor *upsample2(const sige_tensor *x, GError **error) {
  const int H = SIGE_H(x), W = SIGE_W(x);
  g_autofree int *idx = g_new(int, 2 * (H + W));
  sige_nearest_indices(H, 2 * H, idx);
  sige_nearest_indices(W, 2 * W, idx + 2 * H);
  sige_resample_map map = {2 * H, 2 * W, idx, idx + 2 * H};
  return sige_materialize(x, &map, error);
}

static sige_tensor *concat(sige_run *run, const sige_tensor *a, const sige_tensor *b,
                           GError **error) {
  sige_tensor *out =
      sige_tensor_new4_uninit(1, SIGE_C(a) + SIGE_C(b), SIGE_H(a), SIGE_W(a), error);
  if (out) sige_concat_channels(run->ctx, a, b, out);
  return out;
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
  const int L = c->n_ch_mult, nrb = c->num_res_blocks;
  gboolean ok = FALSE;
  GPtrArray *hs = g_ptr_array_new_with_free_func((GDestroyNotify)sige_tensor_free);
  sige_tensor *h = NULL, *temb = NULL, *temb_act = NULL, *e = NULL, *tmp = NULL;
  int64_t s1[2] = {1, c->ch}, s2[2] = {1, m->temb_ch};
  run->layers_total = L * (2 * nrb + 3) + 4;
  if (!sige_run_layer(run, FALSE, error)) goto done;
  if (!(e = sige_tensor_new(2, s1, error)) || !(tmp = sige_tensor_new(2, s2, error)) ||
      !(temb = sige_tensor_new(2, s2, error)) || !(temb_act = sige_tensor_new(2, s2, error)))
    goto done;
  sige_timestep_embedding(&t, 1, c->ch, e);
  if (!sige_linear(run->ctx, e, m->temb0_w, m->temb0_b, tmp, error)) goto done;
  sige_activation(run->ctx, tmp, SIGE_ACT_SWISH, tmp);
  if (!sige_linear(run->ctx, tmp, m->temb1_w, m->temb1_b, temb, error)) goto done;
  sige_activation(run->ctx, temb, SIGE_ACT_SWISH, temb_act);

  if (!(h = sige_run_conv(run, &m->conv_in, x, error))) goto done;
  g_ptr_array_add(hs, h);
  for (int i = 0; i < L; i++) {
    const ddpm_level *l = &m->down[i];
    for (int j = 0; j < nrb; j++) {
      if (!sige_run_layer(run, FALSE, error)) goto done;
      h = resblock_forward(m, &l->blocks[j], run, g_ptr_array_index(hs, hs->len - 1), temb_act, error);
      if (!h) goto done;
      if (l->attn) {
        sige_tensor *a = attn_forward(m, &l->attn[j], run, h, error);
        sige_tensor_free(h);
        if (!(h = a)) goto done;
      }
      g_ptr_array_add(hs, h);
    }
    if (l->has_resample) {
      if (!sige_run_layer(run, FALSE, error)) goto done;
      if (!(h = sige_run_conv(run, &l->resample, g_ptr_array_index(hs, hs->len - 1), error))) goto done;
      g_ptr_array_add(hs, h);
    }
  }
  if (!sige_run_layer(run, FALSE, error)) goto done;
  h = resblock_forward(m, &m->mid1, run, g_ptr_array_index(hs, hs->len - 1), temb_act, error);
  sige_tensor *a = NULL;
  if (!h || !(a = attn_forward(m, &m->mid_attn, run, h, error))) goto done;
  sige_tensor_free(h);
  h = resblock_forward(m, &m->mid2, run, a, temb_act, error);
  sige_tensor_free(a);
  if (!h) goto done;
  for (int i = L - 1; i >= 0; i--) {
    const ddpm_level *l = &m->up[i];
    for (int j = 0; j < nrb + 1; j++) {
      if (!sige_run_layer(run, FALSE, error)) goto done;
      sige_tensor *skip = g_ptr_array_steal_index(hs, hs->len - 1);
      sige_tensor *cat = concat(run, h, skip, error);
      sige_tensor_free(skip);
      g_clear_pointer(&h, sige_tensor_free);
      if (!cat) goto done;
      h = resblock_forward(m, &l->blocks[j], run, cat, temb_act, error);
      sige_tensor_free(cat);
      if (!h) goto done;
      if (l->attn) {
        a = attn_forward(m, &l->attn[j], run, h, error);
        g_clear_pointer(&h, sige_tensor_free);
        if (!(h = a)) goto done;
      }
    }
    if (l->has_resample) {
      sige_tensor *u = upsample2(h, error);
      g_clear_pointer(&h, sige_tensor_free);
      if (!u) goto done;
      h = sige_run_conv(run, &l->resample, u, error);
      sige_tensor_free(u);
      if (!h) goto done;
    }
  }
  if (!sige_run_layer(run, FALSE, error)) goto done;
  {
    sige_tensor *n = norm_act(m, run, h, m->out_g, m->out_b, SIGE_ACT_SWISH, NULL, error);
    g_clear_pointer(&h, sige_tensor_free);
    if (!n) goto done;
    *out = sige_run_conv(run, &m->conv_out, n, error);
    sige_tensor_free(n);
    ok = *out != NULL;
  }
done:
  sige_tensor_free(h);
  sige_tensor_free(e);
  sige_tensor_free(tmp);
  sige_tensor_free(temb);
  sige_tensor_free(temb_act);
  g_ptr_array_unref(hs);
  return ok;
}
