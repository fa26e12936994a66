/* The GAN-Compression sub-mobile SPADE generator (gaugan/models/
 * sub_mobile_spade_generators in the published SIGE code), one forward for
 * every mode.
 *
 * It is the GauGAN generator of spade_generator.c with per-block widths taken
 * from an 8-number channel configuration c0_c1_..._c7 and a lighter SPADE:
 *   fc: semantic_nc -> 16*c0 (= ic);
 *   block i (head_0, G_middle_0, G_middle_1, up_0..up_3, multiplier
 *   16,16,16,8,4,2,1): channel = mult*c(i+1), hidden = 2*c(i+1);
 *   conv_0 ic -> channel, conv_1 channel -> ic (or -> channel with a learned
 *   1x1 shortcut ic -> channel, the up_* blocks), then ic = channel;
 *   each SPADE norm: BatchNorm (running statistics) of its input, and gamma,
 *   beta each a separable conv of the norm's mlp_shared activations:
 *   depthwise 3x3 (hidden -> hidden) + InstanceNorm without affine +
 *   pointwise 1x1 (hidden -> norm channels).
 *
 * Load-time fusions (what the published fused model does, plus one more):
 * the mlp_shared convs of a block's norms are one conv; the two pointwise
 * convs of a norm are one 1x1 conv with groups = 2 over the depthwise outputs
 * [gamma | beta], so gamma and beta come out stacked and go through one
 * scatter_gather (the published code scatters and gathers them separately
 * with the same geometry: the same values).
 *
 * Instance-norm statistics.  In a sparse pass the sparse blocks apply the
 * per-channel scale/shift recorded by the full pass (sige_run_stats), as the
 * published SIGESeparableConv2d does.  The blocks that never run sparsely
 * (head_0, G_middle_0 with num_sparse_layers 5) are ordinary dense layers in
 * the published sparse pass too, and their InstanceNorms compute fresh
 * statistics of the edited input; so do ours. */
#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"

#define N_BLOCKS 7

typedef struct {
  float *bn_scale, *bn_shift;   /* BatchNorm of the norm's input */
  sige_conv_layer dw_gamma, dw_beta; /* depthwise 3x3, hidden -> hidden */
  sige_conv_layer pw;           /* 1x1, groups 2: [gamma dw | beta dw] -> [gamma | beta] */
  int nc;                       /* channels it normalises */
} gc_norm;

typedef struct {
  gboolean learned_shortcut, sparse, upsample_before;
  int ic, channel, hidden;
  sige_conv_layer mlp_shared; /* semantic_nc -> hidden * (2|3), + ReLU */
  gc_norm norm[3];            /* norm_0, norm_1, norm_s */
  sige_conv_layer conv_0, conv_1, conv_s;
} gc_block;

struct gancomp_model {
  sige_gancomp_config cfg;
  int semantic_nc, sh, sw, out_h, out_w;
  sige_conv_layer fc, conv_img;
  gc_block blocks[N_BLOCKS];
  sige_block_geometry g_main, g_sc;
};

void sige_gancomp_config_init(sige_gancomp_config *c) {
  memset(c, 0, sizeof *c);
  sige_spade_config_init(&c->base);
  /* the published compressed Cityscapes generator (GAN Compression) */
  const int published[8] = {32, 32, 32, 48, 32, 24, 24, 32};
  memcpy(c->channels, published, sizeof published);
  c->instancenorm_eps = 1e-5f;
}

gboolean sige_gancomp_parse_channels(const char *config_str, int channels[8], GError **error) {
  int v[8], n = 0;
  const char *p = config_str;
  while (p && *p && n < 9) {
    char *end = NULL;
    gint64 x = g_ascii_strtoll(p, &end, 10);
    if (end == p || x < 1 || x > 4096) break;
    if (n < 8) v[n] = (int)x;
    n++;
    p = end;
    if (*p == '_') p++;
    else if (*p) break;
  }
  if (!config_str || n != 8 || (p && *p) || config_str[strlen(config_str) - 1] == '_') {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "channel configuration \"%s\": expected 8 positive numbers joined by '_' "
                "(e.g. 32_32_32_48_32_24_24_32)",
                config_str ? config_str : "");
    return FALSE;
  }
  memcpy(channels, v, sizeof v);
  return TRUE;
}

