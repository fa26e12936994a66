/* GauGAN's SPADE generator (NVlabs/SPADE), one forward for every mode.
 *
 * The per-norm mlp_shared convs of a residual block all read the same
 * segmentation map, so they are fused into one conv at load time (as the
 * published sparse code does); likewise mlp_gamma and mlp_beta of each norm.
 * BatchNorm uses running statistics, so it is a per-channel affine that the
 * sparse gather applies on the fly. */
#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"

typedef struct {
  gboolean learned_shortcut, sparse;
  int fin, fout, fmiddle, nhidden;
  sige_conv_layer mlp_shared;    /* semantic_nc -> nhidden * (2|3), + ReLU */
  sige_conv_layer gb_0, gb_1, gb_s; /* nhidden -> 2 * norm channels (gamma | beta) */
  float *bn_scale[3], *bn_shift[3]; /* norm_0, norm_1, norm_s */
  sige_conv_layer conv_0, conv_1, conv_s;
  gboolean upsample_before;
} spade_block;

struct spade_model {
  sige_spade_config cfg;
  int semantic_nc, sh, sw, out_h, out_w;
  sige_conv_layer fc, conv_img;
  spade_block *blocks;
  int n_blocks;
  sige_block_geometry g_main, g_sc;
};

void sige_spade_config_init(sige_spade_config *c) {
  memset(c, 0, sizeof *c);
  c->ngf = 64;
  c->label_nc = 35;
  c->contain_instance = TRUE;
  c->crop_size = 512;
  c->aspect_ratio = 2.0;
  c->num_upsampling_layers = 6;
  c->batchnorm_eps = 1e-5f;
  c->num_sparse_layers = 5;
  c->main_block_size = 6;
  c->shortcut_block_size = 4;
  c->diff_eps = 1e-3f;
  c->mask_dilate_radius = 1;
  c->pyramid_dilation = 2;
  c->pyramid_threshold = 0.3f;
}

static void block_clear(spade_block *b) {
  sige_conv_layer_clear(&b->mlp_shared);
  sige_conv_layer_clear(&b->gb_0);
  sige_conv_layer_clear(&b->gb_1);
  sige_conv_layer_clear(&b->gb_s);
  sige_conv_layer_clear(&b->conv_0);
  sige_conv_layer_clear(&b->conv_1);
  sige_conv_layer_clear(&b->conv_s);
  for (int i = 0; i < 3; i++) {
    g_free(b->bn_scale[i]);
    g_free(b->bn_shift[i]);
  }
}

void sige_spade_free(spade_model *m) {
  if (!m) return;
  sige_conv_layer_clear(&m->fc);
  sige_conv_layer_clear(&m->conv_img);
  for (int i = 0; i < m->n_blocks; i++) block_clear(&m->blocks[i]);
  g_free(m->blocks);
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
    if (var->data[i] + eps <= 0.0f) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s[%d] = %g: a variance must be >= 0",
                  n_var, i, var->data[i]);
      return FALSE;
    }
    float sd = sqrtf(var->data[i] + eps);
    (*scale)[i] = 1.0f / sd;
    (*shift)[i] = -(mean->data[i] / sd);
  }
  return TRUE;
}

/* mlp_shared of norm_0, norm_1 (and norm_s), fused. */
static gboolean load_norm_mlps(const sige_weights *w, const char *name, spade_block *b,
                               int semantic_nc, float eps, GError **error) {
  const char *norms[3] = {"norm_0", "norm_1", "norm_s"};
  const int nc[3] = {b->fin, b->fmiddle, b->fin};
  const int n = b->learned_shortcut ? 3 : 2;
  sige_conv_layer shared[3] = {0};
  sige_conv_layer *gb[3] = {&b->gb_0, &b->gb_1, &b->gb_s};
  for (int i = 0; i < n; i++) {
    g_autofree char *p_shared = g_strdup_printf("%s.%s.mlp_shared.0", name, norms[i]);
    g_autofree char *p_gamma = g_strdup_printf("%s.%s.mlp_gamma", name, norms[i]);
    g_autofree char *p_beta = g_strdup_printf("%s.%s.mlp_beta", name, norms[i]);
    g_autofree char *p_norm = g_strdup_printf("%s.%s", name, norms[i]);
    sige_conv_layer gamma_beta[2];
    if (!sige_load_conv(w, p_shared, b->nhidden, semantic_nc, 3, 1, 1, TRUE, &shared[i], error) ||
        !sige_load_conv(w, p_gamma, nc[i], b->nhidden, 3, 1, 1, TRUE, &gamma_beta[0], error))
      goto fail;
    if (!sige_load_conv(w, p_beta, nc[i], b->nhidden, 3, 1, 1, TRUE, &gamma_beta[1], error)) {
      sige_conv_layer_clear(&gamma_beta[0]);
      goto fail;
    }
    if (!sige_conv_concat(gamma_beta, 2, gb[i], error)) goto fail;
    if (!load_bn(w, p_norm, nc[i], eps, &b->bn_scale[i], &b->bn_shift[i], error)) goto fail;
  }
  return sige_conv_concat(shared, n, &b->mlp_shared, error);
fail:
  for (int i = 0; i < n; i++) sige_conv_layer_clear(&shared[i]);
  return FALSE;
}

