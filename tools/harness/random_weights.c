/* Random weights laid out exactly as the model loaders look them up. */
#include "random_weights.h"

#include <math.h>

#include "sige/error.h"

typedef struct {
  sige_rng rng;
  sige_weights *w;
  GError **error;
  gboolean failed;
} gen;

static sige_tensor *add(gen *g, const char *name, int ndim, const int64_t *shape) {
  if (g->failed) return NULL;
  sige_tensor *t = sige_tensor_new(ndim, shape, g->error);
  if (!t) {
    g->failed = TRUE;
    return NULL;
  }
  sige_weights_insert(g->w, name, t);
  return t;
}

static void fill_normal(gen *g, sige_tensor *t, double std) {
  if (!t) return;
  for (size_t i = 0; i < t->numel; i++) t->data[i] = (float)(std * sige_rng_normal(&g->rng));
}

static void add_vec(gen *g, const char *name, int n, float value) {
  int64_t s[1] = {n};
  sige_tensor *t = add(g, name, 1, s);
  if (t)
    for (int i = 0; i < n; i++) t->data[i] = value;
}

static void add_bias(gen *g, const char *prefix, int n) {
  g_autofree char *name = g_strdup_printf("%s.bias", prefix);
  int64_t s[1] = {n};
  fill_normal(g, add(g, name, 1, s), 0.01);
}

static void add_conv(gen *g, const char *prefix, int cout, int cin, int k, gboolean bias) {
  g_autofree char *name = g_strdup_printf("%s.weight", prefix);
  int64_t s[4] = {cout, cin, k, k};
  fill_normal(g, add(g, name, 4, s), 1.0 / sqrt((double)cin * k * k));
  if (bias) add_bias(g, prefix, cout);
}

static void add_linear(gen *g, const char *prefix, int out, int in) {
  g_autofree char *name = g_strdup_printf("%s.weight", prefix);
  int64_t s[2] = {out, in};
  fill_normal(g, add(g, name, 2, s), 1.0 / sqrt((double)in));
  add_bias(g, prefix, out);
}

static void add_norm(gen *g, const char *prefix, int c) {
  g_autofree char *nw = g_strdup_printf("%s.weight", prefix);
  g_autofree char *nb = g_strdup_printf("%s.bias", prefix);
  add_vec(g, nw, c, 1.0f);
  add_vec(g, nb, c, 0.0f);
}

static sige_weights *finish(gen *g) {
  if (g->failed) {
    sige_weights_free(g->w);
    return NULL;
  }
  return g->w;
}

/* ---- SPADE (NVlabs names) ---------------------------------------------- */

static void spade_norm(gen *g, const char *block, const char *norm, int c, int semantic_nc,
                       int nhidden) {
  g_autofree char *p = g_strdup_printf("%s.%s", block, norm);
  g_autofree char *shared = g_strdup_printf("%s.mlp_shared.0", p);
  g_autofree char *gamma = g_strdup_printf("%s.mlp_gamma", p);
  g_autofree char *beta = g_strdup_printf("%s.mlp_beta", p);
  g_autofree char *mean = g_strdup_printf("%s.param_free_norm.running_mean", p);
  g_autofree char *var = g_strdup_printf("%s.param_free_norm.running_var", p);
  add_conv(g, shared, nhidden, semantic_nc, 3, TRUE);
  add_conv(g, gamma, c, nhidden, 3, TRUE);
  add_conv(g, beta, c, nhidden, 3, TRUE);
  add_vec(g, mean, c, 0.0f);
  add_vec(g, var, c, 1.0f);
}