static void norm_clear(gc_norm *n) {
  g_free(n->bn_scale);
  g_free(n->bn_shift);
  sige_conv_layer_clear(&n->dw_gamma);
  sige_conv_layer_clear(&n->dw_beta);
  sige_conv_layer_clear(&n->pw);
}

void sige_gancomp_free(gancomp_model *m) {
  if (!m) return;
  sige_conv_layer_clear(&m->fc);
  sige_conv_layer_clear(&m->conv_img);
  for (int i = 0; i < N_BLOCKS; i++) {
    gc_block *b = &m->blocks[i];
    sige_conv_layer_clear(&b->mlp_shared);
    sige_conv_layer_clear(&b->conv_0);
    sige_conv_layer_clear(&b->conv_1);
    sige_conv_layer_clear(&b->conv_s);
    for (int j = 0; j < 3; j++) norm_clear(&b->norm[j]);
  }
  g_free(m);
}

static gboolean load_bn(const sige_weights *w, const char *norm, int c, float eps, float **scale,
                        float **shift, GError **error) {
  g_autofree char *n_mean = g_strdup_printf("%s.param_free_norm.running_mean", norm);
  g_autofree char *n_var = g_strdup_printf("%s.param_free_norm.running_var", norm);
  int64_t shape[1] = {c};
  const sige_tensor *mean = sige_weights_require(w, n_mean, 1, shape, error);
  if (!mean) return FALSE;
  const sige_tensor *var = sige_weights_require(w, n_var, 1, shape, error);
  if (!var) return FALSE;
  *scale = g_new(float, c);
  *shift = g_new(float, c);
  for (int i = 0; i < c; i++) {
    if (!(var->data[i] + eps > 0.0f)) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s[%d] = %g: a variance must be >= 0",
                  n_var, i, var->data[i]);
      return FALSE;
    }
    const float sd = sqrtf(var->data[i] + eps);
    (*scale)[i] = 1.0f / sd;
    (*shift)[i] = -(mean->data[i] / sd);
  }
  return TRUE;
}

/* One SPADE norm: BatchNorm statistics and the two separable convs. */
static gboolean load_norm(const sige_weights *w, const char *prefix, int nc, int hidden, float eps,
                          gc_norm *n, GError **error) {
  n->nc = nc;
  g_autofree char *g0 = g_strdup_printf("%s.mlp_gamma.conv.0", prefix);
  g_autofree char *g2 = g_strdup_printf("%s.mlp_gamma.conv.2", prefix);
  g_autofree char *b0 = g_strdup_printf("%s.mlp_beta.conv.0", prefix);
  g_autofree char *b2 = g_strdup_printf("%s.mlp_beta.conv.2", prefix);
  sige_conv_layer pw[2] = {0};
  if (!sige_load_conv(w, g0, hidden, 1, 3, 1, 1, TRUE, &n->dw_gamma, error) ||
      !sige_load_conv(w, b0, hidden, 1, 3, 1, 1, TRUE, &n->dw_beta, error))
    return FALSE;
  n->dw_gamma.params.groups = n->dw_beta.params.groups = hidden;
  if (!sige_load_conv(w, g2, nc, hidden, 1, 1, 0, TRUE, &pw[0], error)) return FALSE;
  if (!sige_load_conv(w, b2, nc, hidden, 1, 1, 0, TRUE, &pw[1], error)) {
    sige_conv_layer_clear(&pw[0]);
    return FALSE;
  }
  if (!sige_conv_concat(pw, 2, &n->pw, error)) return FALSE;
  n->pw.params.groups = 2;
  return load_bn(w, prefix, nc, eps, &n->bn_scale, &n->bn_shift, error);
}