static gboolean load_block(const sige_weights *w, const char *name, int fin, int fout,
                           const sige_spade_config *cfg, int semantic_nc, int nhidden,
                           spade_block *b, GError **error) {
  b->fin = fin;
  b->fout = fout;
  b->fmiddle = MIN(fin, fout);
  b->learned_shortcut = fin != fout;
  b->nhidden = nhidden;
  g_autofree char *p0 = g_strdup_printf("%s.conv_0", name);
  g_autofree char *p1 = g_strdup_printf("%s.conv_1", name);
  g_autofree char *ps = g_strdup_printf("%s.conv_s", name);
  if (!sige_load_conv(w, p0, b->fmiddle, fin, 3, 1, 1, TRUE, &b->conv_0, error) ||
      !sige_load_conv(w, p1, fout, b->fmiddle, 3, 1, 1, TRUE, &b->conv_1, error))
    return FALSE;
  if (b->learned_shortcut && !sige_load_conv(w, ps, fout, fin, 1, 1, 0, FALSE, &b->conv_s, error))
    return FALSE;
  return load_norm_mlps(w, name, b, semantic_nc, cfg->batchnorm_eps, error);
}

spade_model *sige_spade_build(const sige_spade_config *cfg, const sige_weights *w,
                              GError **error) {
  if (cfg->num_upsampling_layers < 5 || cfg->num_upsampling_layers > 7 || cfg->ngf < 2 ||
      cfg->label_nc < 1 || cfg->crop_size < 1 || !(cfg->aspect_ratio > 0)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "SPADE config: num_upsampling_layers %d (expected 5, 6 or 7), ngf %d, label_nc %d, "
                "crop_size %d, aspect_ratio %g out of range",
                cfg->num_upsampling_layers, cfg->ngf, cfg->label_nc, cfg->crop_size,
                cfg->aspect_ratio);
    return NULL;
  }
  spade_model *m = g_new0(spade_model, 1);
  m->cfg = *cfg;
  const int nf = cfg->ngf;
  m->semantic_nc = cfg->label_nc + (cfg->contain_instance ? 1 : 0);
  m->sw = cfg->crop_size >> cfg->num_upsampling_layers;
  m->sh = (int)lround(m->sw / cfg->aspect_ratio);
  m->out_h = m->sh << cfg->num_upsampling_layers;
  m->out_w = m->sw << cfg->num_upsampling_layers;
  if (m->sw < 1 || m->sh < 1) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "SPADE config: crop_size %d is too small for %d upsampling layers", cfg->crop_size,
                cfg->num_upsampling_layers);
    sige_spade_free(m);
    return NULL;
  }
  const gboolean most = cfg->num_upsampling_layers == 7;
  const char *names[8] = {"head_0", "G_middle_0", "G_middle_1", "up_0",
                          "up_1",   "up_2",       "up_3",       "up_4"};
  const int fins[8] = {16 * nf, 16 * nf, 16 * nf, 16 * nf, 8 * nf, 4 * nf, 2 * nf, nf};
  const int fouts[8] = {16 * nf, 16 * nf, 16 * nf, 8 * nf, 4 * nf, 2 * nf, nf, nf / 2};
  m->n_blocks = most ? 8 : 7;
  m->blocks = g_new0(spade_block, m->n_blocks);
  sige_block_geometry_init(&m->g_main, 3, 1, 1, cfg->main_block_size);
  sige_block_geometry_init(&m->g_sc, 1, 1, 0, cfg->shortcut_block_size);
  if (!sige_load_conv(w, "fc", 16 * nf, m->semantic_nc, 3, 1, 1, TRUE, &m->fc, error))
    goto fail;
  for (int i = 0; i < m->n_blocks; i++) {
    spade_block *b = &m->blocks[i];
    if (!load_block(w, names[i], fins[i], fouts[i], cfg, m->semantic_nc, 2 * nf, b, error))
      goto fail;
    b->sparse = cfg->num_sparse_layers >= m->n_blocks - i;
    /* G_middle_1 is preceded by an upsample only in the "more"/"most" variants */
    b->upsample_before = i > 0 && (i != 2 || cfg->num_upsampling_layers >= 6);
  }
  if (!sige_load_conv(w, "conv_img", 3, most ? nf / 2 : nf, 3, 1, 1, TRUE, &m->conv_img, error))
    goto fail;
  return m;
fail:
  sige_spade_free(m);
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