sige_weights *sige_random_spade_weights(const sige_spade_config *cfg, uint64_t seed,
                                        GError **error) {
  gen g = {.w = sige_weights_new(), .error = error};
  sige_rng_init(&g.rng, seed);
  const int nf = cfg->ngf, nhidden = 2 * nf;
  const int semantic_nc = cfg->label_nc + (cfg->contain_instance ? 1 : 0);
  const gboolean most = cfg->num_upsampling_layers == 7;
  /* the block list of sige_spade_build */
  const char *names[8] = {"head_0", "G_middle_0", "G_middle_1", "up_0",
                          "up_1",   "up_2",       "up_3",       "up_4"};
  const int fins[8] = {16 * nf, 16 * nf, 16 * nf, 16 * nf, 8 * nf, 4 * nf, 2 * nf, nf};
  const int fouts[8] = {16 * nf, 16 * nf, 16 * nf, 8 * nf, 4 * nf, 2 * nf, nf, nf / 2};
  add_conv(&g, "fc", 16 * nf, semantic_nc, 3, TRUE);
  for (int i = 0; i < (most ? 8 : 7); i++) {
    const int fin = fins[i], fout = fouts[i], fmid = MIN(fin, fout);
    g_autofree char *c0 = g_strdup_printf("%s.conv_0", names[i]);
    g_autofree char *c1 = g_strdup_printf("%s.conv_1", names[i]);
    g_autofree char *cs = g_strdup_printf("%s.conv_s", names[i]);
    add_conv(&g, c0, fmid, fin, 3, TRUE);
    add_conv(&g, c1, fout, fmid, 3, TRUE);
    spade_norm(&g, names[i], "norm_0", fin, semantic_nc, nhidden);
    spade_norm(&g, names[i], "norm_1", fmid, semantic_nc, nhidden);
    if (fin != fout) {
      add_conv(&g, cs, fout, fin, 1, FALSE);
      spade_norm(&g, names[i], "norm_s", fin, semantic_nc, nhidden);
    }
  }
  add_conv(&g, "conv_img", 3, most ? nf / 2 : nf, 3, TRUE);
  return finish(&g);
}

/* ---- sub-mobile SPADE (GAN Compression names) --------------------------- */

static void gancomp_norm(gen *g, const char *block, const char *norm, int c, int semantic_nc,
                         int hidden) {
  g_autofree char *p = g_strdup_printf("%s.%s", block, norm);
  g_autofree char *shared = g_strdup_printf("%s.mlp_shared.0", p);
  g_autofree char *mean = g_strdup_printf("%s.param_free_norm.running_mean", p);
  g_autofree char *var = g_strdup_printf("%s.param_free_norm.running_var", p);
  add_conv(g, shared, hidden, semantic_nc, 3, TRUE);
  const char *branches[2] = {"mlp_gamma", "mlp_beta"};
  for (int i = 0; i < 2; i++) {
    g_autofree char *dw = g_strdup_printf("%s.%s.conv.0", p, branches[i]);
    g_autofree char *pw = g_strdup_printf("%s.%s.conv.2", p, branches[i]);
    add_conv(g, dw, hidden, 1, 3, TRUE); /* depthwise: fan-in 9 */
    add_conv(g, pw, c, hidden, 1, TRUE);
  }
  add_vec(g, mean, c, 0.0f);
  add_vec(g, var, c, 1.0f);
}

sige_weights *sige_random_gancomp_weights(const sige_gancomp_config *cfg, uint64_t seed,
                                          GError **error) {
  gen g = {.w = sige_weights_new(), .error = error};
  sige_rng_init(&g.rng, seed);
  const int semantic_nc = cfg->base.label_nc + (cfg->base.contain_instance ? 1 : 0);
  /* the block list and widths of sige_gancomp_build */
  const char *names[7] = {"head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"};
  const int mult[7] = {16, 16, 16, 8, 4, 2, 1};
  int ic = 16 * cfg->channels[0];
  add_conv(&g, "fc", ic, semantic_nc, 3, TRUE);
  for (int i = 0; i < 7; i++) {
    const int ch = mult[i] * cfg->channels[i + 1], hidden = 2 * cfg->channels[i + 1];
    const gboolean shortcut = i >= 3;
    g_autofree char *c0 = g_strdup_printf("%s.conv_0", names[i]);
    g_autofree char *c1 = g_strdup_printf("%s.conv_1", names[i]);
    g_autofree char *cs = g_strdup_printf("%s.conv_s", names[i]);
    add_conv(&g, c0, ch, ic, 3, TRUE);
    add_conv(&g, c1, shortcut ? ch : ic, ch, 3, TRUE);
    gancomp_norm(&g, names[i], "norm_0", ic, semantic_nc, hidden);
    gancomp_norm(&g, names[i], "norm_1", ch, semantic_nc, hidden);
    if (shortcut) {
      add_conv(&g, cs, ch, ic, 1, FALSE);
      gancomp_norm(&g, names[i], "norm_s", ic, semantic_nc, hidden);
      ic = ch;
    }
  }
  add_conv(&g, "conv_img", 3, ic, 3, TRUE);
  return finish(&g);
}

/* ---- DDPM UNet (ermongroup/ddim names) --------------------------------- */