static gboolean load_block(const sige_weights *w, const char *name, int semantic_nc, float bn_eps,
                           gc_block *b, GError **error) {
  g_autofree char *p0 = g_strdup_printf("%s.conv_0", name);
  g_autofree char *p1 = g_strdup_printf("%s.conv_1", name);
  g_autofree char *ps = g_strdup_printf("%s.conv_s", name);
  const int cout = b->learned_shortcut ? b->channel : b->ic;
  if (!sige_load_conv(w, p0, b->channel, b->ic, 3, 1, 1, TRUE, &b->conv_0, error) ||
      !sige_load_conv(w, p1, cout, b->channel, 3, 1, 1, TRUE, &b->conv_1, error))
    return FALSE;
  if (b->learned_shortcut &&
      !sige_load_conv(w, ps, b->channel, b->ic, 1, 1, 0, FALSE, &b->conv_s, error))
    return FALSE;
  const char *norms[3] = {"norm_0", "norm_1", "norm_s"};
  const int nc[3] = {b->ic, b->channel, b->ic};
  const int n = b->learned_shortcut ? 3 : 2;
  sige_conv_layer shared[3] = {0};
  for (int i = 0; i < n; i++) {
    g_autofree char *pn = g_strdup_printf("%s.%s", name, norms[i]);
    g_autofree char *psh = g_strdup_printf("%s.%s.mlp_shared.0", name, norms[i]);
    if (!sige_load_conv(w, psh, b->hidden, semantic_nc, 3, 1, 1, TRUE, &shared[i], error) ||
        !load_norm(w, pn, nc[i], b->hidden, bn_eps, &b->norm[i], error)) {
      for (int j = 0; j <= i; j++) sige_conv_layer_clear(&shared[j]);
      return FALSE;
    }
  }
  return sige_conv_concat(shared, n, &b->mlp_shared, error);
}

gancomp_model *sige_gancomp_build(const sige_gancomp_config *cfg, const sige_weights *w,
                                  GError **error) {
  const sige_spade_config *sc = &cfg->base;
  if (sc->num_upsampling_layers < 5 || sc->num_upsampling_layers > 6 || sc->label_nc < 1 ||
      sc->crop_size < 1 || !(sc->aspect_ratio > 0) || !(cfg->instancenorm_eps > 0)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "sub-mobile SPADE config: num_upsampling_layers %d (expected 5 or 6: the "
                "published model has no \"most\" variant), label_nc %d, crop_size %d, "
                "aspect_ratio %g, instancenorm_eps %g out of range",
                sc->num_upsampling_layers, sc->label_nc, sc->crop_size, sc->aspect_ratio,
                cfg->instancenorm_eps);
    return NULL;
  }
  for (int i = 0; i < 8; i++)
    if (cfg->channels[i] < 1 || cfg->channels[i] > 4096) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  "sub-mobile SPADE config: channels[%d] = %d out of range", i, cfg->channels[i]);
      return NULL;
    }
  gancomp_model *m = g_new0(gancomp_model, 1);
  m->cfg = *cfg;
  m->semantic_nc = sc->label_nc + (sc->contain_instance ? 1 : 0);
  m->sw = sc->crop_size >> sc->num_upsampling_layers;
  m->sh = (int)lround(m->sw / sc->aspect_ratio);
  m->out_h = m->sh << sc->num_upsampling_layers;
  m->out_w = m->sw << sc->num_upsampling_layers;
  if (m->sw < 1 || m->sh < 1 || m->sh > 64 || m->sw > 64) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "sub-mobile SPADE config: latent size %dx%d (crop_size %d, %d upsampling layers) "
                "out of range",
                m->sh, m->sw, sc->crop_size, sc->num_upsampling_layers);
    sige_gancomp_free(m);
    return NULL;
  }
  sige_block_geometry_init(&m->g_main, 3, 1, 1, sc->main_block_size);
  sige_block_geometry_init(&m->g_sc, 1, 1, 0, sc->shortcut_block_size);
  const char *names[N_BLOCKS] = {"head_0", "G_middle_0", "G_middle_1", "up_0",
                                 "up_1",   "up_2",       "up_3"};
  const int mult[N_BLOCKS] = {16, 16, 16, 8, 4, 2, 1};
  int ic = 16 * cfg->channels[0];
  if (!sige_load_conv(w, "fc", ic, m->semantic_nc, 3, 1, 1, TRUE, &m->fc, error)) goto fail;
  for (int i = 0; i < N_BLOCKS; i++) {
    gc_block *b = &m->blocks[i];
    b->ic = ic;
    b->channel = mult[i] * cfg->channels[i + 1];
    b->hidden = 2 * cfg->channels[i + 1];
    b->learned_shortcut = i >= 3; /* fin != fout: the up_* blocks halve ngf multiples */
    b->sparse = sc->num_sparse_layers >= N_BLOCKS - i;
    /* G_middle_1 is preceded by an upsample only in the "more" variant */
    b->upsample_before = i > 0 && (i != 2 || sc->num_upsampling_layers >= 6);
    if (!load_block(w, names[i], m->semantic_nc, sc->batchnorm_eps, b, error)) goto fail;
    if (b->learned_shortcut) ic = b->channel;
  }
  if (!sige_load_conv(w, "conv_img", 3, ic, 3, 1, 1, TRUE, &m->conv_img, error)) goto fail;
  return m;