static sige_tensor *block_forward(const spade_model *m, const spade_block *b, sige_run *run,
                                  const sige_tensor *x, const sige_tensor *seg, GError **error) {
  const sige_block_geometry *gm = &m->g_main, *gs = &m->g_sc;
  block_maps bm;
  block_maps_init(&bm, x, b->upsample_before, seg);
  const sige_resample_map *xmap = b->upsample_before ? &bm.x_map : NULL;
  sige_tensor *seg_g = NULL, *actvs = NULL, *a0 = NULL, *a1 = NULL, *as = NULL, *xs = NULL,
              *gbs = NULL, *gb0 = NULL, *gb1 = NULL, *dx = NULL, *t = NULL, *out = NULL;

  TRY(seg_g = sige_run_gather(run, gm, seg, &bm.seg_map, NULL, NULL, SIGE_ACT_NONE, error));
  TRY(t = sige_run_conv(run, &b->mlp_shared, seg_g, error));
  g_clear_pointer(&seg_g, sige_tensor_free);
  sige_activation(run->ctx, t, SIGE_ACT_RELU, t);
  actvs = sige_run_scatter_gather(run, gm, g_steal_pointer(&t), gm, NULL, NULL, SIGE_ACT_NONE,
                                  error);
  TRY(actvs);
  a0 = sige_channel_view(actvs, 0, b->nhidden);
  a1 = sige_channel_view(actvs, b->nhidden, b->nhidden);

  if (b->learned_shortcut) {
    as = sige_channel_view(actvs, 2 * b->nhidden, b->nhidden);
    TRY(xs = sige_run_gather(run, gs, x, xmap, b->bn_scale[2], b->bn_shift[2], SIGE_ACT_NONE,
                             error));
    TRY(t = sige_run_conv(run, &b->gb_s, as, error));
    gbs = sige_run_scatter_gather(run, gm, g_steal_pointer(&t), gs, NULL, NULL, SIGE_ACT_NONE,
                                  error);
    TRY(gbs);
    modulate(run, xs, gbs);
    g_clear_pointer(&gbs, sige_tensor_free);
    TRY(t = sige_run_conv(run, &b->conv_s, xs, error));
    sige_tensor_free(xs);
    xs = t;
    t = NULL;
  }

  TRY(dx = sige_run_gather(run, gm, x, xmap, b->bn_scale[0], b->bn_shift[0], SIGE_ACT_NONE,
                           error));
  TRY(t = sige_run_conv(run, &b->gb_0, a0, error));
  gb0 = sige_run_scatter_gather(run, gm, g_steal_pointer(&t), gm, NULL, NULL, SIGE_ACT_NONE,
                                error);
  TRY(gb0);
  modulate(run, dx, gb0);
  g_clear_pointer(&gb0, sige_tensor_free);
  sige_activation(run->ctx, dx, SIGE_ACT_LEAKY_RELU, dx);
  TRY(t = sige_run_conv(run, &b->conv_0, dx, error));
  sige_tensor_free(dx);
  dx = sige_run_scatter_gather(run, gm, g_steal_pointer(&t), gm, b->bn_scale[1], b->bn_shift[1],
                               SIGE_ACT_NONE, error);
  TRY(dx);
  TRY(t = sige_run_conv(run, &b->gb_1, a1, error));
  /* with fp16 caches the full pass goes on with owned float32 copies of what
   * it records: drop each as soon as it is used, or the largest block holds
   * all of them at once (about 0.5 GB at 256x512) */
  g_clear_pointer(&a0, sige_tensor_free);
  g_clear_pointer(&a1, sige_tensor_free);
  g_clear_pointer(&as, sige_tensor_free);
  g_clear_pointer(&actvs, sige_tensor_free);
  gb1 = sige_run_scatter_gather(run, gm, g_steal_pointer(&t), gm, NULL, NULL, SIGE_ACT_NONE,
                                error);
  TRY(gb1);
  modulate(run, dx, gb1);
  g_clear_pointer(&gb1, sige_tensor_free);
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

gboolean sige_spade_forward(const spade_model *m, sige_run *run, const sige_tensor *seg,
                            sige_tensor **out, GError **error) {
  *out = NULL;
  if (seg->ndim != 4 || SIGE_N(seg) != 1 || SIGE_C(seg) != m->semantic_nc ||
      SIGE_H(seg) != m->out_h || SIGE_W(seg) != m->out_w) {
    char buf[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "SPADE generator input is %s; expected [1, %d, %d, %d] (label_nc %d%s)",
                sige_tensor_shape_str(seg, buf, sizeof buf), m->semantic_nc, m->out_h, m->out_w,
                m->cfg.label_nc, m->cfg.contain_instance ? " + instance edges" : "");
    return FALSE;
  }
  run->layers_total = m->n_blocks + 2;
  if (!sige_run_layer(run, FALSE, error)) return FALSE;
  int rows[64], cols[64];
  if (m->sh > 64 || m->sw > 64) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "latent size %dx%d too large", m->sh, m->sw);
    return FALSE;
  }
  sige_nearest_indices(SIGE_H(seg), m->sh, rows);
  sige_nearest_indices(SIGE_W(seg), m->sw, cols);
  sige_resample_map latent = {m->sh, m->sw, rows, cols};
  g_autoptr(sige_tensor) small = sige_materialize(seg, &latent, error);
  if (!small) return FALSE;
  sige_tensor *x = sige_run_conv(run, &m->fc, small, error);
  if (!x) return FALSE;
  for (int i = 0; i < m->n_blocks; i++) {
    const spade_block *b = &m->blocks[i];
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