static void ddpm_resblock(gen *g, const char *p, int cin, int cout, int temb_ch) {
  g_autofree char *n1 = g_strdup_printf("%s.norm1", p);
  g_autofree char *n2 = g_strdup_printf("%s.norm2", p);
  g_autofree char *c1 = g_strdup_printf("%s.conv1", p);
  g_autofree char *c2 = g_strdup_printf("%s.conv2", p);
  g_autofree char *tp = g_strdup_printf("%s.temb_proj", p);
  g_autofree char *ns = g_strdup_printf("%s.nin_shortcut", p);
  add_norm(g, n1, cin);
  add_conv(g, c1, cout, cin, 3, TRUE);
  add_linear(g, tp, cout, temb_ch);
  add_norm(g, n2, cout);
  add_conv(g, c2, cout, cout, 3, TRUE);
  if (cin != cout) add_conv(g, ns, cout, cin, 1, TRUE);
}

static void ddpm_attn(gen *g, const char *p, int c) {
  const char *parts[5] = {"norm", "q", "k", "v", "proj_out"};
  for (int i = 0; i < 5; i++) {
    g_autofree char *n = g_strdup_printf("%s.%s", p, parts[i]);
    if (i == 0)
      add_norm(g, n, c);
    else
      add_conv(g, n, c, c, 1, TRUE);
  }
}

static gboolean ddpm_has_attn(const sige_ddpm_config *c, int res) {
  for (int i = 0; i < c->n_attn_resolutions; i++)
    if (c->attn_resolutions[i] == res) return TRUE;
  return FALSE;
}

sige_weights *sige_random_ddpm_weights(const sige_ddpm_config *cfg, uint64_t seed,
                                       GError **error) {
  if (cfg->n_ch_mult < 1 || cfg->n_ch_mult > 8 || cfg->num_res_blocks < 1 ||
      cfg->num_res_blocks > 8) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "DDPM config: %d levels, %d res blocks out of range", cfg->n_ch_mult,
                cfg->num_res_blocks);
    return NULL;
  }
  gen g = {.w = sige_weights_new(), .error = error};
  sige_rng_init(&g.rng, seed);
  const int ch = cfg->ch, L = cfg->n_ch_mult, nrb = cfg->num_res_blocks, temb_ch = 4 * ch;
  add_linear(&g, "temb.dense.0", temb_ch, ch);
  add_linear(&g, "temb.dense.1", temb_ch, temb_ch);
  add_conv(&g, "conv_in", ch, cfg->in_ch, 3, TRUE);
  /* the skip-channel stack mirrors sige_ddpm_build */
  int skip[80], n_skip = 0, res = cfg->image_size, block_in = ch;
  skip[n_skip++] = ch;
  for (int i = 0; i < L; i++) {
    const int block_out = ch * cfg->ch_mult[i];
    for (int j = 0; j < nrb; j++) {
      g_autofree char *p = g_strdup_printf("down.%d.block.%d", i, j);
      ddpm_resblock(&g, p, block_in, block_out, temb_ch);
      block_in = block_out;
      if (ddpm_has_attn(cfg, res)) {
        g_autofree char *pa = g_strdup_printf("down.%d.attn.%d", i, j);
        ddpm_attn(&g, pa, block_in);
      }
      skip[n_skip++] = block_in;
    }
    if (i != L - 1) {
      g_autofree char *p = g_strdup_printf("down.%d.downsample.conv", i);
      add_conv(&g, p, block_in, block_in, 3, TRUE);
      res /= 2;
      skip[n_skip++] = block_in;
    }
  }
  ddpm_resblock(&g, "mid.block_1", block_in, block_in, temb_ch);
  ddpm_attn(&g, "mid.attn_1", block_in);
  ddpm_resblock(&g, "mid.block_2", block_in, block_in, temb_ch);
  for (int i = L - 1; i >= 0; i--) {
    const int block_out = ch * cfg->ch_mult[i];
    for (int j = 0; j < nrb + 1; j++) {
      g_autofree char *p = g_strdup_printf("up.%d.block.%d", i, j);
      ddpm_resblock(&g, p, block_in + skip[--n_skip], block_out, temb_ch);
      block_in = block_out;
      if (ddpm_has_attn(cfg, res)) {
        g_autofree char *pa = g_strdup_printf("up.%d.attn.%d", i, j);
        ddpm_attn(&g, pa, block_in);
      }
    }
    if (i != 0) {
      g_autofree char *p = g_strdup_printf("up.%d.upsample.conv", i);
      add_conv(&g, p, block_in, block_in, 3, TRUE);
      res *= 2;
    }
  }
  add_norm(&g, "norm_out", block_in);
  add_conv(&g, "conv_out", cfg->out_ch, block_in, 3, TRUE);
  return finish(&g);
}

/* ---- PD UNet (pd_arch names: fused qkv, resampling residual blocks) ---- */