fail:
  sige_gancomp_free(m);
  return NULL;
}

/* The resampling maps a block reads its inputs through. */
typedef struct {
  sige_resample_map x_map, seg_map;
  int *buf;
} block_maps;

static void block_maps_init(block_maps *bm, const sige_tensor *x, gboolean up,
                            const sige_tensor *seg) {
  const int h = SIGE_H(x) * (up ? 2 : 1), w = SIGE_W(x) * (up ? 2 : 1);
  bm->buf = g_new(int, 2 * (h + w));
  int *p = bm->buf;
  bm->x_map = (sige_resample_map){h, w, p, p + h};
  sige_nearest_indices(SIGE_H(x), h, p);
  sige_nearest_indices(SIGE_W(x), w, p + h);
  p += h + w;
  bm->seg_map = (sige_resample_map){h, w, p, p + h};
  sige_nearest_indices(SIGE_H(seg), h, p);
  sige_nearest_indices(SIGE_W(seg), w, p + h);
}

/* A depthwise conv of x written into out (a channel view of the right shape). */
static gboolean depthwise_into(sige_run *run, const sige_conv_layer *conv, const sige_tensor *x,
                               sige_tensor *out, GError **error) {
  sige_conv2d_params p = conv->params;
  if (x->layout == SIGE_LAYOUT_CNHW) p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
  return sige_conv2d(run->ctx, x, conv->weight, conv->bias, &p, out, error);
}

/* gamma | beta of one norm from its activations (a full tensor, or the block
 * batch of the main geometry in a sparse pass), scattered and gathered to
 * g_out: depthwise convs, instance norm (fresh or frozen statistics),
 * pointwise convs. */
static sige_tensor *norm_gamma_beta(const gancomp_model *m, const gc_block *b, const gc_norm *n,
                                    sige_run *run, const sige_tensor *actv,
                                    const sige_block_geometry *g_out, GError **error) {
  const int hidden = b->hidden;
  int64_t shape[4];
  sige_conv2d_params p = n->dw_gamma.params;
  if (actv->layout == SIGE_LAYOUT_CNHW) p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
  sige_conv2d_out_shape(actv, n->dw_gamma.weight, &p, shape);
  g_autoptr(sige_tensor) dw = sige_tensor_new4_like(actv, (int)shape[0], 2 * hidden,
                                                    (int)shape[2], (int)shape[3], error);
  if (!dw) return NULL;
  dw->layout = actv->layout;
  if (shape[0] > 0) {
    g_autoptr(sige_tensor) vg = sige_channel_view(dw, 0, hidden);
    g_autoptr(sige_tensor) vb = sige_channel_view(dw, hidden, hidden);
    if (!depthwise_into(run, &n->dw_gamma, actv, vg, error) ||
        !depthwise_into(run, &n->dw_beta, actv, vb, error))
      return NULL;
  }
  g_autofree float *scale = g_new(float, 2 * hidden);
  g_autofree float *shift = g_new(float, 2 * hidden);
  /* dense blocks always normalise with fresh statistics (see the top) */
  if (!b->sparse || sige_run_needs_stats(run))
    sige_group_norm_affine(run->ctx, dw, 2 * hidden, m->cfg.instancenorm_eps, NULL, NULL, scale,
                           shift);
  if (b->sparse && !sige_run_stats(run, 2 * hidden, scale, shift, error)) return NULL;
  if (shape[0] > 0) sige_channel_affine(run->ctx, dw, scale, shift, FALSE, SIGE_ACT_NONE, dw);
  sige_tensor *t = sige_run_conv(run, &n->pw, dw, error);
  if (!t) return NULL;
  return sige_run_scatter_gather(run, &m->g_main, t, g_out, NULL, NULL, SIGE_ACT_NONE, error);
}

/* x * (1 + gamma) + beta with gamma | beta stacked along channels of gb. */
static void modulate(sige_run *run, sige_tensor *x, const sige_tensor *gb) {
  const int c = SIGE_C(x);
  g_autoptr(sige_tensor) gamma = sige_channel_view(gb, 0, c);
  g_autoptr(sige_tensor) beta = sige_channel_view(gb, c, c);
  sige_spade_modulate(run->ctx, x, gamma, beta, x);
}

#define TRY(expr) \
  do {            \
    if (!(expr)) goto out; \
  } while (0)

static sige_tensor *block_forward(const gancomp_model *m, const gc_block *b, sige_run *run,
                                  const sige_tensor *x, const sige_tensor *seg, GError **error) {
  const sige_block_geometry *gm = &m->g_main, *gs = &m->g_sc;
  block_maps bm;
  block_maps_init(&bm, x, b->upsample_before, seg);
  const sige_resample_map *xmap = b->upsample_before ? &bm.x_map : NULL;
  const gc_norm *n0 = &b->norm[0], *n1 = &b->norm[1], *ns = &b->norm[2];
  sige_tensor *seg_g = NULL, *actvs = NULL, *a0 = NULL, *a1 = NULL, *as = NULL, *xs = NULL,
              *gbs = NULL, *gb0 = NULL, *gb1 = NULL, *dx = NULL, *t = NULL, *out = NULL;

  TRY(seg_g = sige_run_gather(run, gm, seg, &bm.seg_map, NULL, NULL, SIGE_ACT_NONE, error));
  TRY(t = sige_run_conv(run, &b->mlp_shared, seg_g, error));
  sige_activation(run->ctx, t, SIGE_ACT_RELU, t);
  actvs = sige_run_scatter_gather(run, gm, g_steal_pointer(&t), gm, NULL, NULL, SIGE_ACT_NONE,
                                  error);
  TRY(actvs);
  a0 = sige_channel_view(actvs, 0, b->hidden);
  a1 = sige_channel_view(actvs, b->hidden, b->hidden);

  if (b->learned_shortcut) {
    as = sige_channel_view(actvs, 2 * b->hidden, b->hidden);
    TRY(xs = sige_run_gather(run, gs, x, xmap, ns->bn_scale, ns->bn_shift, SIGE_ACT_NONE, error));
    TRY(gbs = norm_gamma_beta(m, b, ns, run, as, gs, error));
    modulate(run, xs, gbs);
    TRY(t = sige_run_conv(run, &b->conv_s, xs, error));
    sige_tensor_free(xs);
    xs = g_steal_pointer(&t);
  }

  TRY(dx = sige_run_gather(run, gm, x, xmap, n0->bn_scale, n0->bn_shift, SIGE_ACT_NONE, error));
  TRY(gb0 = norm_gamma_beta(m, b, n0, run, a0, gm, error));
  modulate(run, dx, gb0);
  sige_activation(run->ctx, dx, SIGE_ACT_LEAKY_RELU, dx);
  TRY(t = sige_run_conv(run, &b->conv_0, dx, error));
  sige_tensor_free(dx);
  dx = sige_run_scatter_gather(run, gm, g_steal_pointer(&t), gm, n1->bn_scale, n1->bn_shift,
                               SIGE_ACT_NONE, error);
  TRY(dx);
  TRY(gb1 = norm_gamma_beta(m, b, n1, run, a1, gm, error));
  modulate(run, dx, gb1);
  sige_activation(run->ctx, dx, SIGE_ACT_LEAKY_RELU, dx);
  TRY(t = sige_run_conv(run, &b->conv_1, dx, error));

  if (b->learned_shortcut)
    out = sige_run_scatter_block_residual(run, gm, g_steal_pointer(&t), gs, g_steal_pointer(&xs),
                                          error);
  else
    out = sige_run_scatter(run, gm, g_steal_pointer(&t), x, xmap, error);
out:
  sige_tensor_free(seg_g);
  sige_tensor_free(actvs);
  sige_tensor_free(a0);
  sige_tensor_free(a1);
  sige_tensor_free(as);
  sige_tensor_free(xs);
  sige_tensor_free(gbs);
  sige_tensor_free(gb0);
  sige_tensor_free(gb1);
  sige_tensor_free(dx);
  sige_tensor_free(t);
  g_free(bm.buf);
  return out;
}