static void pd_resblock(gen *g, const char *p, int cin, int cout, int temb_ch) {
  g_autofree char *n1 = g_strdup_printf("%s.norm1", p);
  g_autofree char *n2 = g_strdup_printf("%s.norm2", p);
  g_autofree char *c1 = g_strdup_printf("%s.conv1", p);
  g_autofree char *c2 = g_strdup_printf("%s.conv2", p);
  g_autofree char *tp = g_strdup_printf("%s.temb_proj", p);
  g_autofree char *ns = g_strdup_printf("%s.nin_shortcut", p);
  add_norm(g, n1, cin);
  add_conv(g, c1, cout, cin, 3, TRUE);
  add_linear(g, tp, 2 * cout, temb_ch); /* scale | shift */
  add_norm(g, n2, cout);
  add_conv(g, c2, cout, cout, 3, TRUE);
  if (cin != cout) add_conv(g, ns, cout, cin, 1, TRUE);
}

static void pd_attn(gen *g, const char *p, int c) {
  g_autofree char *n = g_strdup_printf("%s.norm", p);
  g_autofree char *q = g_strdup_printf("%s.qkv", p);
  g_autofree char *o = g_strdup_printf("%s.proj_out", p);
  add_norm(g, n, c);
  add_conv(g, q, 3 * c, c, 1, TRUE);
  add_conv(g, o, c, c, 1, TRUE);
}

static gboolean pd_has_attn(const sige_pd_config *c, int res) {
  for (int i = 0; i < c->n_attn_resolutions; i++)
    if (c->attn_resolutions[i] == res) return TRUE;
  return FALSE;
}

sige_weights *sige_random_pd_weights(const sige_pd_config *cfg, uint64_t seed, GError **error) {
  if (cfg->n_ch_mult < 1 || cfg->n_ch_mult > 8 || cfg->num_res_blocks < 1 ||
      cfg->num_res_blocks > 8) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "PD config: %d levels, %d res blocks out of range", cfg->n_ch_mult,
                cfg->num_res_blocks);
    return NULL;
  }
  gen g = {.w = sige_weights_new(), .error = error};
  sige_rng_init(&g.rng, seed);
  const int ch = cfg->ch, L = cfg->n_ch_mult, nrb = cfg->num_res_blocks, tc = cfg->temb_ch;
  add_linear(&g, "temb.dense.0", tc, ch);
  add_linear(&g, "temb.dense.1", tc, tc);
  add_conv(&g, "conv_in", ch, cfg->in_ch, 3, TRUE);
  /* the skip-channel stack mirrors sige_pd_build */
  int skip[80], n_skip = 0, res = cfg->image_size, block_in = ch;
  skip[n_skip++] = ch;
  for (int i = 0; i < L; i++) {
    const int block_out = ch * cfg->ch_mult[i];
    for (int j = 0; j < nrb; j++) {
      g_autofree char *p = g_strdup_printf("down.%d.block.%d", i, j);
      pd_resblock(&g, p, block_in, block_out, tc);
      block_in = block_out;
      if (pd_has_attn(cfg, res)) {
        g_autofree char *pa = g_strdup_printf("down.%d.attn.%d", i, j);
        pd_attn(&g, pa, block_in);
      }
      skip[n_skip++] = block_in;
    }
    if (i != L - 1) {
      g_autofree char *p = g_strdup_printf("down.%d.downsample", i);
      pd_resblock(&g, p, block_in, block_in, tc);
      res /= 2;
      skip[n_skip++] = block_in;
    }
  }
  pd_resblock(&g, "mid.block_1", block_in, block_in, tc);
  pd_attn(&g, "mid.attn_1", block_in);
  pd_resblock(&g, "mid.block_2", block_in, block_in, tc);
  for (int i = L - 1; i >= 0; i--) {
    const int block_out = ch * cfg->ch_mult[i];
    for (int j = 0; j < nrb + 1; j++) {
      g_autofree char *p = g_strdup_printf("up.%d.block.%d", i, j);
      pd_resblock(&g, p, block_in + skip[--n_skip], block_out, tc);
      block_in = block_out;
      if (pd_has_attn(cfg, res)) {
        g_autofree char *pa = g_strdup_printf("up.%d.attn.%d", i, j);
        pd_attn(&g, pa, block_in);
      }
    }
    if (i != 0) {
      g_autofree char *p = g_strdup_printf("up.%d.upsample", i);
      pd_resblock(&g, p, block_in, block_in, tc);
      res *= 2;
    }
  }
  add_norm(&g, "norm_out", block_in);
  add_conv(&g, "conv_out", cfg->out_ch, block_in, 3, TRUE);
  return finish(&g);
}