gboolean sige_gancomp_forward(const gancomp_model *m, sige_run *run, const sige_tensor *seg,
                              sige_tensor **out, GError **error) {
  *out = NULL;
  if (seg->ndim != 4 || SIGE_N(seg) != 1 || SIGE_C(seg) != m->semantic_nc ||
      SIGE_H(seg) != m->out_h || SIGE_W(seg) != m->out_w) {
    char buf[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "sub-mobile SPADE generator input is %s; expected [1, %d, %d, %d] (label_nc %d%s)",
                sige_tensor_shape_str(seg, buf, sizeof buf), m->semantic_nc, m->out_h, m->out_w,
                m->cfg.base.label_nc, m->cfg.base.contain_instance ? " + instance edges" : "");
    return FALSE;
  }
  run->layers_total = N_BLOCKS + 2;
  if (!sige_run_layer(run, FALSE, error)) return FALSE;
  int rows[64], cols[64];
  sige_nearest_indices(SIGE_H(seg), m->sh, rows);
  sige_nearest_indices(SIGE_W(seg), m->sw, cols);
  sige_resample_map latent = {m->sh, m->sw, rows, cols};
  g_autoptr(sige_tensor) small = sige_materialize(seg, &latent, error);
  if (!small) return FALSE;
  sige_tensor *x = sige_run_conv(run, &m->fc, small, error);
  if (!x) return FALSE;
  for (int i = 0; i < N_BLOCKS; i++) {
    const gc_block *b = &m->blocks[i];
    if (!sige_run_layer(run, b->sparse, error)) {
      sige_tensor_free(x);
      return FALSE;
    }
    sige_tensor *y = block_forward(m, b, run, x, seg, error);
    sige_tensor_free(x);
    if (!y) return FALSE;
    x = y;
  }
  if (!sige_run_layer(run, FALSE, error)) {
    sige_tensor_free(x);
    return FALSE;
  }
  /* x may be a view on a cache (F16 with fp16 caches): activate an F32 copy */
  g_autoptr(sige_tensor) act = sige_tensor_to_f32(x, error);
  sige_tensor_free(x);
  if (!act) return FALSE;
  sige_activation(run->ctx, act, SIGE_ACT_LEAKY_RELU, act);
  sige_tensor *img = sige_run_conv(run, &m->conv_img, act, error);
  if (!img) return FALSE;
  sige_activation(run->ctx, img, SIGE_ACT_TANH, img);
  *out = img;
  return TRUE;
}
