/* The SPADE generator blocks (see spade_blocks.h), one forward for every
 * mode.
 *
 * The per-norm mlp_shared convs of a residual block all read the same
 * segmentation map, so they are fused into one conv at load time (as the
 * published sparse code does); likewise mlp_gamma and mlp_beta of each norm
 * (for the separable form: the two pointwise convs become one 1x1 conv with
 * groups = 2 over the depthwise outputs [gamma | beta], so gamma and beta
 * come out stacked and go through one scatter_gather; the published code
 * scatters and gathers them separately with the same geometry: the same
 * values).  BatchNorm uses running statistics, so it is a per-channel affine
 * that the sparse gather applies on the fly.
 *
 * Instance-norm statistics of the separable form.  In a sparse pass the
 * sparse blocks apply the per-channel scale/shift recorded by the full pass
 * (sige_pass_stats), as the published SIGESeparableConv2d does.  The blocks
 * that never run sparsely (head_0, G_middle_0 with num_sparse_layers 5) are
 * ordinary dense layers in the published sparse pass too, and their
 * InstanceNorms compute fresh statistics of the edited input; so do ours. */
#include "spade_blocks.h"

#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"

/* The rows of the lowest level for sw columns: sw / aspect_ratio, rounded;
 * 0 when that is outside 1..64 (an aspect ratio read from a file can be any
 * double; it is checked before any integer conversion or shift). */
static int latent_rows(int sw, double aspect_ratio) {
  const double rows = floor(sw / aspect_ratio + 0.5);
  return rows >= 1 && rows <= 64 ? (int)rows : 0;
}

gboolean sige_spade_latent_init(const sige_spade_config *c, const char *name,
                                sige_spade_latent *lat, GError **error) {
  lat->semantic_nc = c->label_nc + (c->contain_instance ? 1 : 0);
  lat->sw = c->crop_size >> c->num_upsampling_layers;
  lat->sh = latent_rows(lat->sw, c->aspect_ratio);
  if (lat->sw < 1 || lat->sh < 1 || lat->sw > 64) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "%s config: latent size %gx%d (crop_size %d, %d upsampling layers, aspect_ratio "
                "%g) out of range (1 to 64)",
                name, floor(lat->sw / c->aspect_ratio + 0.5), lat->sw, c->crop_size,
                c->num_upsampling_layers, c->aspect_ratio);
    return FALSE;
  }
  lat->out_h = lat->sh << c->num_upsampling_layers;
  lat->out_w = lat->sw << c->num_upsampling_layers;
  return TRUE;
}

void sige_spade_input_shape(const sige_spade_config *c, int64_t shape[4]) {
  int sh, sw;
  sige_spade_lowest_level(c, &sh, &sw);
  shape[0] = 1;
  shape[1] = c->label_nc + (c->contain_instance ? 1 : 0);
  shape[2] = (int64_t)sh << c->num_upsampling_layers;
  shape[3] = (int64_t)sw << c->num_upsampling_layers;
}

void sige_spade_lowest_level(const sige_spade_config *c, int *h, int *w) {
  *w = c->crop_size >> c->num_upsampling_layers;
  *h = latent_rows(*w, c->aspect_ratio);
}

/* ---- declarations ------------------------------------------------------- */

static const char *const norm_names[3] = {"norm_0", "norm_1", "norm_s"};

sige_spade_generator *sige_spade_generator_new(const sige_spade_config *c, const char *name,
                                               sige_spade_norm_kind norm_kind,
                                               float instancenorm_eps, int n_blocks,
                                               GError **error) {
  sige_spade_latent lat;
  if (!sige_spade_latent_init(c, name, &lat, error)) return NULL;
  sige_spade_generator *g = g_new0(sige_spade_generator, 1);
  g->name = name;
  g->lat = lat;
  g->norm_kind = norm_kind;
  g->num_upsampling_layers = c->num_upsampling_layers;
  g->num_sparse_layers = c->num_sparse_layers;
  g->batchnorm_eps = c->batchnorm_eps;
  g->instancenorm_eps = instancenorm_eps;
  g->label_nc = c->label_nc;
  g->contain_instance = c->contain_instance;
  sige_block_geometry_init(&g->g_main, 3, 1, 1, c->sparse.block_size);
  sige_block_geometry_init(&g->g_sc, 1, 1, 0, c->sparse.shortcut_block_size);
  g->n_blocks = n_blocks;
  g->blocks = g_new0(sige_spade_block, n_blocks);
  return g;
}

void sige_spade_block_declare(sige_param_list *l, sige_spade_generator *g, int i,
                              const char *name, int fin, int fmiddle, int fout, int hidden,
                              gboolean learned_shortcut) {
  sige_spade_block *b = &g->blocks[i];
  b->name = name;
  b->sparse = g->num_sparse_layers >= g->n_blocks - i;
  /* G_middle_1 is preceded by an upsample only in the "more"/"most" variants */
  b->upsample_before = i > 0 && (i != 2 || g->num_upsampling_layers >= 6);
  b->fin = fin;
  b->fmiddle = fmiddle;
  b->fout = fout;
  b->hidden = hidden;
  b->learned_shortcut = learned_shortcut;
  b->nc[0] = b->nc[2] = fin;
  b->nc[1] = fmiddle;
  /* the order of the published module tree (the random-weight generator
   * draws in list order) */
  sige_params_conv(l, &b->conv_0, fmiddle, fin, 3, 1, 1, TRUE, "%s.conv_0", name);
  sige_params_conv(l, &b->conv_1, fout, fmiddle, 3, 1, 1, TRUE, "%s.conv_1", name);
  for (int k = 0; k < (learned_shortcut ? 3 : 2); k++) {
    const char *n = norm_names[k];
    const int nc = b->nc[k], sem = g->lat.semantic_nc;
    if (k == 2) sige_params_conv(l, &b->conv_s, fout, fin, 1, 1, 0, FALSE, "%s.conv_s", name);
    sige_params_conv(l, &b->shared[k], hidden, sem, 3, 1, 1, TRUE, "%s.%s.mlp_shared.0", name, n);
    if (g->norm_kind == SIGE_SPADE_NORM_SEPARABLE) {
      sige_params_conv(l, &b->dw_gamma[k], hidden, 1, 3, 1, 1, TRUE, "%s.%s.mlp_gamma.conv.0",
                       name, n);
      sige_params_conv(l, &b->gamma[k], nc, hidden, 1, 1, 0, TRUE, "%s.%s.mlp_gamma.conv.2",
                       name, n);
      sige_params_conv(l, &b->dw_beta[k], hidden, 1, 3, 1, 1, TRUE, "%s.%s.mlp_beta.conv.0",
                       name, n);
      sige_params_conv(l, &b->beta[k], nc, hidden, 1, 1, 0, TRUE, "%s.%s.mlp_beta.conv.2", name,
                       n);
    } else {
      sige_params_conv(l, &b->gamma[k], nc, hidden, 3, 1, 1, TRUE, "%s.%s.mlp_gamma", name, n);
      sige_params_conv(l, &b->beta[k], nc, hidden, 3, 1, 1, TRUE, "%s.%s.mlp_beta", name, n);
    }
    sige_params_vector(l, &b->bn_mean[k], SIGE_PARAM_RUNNING_MEAN, nc,
                       "%s.%s.param_free_norm.running_mean", name, n);
    sige_params_vector(l, &b->bn_var[k], SIGE_PARAM_RUNNING_VAR, nc,
                       "%s.%s.param_free_norm.running_var", name, n);
  }
}

/* BatchNorm with running statistics as x * scale + shift. */
static gboolean bn_affine(sige_spade_block *b, int i, float eps, GError **error) {
  const int c = b->nc[i];
  const float *mean = b->bn_mean[i]->data, *var = b->bn_var[i]->data;
  b->bn_scale[i] = g_new(float, c);
  b->bn_shift[i] = g_new(float, c);
  for (int k = 0; k < c; k++) {
    if (!(var[k] + eps > 0.0f)) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s.%s.param_free_norm.running_var[%d] = %g: a variance must be >= 0", b->name,
                  norm_names[i], k, var[k]);
      return FALSE;
    }
    const float sd = sqrtf(var[k] + eps);
    b->bn_scale[i][k] = 1.0f / sd;
    b->bn_shift[i][k] = -(mean[k] / sd);
  }
  return TRUE;
}

gboolean sige_spade_generator_finish(void *impl, GError **error) {
  sige_spade_generator *g = impl;
  for (int j = 0; j < g->n_blocks; j++) {
    sige_spade_block *b = &g->blocks[j];
    const int n = b->learned_shortcut ? 3 : 2;
    for (int i = 0; i < n; i++) {
      sige_conv_layer parts[2] = {b->gamma[i], b->beta[i]};
      memset(&b->gamma[i], 0, sizeof b->gamma[i]);
      memset(&b->beta[i], 0, sizeof b->beta[i]);
      if (!sige_conv_concat(parts, 2, &b->gb[i], error)) return FALSE;
      if (g->norm_kind == SIGE_SPADE_NORM_SEPARABLE) {
        b->gb[i].params.groups = 2;
        b->dw_gamma[i].params.groups = b->dw_beta[i].params.groups = b->hidden;
      }
      if (!bn_affine(b, i, g->batchnorm_eps, error)) return FALSE;
    }
    if (!sige_conv_concat(b->shared, n, &b->mlp_shared, error)) return FALSE;
  }
  return TRUE;
}

static void block_clear(sige_spade_block *b) {
  sige_conv_layer_clear(&b->mlp_shared);
  sige_conv_layer_clear(&b->conv_0);
  sige_conv_layer_clear(&b->conv_1);
  sige_conv_layer_clear(&b->conv_s);
  for (int i = 0; i < 3; i++) {
    sige_conv_layer_clear(&b->shared[i]);
    sige_conv_layer_clear(&b->gamma[i]);
    sige_conv_layer_clear(&b->beta[i]);
    sige_conv_layer_clear(&b->gb[i]);
    sige_conv_layer_clear(&b->dw_gamma[i]);
    sige_conv_layer_clear(&b->dw_beta[i]);
    sige_tensor_free(b->bn_mean[i]);
    sige_tensor_free(b->bn_var[i]);
    g_free(b->bn_scale[i]);
    g_free(b->bn_shift[i]);
  }
}

void sige_spade_generator_free(void *impl) {
  sige_spade_generator *g = impl;
  if (!g) return;
  sige_conv_layer_clear(&g->fc);
  sige_conv_layer_clear(&g->conv_img);
  for (int i = 0; g->blocks && i < g->n_blocks; i++) block_clear(&g->blocks[i]);
  g_free(g->blocks);
  g_free(g);
}

/* ---- forward ------------------------------------------------------------ */

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
static gboolean depthwise_into(sige_pass *pass, const sige_conv_layer *conv, const sige_tensor *x,
                               sige_tensor *out, GError **error) {
  sige_conv2d_params p = conv->params;
  if (x->layout == SIGE_LAYOUT_CNHW) p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
  return sige_conv2d(pass->ctx, x, conv->weight, conv->bias, &p, out, error);
}

/* The separable form before its pointwise conv: depthwise convs of the
 * activations (a full tensor, or the block batch of the main geometry in a
 * sparse pass) into [gamma | beta], instance-normalised (fresh or frozen
 * statistics). */
static sige_tensor *separable_head(const sige_spade_generator *g, const sige_spade_block *b,
                                   int i, sige_pass *pass, const sige_tensor *actv,
                                   GError **error) {
  const int hidden = b->hidden;
  int64_t shape[4];
  sige_conv2d_params p = b->dw_gamma[i].params;
  if (actv->layout == SIGE_LAYOUT_CNHW) p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
  sige_conv2d_out_shape(actv, b->dw_gamma[i].weight, &p, shape);
  g_autoptr(sige_tensor) dw = sige_tensor_new4_like(actv, (int)shape[0], 2 * hidden,
                                                    (int)shape[2], (int)shape[3], error);
  if (!dw) return NULL;
  dw->layout = actv->layout;
  if (shape[0] > 0) {
    g_autoptr(sige_tensor) vg = sige_channel_view(dw, 0, hidden);
    g_autoptr(sige_tensor) vb = sige_channel_view(dw, hidden, hidden);
    if (!depthwise_into(pass, &b->dw_gamma[i], actv, vg, error) ||
        !depthwise_into(pass, &b->dw_beta[i], actv, vb, error))
      return NULL;
  }
  g_autofree float *scale = g_new(float, 2 * hidden);
  g_autofree float *shift = g_new(float, 2 * hidden);
  /* dense blocks always normalise with fresh statistics (see the top) */
  if (!b->sparse || sige_pass_needs_stats(pass))
    sige_group_norm_affine(pass->ctx, dw, 2 * hidden, g->instancenorm_eps, NULL, NULL, scale,
                           shift);
  if (b->sparse && !sige_pass_stats(pass, 2 * hidden, scale, shift, error)) return NULL;
  if (shape[0] > 0) sige_channel_affine(pass->ctx, dw, scale, shift, FALSE, SIGE_ACT_NONE, dw);
  return g_steal_pointer(&dw);
}

/* A view on t that its taker may free (t stays with its owner). */
static sige_tensor *borrow(const sige_tensor *t) {
  sige_tensor *v = sige_tensor_view(t->data, t->ndim, t->shape);
  v->layout = t->layout;
  v->storage = t->storage;
  v->backend = t->backend;
  return v;
}

/* gamma | beta of norm i from its activations, scattered and gathered to
 * g_out. */
static sige_tensor *norm_gamma_beta(const sige_spade_generator *g, const sige_spade_block *b,
                                    int i, sige_pass *pass, const sige_tensor *actv,
                                    const sige_block_geometry *g_out, GError **error) {
  g_autoptr(sige_tensor) head = NULL;
  if (g->norm_kind == SIGE_SPADE_NORM_SEPARABLE &&
      !(actv = head = separable_head(g, b, i, pass, actv, error)))
    return NULL;
  sige_tensor *in = head ? g_steal_pointer(&head) : borrow(actv);
  return sige_pass_conv_scatter_gather(pass, &b->gb[i], in, SIGE_ACT_NONE, &g->g_main, g_out, NULL,
                                       NULL, SIGE_ACT_NONE, error);
}

/* x * (1 + gamma) + beta with gamma | beta stacked along channels of gb. */
static void modulate(sige_pass *pass, sige_tensor *x, const sige_tensor *gb) {
  const int c = SIGE_C(x);
  g_autoptr(sige_tensor) gamma = sige_channel_view(gb, 0, c);
  g_autoptr(sige_tensor) beta = sige_channel_view(gb, c, c);
  sige_spade_modulate(pass->ctx, x, gamma, beta, x);
}

/* Channels [c0, c0 + nc) of an F16 cache slot as an owned F32 tensor. */
static sige_tensor *widen_channels(const sige_tensor *slot, int c0, int nc, GError **error) {
  g_autoptr(sige_tensor) v = sige_channel_view(slot, c0, nc);
  return sige_tensor_to_f32(v, error);
}

/* ---- the recording pass in row bands ------------------------------------
 *
 * With fp16 caches everything a SPADE block records is kept as half values
 * anyway, and the recording pass goes on with exactly those values.  So a
 * block can run layer by layer in bands of rows: each layer reads the rows
 * of its band (and one row above and below for a 3x3 conv) from the half
 * slot of the layer before, widened to float32, and writes its band's half
 * values into its own slot.  No float32 tensor of a whole layer exists: at
 * 256x512 the full pass of the last GauGAN block held its hidden
 * activations, gamma | beta and the gathered inputs in float32 at once
 * (about 0.3 GB); in bands of 8 rows the float32 working set is a few MB.
 *
 * What stays the same: the element-wise ops per element, the products a
 * band's conv sums (it pads only at the image's top and bottom), the conv
 * algorithm and Winograd's tiles (bands start at multiples of 4 rows and
 * hold at least 16 tiles, the rule's threshold).  What does not: the BLAS
 * sums those products in an order that depends on the GEMM's width, so a
 * few values round to the neighbouring half when recorded, the size of
 * difference a change of thread count makes.  The pass stays consistent
 * with its caches (it goes on with what it recorded).  The unit test
 * spade_banded: one band equals the unbanded pass bit for bit, bands of 8
 * and 4 rows differ by 1.1e-3 at most in the output image. */

/* Float32 working set of one band, the largest tensor (see band_rows). */
#define BAND_BYTES ((size_t)8 << 20)

/* Rows per band for a block of h x w with at most cmax channels in one
 * float32 band tensor; 0 = run the block unbanded.  The context's band rows
 * override it (sige_ctx_set_band_rows: 0 unbanded; n rows, rounded up to a
 * multiple of 4). */
static int band_rows(const sige_ctx *ctx, int h, int w, int cmax) {
  int rows = sige_ctx_band_rows(ctx);
  if (rows == 0) return 0;
  if (rows < 0) rows = (int)(BAND_BYTES / ((size_t)w * (size_t)cmax * sizeof(float)));
  rows = MAX(4, (rows + 3) / 4 * 4);
  /* a Winograd conv of the band cuts the tiles it cuts over the whole
   * height: aligned bands (multiples of 4) and at least 16 tiles (the rule's
   * threshold), or it would switch to im2col */
  while ((rows / 4) * ((w + 3) / 4) < 16 && rows < h) rows += 4;
  return MIN(rows, h);
}

/* Rows [r0, r1) of channels [c0, c0 + nc) of an F16 slot as an owned F32
 * [1, nc, r1 - r0, W] tensor. */
static sige_tensor *widen_rows(const sige_tensor *slot, int c0, int nc, int r0, int r1,
                               GError **error) {
  const size_t w = (size_t)SIGE_W(slot), plane = (size_t)SIGE_H(slot) * w;
  sige_tensor *t = sige_tensor_new4_uninit(1, nc, r1 - r0, (int)w, error);
  if (!t) return NULL;
  const size_t n = (size_t)(r1 - r0) * w;
  for (int c = 0; c < nc; c++)
    sige_f16_to_f32_n(slot->data16 + (size_t)(c0 + c) * plane + (size_t)r0 * w, t->data + c * n,
                      n);
  return t;
}

/* band (F32 [1, C, r1 - r0, W]) rounded to half into rows [r0, r1) of slot. */
static void store_rows(sige_tensor *slot, const sige_tensor *band, int r0) {
  const size_t w = (size_t)SIGE_W(slot), plane = (size_t)SIGE_H(slot) * w;
  const size_t n = (size_t)SIGE_H(band) * w;
  for (int c = 0; c < SIGE_C(band); c++)
    sige_f32_to_f16_n(band->data + c * n, slot->data16 + (size_t)c * plane + (size_t)r0 * w, n);
}

/* Rows [r0, r1) of src read through map (the block's resolution). */
static sige_tensor *materialize_rows(const sige_tensor *src, const sige_resample_map *map, int r0,
                                     int r1, GError **error) {
  const sige_resample_map band = {r1 - r0, map->w, map->rows + r0, map->cols};
  return sige_materialize(src, &band, error);
}

/* conv of a band of input rows [rr0, rr1) giving output rows [r0, r1) of an
 * h-row layer: the layer's padding at the image's top and bottom only. */
static sige_tensor *band_conv(sige_pass *pass, const sige_conv_layer *conv, const sige_tensor *in,
                              int r0, int r1, int h, GError **error) {
  sige_conv2d_params p = conv->params;
  if (r0 > 0) p.pad_top = 0;
  if (r1 < h) p.pad_bottom = 0;
  int64_t shape[4];
  sige_conv2d_out_shape(in, conv->weight, &p, shape);
  if (shape[2] != r1 - r0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "banded conv: %d input rows give %d output rows, expected rows %d to %d",
                SIGE_H(in), (int)shape[2], r0, r1);
    return NULL;
  }
  sige_tensor *out = sige_tensor_new4_uninit(1, (int)shape[1], (int)shape[2], (int)shape[3], error);
  if (out && !sige_conv2d(pass->ctx, in, conv->weight, conv->bias, &p, out, error))
    g_clear_pointer(&out, sige_tensor_free);
  return out;
}

typedef enum { ST_SHARED, ST_GB, ST_CONV0, ST_CONV1 } band_stage;

typedef struct {
  const sige_spade_generator *g;
  const sige_spade_block *b;
  sige_pass *pass;
  const sige_tensor *x, *seg;
  const block_maps *bm;
  int h, w;
  sige_tensor *a, *gb[3], *c0, *out, *res; /* slots, owned by the cache */
} banded;

/* x * (1 + gamma) + beta with gamma | beta rows [r0, r1) of a gb slot. */
static gboolean modulate_rows(banded *B, sige_tensor *x, const sige_tensor *gb_slot, int r0,
                              int r1, GError **error) {
  g_autoptr(sige_tensor) gb = widen_rows(gb_slot, 0, SIGE_C(gb_slot), r0, r1, error);
  if (!gb) return FALSE;
  modulate(B->pass, x, gb);
  return TRUE;
}

/* The input rows [r0, r1) of a stage's conv, float32, as the unbanded
 * forward computes them. */
static sige_tensor *stage_input(banded *B, band_stage st, int norm, int r0, int r1,
                                GError **error) {
  const sige_spade_block *b = B->b;
  sige_ctx *ctx = B->pass->ctx;
  sige_tensor *t = NULL;
  switch (st) {
  case ST_SHARED:
    return materialize_rows(B->seg, &B->bm->seg_map, r0, r1, error);
  case ST_GB:
    return widen_rows(B->a, norm * b->hidden, b->hidden, r0, r1, error);
  case ST_CONV0:
    if (!(t = materialize_rows(B->x, &B->bm->x_map, r0, r1, error))) return NULL;
    sige_channel_affine(ctx, t, b->bn_scale[0], b->bn_shift[0], FALSE, SIGE_ACT_NONE, t);
    if (!modulate_rows(B, t, B->gb[0], r0, r1, error)) break;
    sige_activation(ctx, t, SIGE_ACT_LEAKY_RELU, t);
    return t;
  case ST_CONV1:
    if (!(t = widen_rows(B->c0, 0, b->fmiddle, r0, r1, error))) return NULL;
    sige_channel_affine(ctx, t, b->bn_scale[1], b->bn_shift[1], FALSE, SIGE_ACT_NONE, t);
    if (!modulate_rows(B, t, B->gb[1], r0, r1, error)) break;
    sige_activation(ctx, t, SIGE_ACT_LEAKY_RELU, t);
    return t;
  }
  sige_tensor_free(t);
  return NULL;
}

/* The block's output rows [r0, r1) from conv_1's y: + the shortcut, into
 * the output slot (and the shortcut's slot). */
static gboolean store_output(banded *B, sige_tensor *y, int r0, int r1, GError **error) {
  const sige_spade_block *b = B->b;
  sige_ctx *ctx = B->pass->ctx;
  g_autoptr(sige_tensor) s = materialize_rows(B->x, &B->bm->x_map, r0, r1, error);
  if (!s) return FALSE;
  if (!b->learned_shortcut) {
    sige_add(ctx, y, s, y);
    store_rows(B->out, y, r0);
    return TRUE;
  }
  sige_channel_affine(ctx, s, b->bn_scale[2], b->bn_shift[2], FALSE, SIGE_ACT_NONE, s);
  if (!modulate_rows(B, s, B->gb[2], r0, r1, error)) return FALSE;
  g_autoptr(sige_tensor) xs = sige_pass_conv(B->pass, &b->conv_s, s, error);
  if (!xs) return FALSE;
  sige_add(ctx, y, xs, y);
  store_rows(B->out, y, r0);
  store_rows(B->res, xs, r0);
  return TRUE;
}

/* One conv layer of the block over all bands. */
static gboolean run_stage(banded *B, band_stage st, int norm, int rows, GError **error) {
  const sige_spade_block *b = B->b;
  const sige_conv_layer *conv = st == ST_SHARED  ? &b->mlp_shared
                                : st == ST_GB    ? &b->gb[norm]
                                : st == ST_CONV0 ? &b->conv_0
                                                 : &b->conv_1;
  const int pt = conv->params.pad_top, pb = conv->params.pad_bottom;
  for (int r0 = 0, r1; r0 < B->h; r0 = r1) {
    /* a short last band joins the one before (at least `rows` rows each:
     * as many Winograd tiles as band_rows counted) */
    r1 = B->h - r0 < 2 * rows ? B->h : r0 + rows;
    g_autoptr(sige_tensor) in =
        stage_input(B, st, norm, MAX(0, r0 - pt), MIN(B->h, r1 + pb), error);
    if (!in) return FALSE;
    g_autoptr(sige_tensor) y = band_conv(B->pass, conv, in, r0, r1, B->h, error);
    if (!y) return FALSE;
    switch (st) {
    case ST_SHARED:
      sige_activation(B->pass->ctx, y, SIGE_ACT_RELU, y);
      store_rows(B->a, y, r0);
      break;
    case ST_GB:
      store_rows(B->gb[norm], y, r0);
      break;
    case ST_CONV0:
      store_rows(B->c0, y, r0);
      break;
    case ST_CONV1:
      if (!store_output(B, y, r0, r1, error)) return FALSE;
      break;
    }
  }
  return TRUE;
}

/* block_forward of a recording pass with fp16 caches, in bands of rows;
 * records the same slots in the same order (mlp_shared, [gamma|beta of
 * norm_s], of norm_0, conv_0, of norm_1, the output [and the shortcut]) and
 * returns a view on the output slot. */
static sige_tensor *block_forward_banded(const sige_spade_generator *g, const sige_spade_block *b,
                                         sige_pass *pass, const sige_tensor *x,
                                         const sige_tensor *seg, const block_maps *bm, int rows,
                                         GError **error) {
  banded B = {.g = g, .b = b, .pass = pass, .x = x, .seg = seg, .bm = bm, .h = bm->x_map.h,
              .w = bm->x_map.w};
  const int nn = b->learned_shortcut ? 3 : 2;
  if (!(B.a = sige_pass_record_f16_slot(pass, SIGE_N(b->mlp_shared.weight), B.h, B.w, error)) ||
      !run_stage(&B, ST_SHARED, 0, rows, error))
    return NULL;
  if (nn == 3 &&
      (!(B.gb[2] = sige_pass_record_f16_slot(pass, 2 * b->fin, B.h, B.w, error)) ||
       !run_stage(&B, ST_GB, 2, rows, error)))
    return NULL;
  if (!(B.gb[0] = sige_pass_record_f16_slot(pass, 2 * b->fin, B.h, B.w, error)) ||
      !run_stage(&B, ST_GB, 0, rows, error) ||
      !(B.c0 = sige_pass_record_f16_slot(pass, b->fmiddle, B.h, B.w, error)) ||
      !run_stage(&B, ST_CONV0, 0, rows, error) ||
      !(B.gb[1] = sige_pass_record_f16_slot(pass, 2 * b->fmiddle, B.h, B.w, error)) ||
      !run_stage(&B, ST_GB, 1, rows, error) ||
      !(B.out = sige_pass_record_f16_slot(pass, b->fout, B.h, B.w, error)) ||
      (nn == 3 && !(B.res = sige_pass_record_f16_slot(pass, b->fout, B.h, B.w, error))) ||
      !run_stage(&B, ST_CONV1, 0, rows, error))
    return NULL;
  return borrow(B.out);
}

#define TRY(expr)          \
  do {                     \
    if (!(expr)) goto out; \
  } while (0)

static sige_tensor *block_forward(const sige_spade_generator *g, const sige_spade_block *b,
                                  sige_pass *pass, const sige_tensor *x, const sige_tensor *seg,
                                  GError **error) {
  const sige_block_geometry *gm = &g->g_main, *gs = &g->g_sc;
  block_maps bm;
  block_maps_init(&bm, x, b->upsample_before, seg);
  if (b->sparse && sige_pass_records(pass) && pass->fp16 &&
      g->norm_kind == SIGE_SPADE_NORM_CONV && !x->backend && !seg->backend) {
    const int cmax = MAX(SIGE_N(b->mlp_shared.weight), 2 * MAX(b->fin, b->fmiddle));
    const int rows = band_rows(pass->ctx, bm.x_map.h, bm.x_map.w, cmax);
    if (rows > 0) {
      sige_tensor *y = block_forward_banded(g, b, pass, x, seg, &bm, rows, error);
      g_free(bm.buf);
      return y;
    }
  }
  const sige_resample_map *xmap = b->upsample_before ? &bm.x_map : NULL;
  sige_tensor *seg_g = NULL, *actvs = NULL, *a0 = NULL, *a1 = NULL, *as = NULL, *xs = NULL,
              *gbs = NULL, *gb0 = NULL, *gb1 = NULL, *dx = NULL, *t = NULL, *out = NULL;

  TRY(seg_g = sige_pass_gather(pass, gm, seg, &bm.seg_map, NULL, NULL, SIGE_ACT_NONE, error));
  TRY(t = sige_pass_conv(pass, &b->mlp_shared, seg_g, error));
  g_clear_pointer(&seg_g, sige_tensor_free);
  sige_activation(pass->ctx, t, SIGE_ACT_RELU, t);
  actvs = sige_pass_scatter_gather(pass, gm, g_steal_pointer(&t), gm, NULL, NULL, SIGE_ACT_NONE,
                                  error);
  TRY(actvs);
  /* A recording pass with fp16 caches goes on with float32 copies of what it
   * records; these are the hidden activations of all norms (384 channels,
   * 201 MB at 256x512 for GauGAN), the largest tensor of a block.  Their
   * values are exactly the half ones of the slot just recorded, so each norm
   * widens its own third from the slot when it needs it instead. */
  const sige_tensor *rec = NULL;
  if (sige_pass_records(pass) && pass->fp16) {
    rec = g_ptr_array_index(pass->cache->slots, pass->next_slot - 1);
    g_clear_pointer(&actvs, sige_tensor_free);
  }
  if (!rec) {
    a0 = sige_channel_view(actvs, 0, b->hidden);
    a1 = sige_channel_view(actvs, b->hidden, b->hidden);
  }

  if (b->learned_shortcut) {
    TRY(as = rec ? widen_channels(rec, 2 * b->hidden, b->hidden, error)
                 : sige_channel_view(actvs, 2 * b->hidden, b->hidden));
    TRY(xs = sige_pass_gather(pass, gs, x, xmap, b->bn_scale[2], b->bn_shift[2], SIGE_ACT_NONE,
                             error));
    TRY(gbs = norm_gamma_beta(g, b, 2, pass, as, gs, error));
    if (rec) g_clear_pointer(&as, sige_tensor_free);
    modulate(pass, xs, gbs);
    g_clear_pointer(&gbs, sige_tensor_free);
    TRY(t = sige_pass_conv(pass, &b->conv_s, xs, error));
    sige_tensor_free(xs);
    xs = g_steal_pointer(&t);
  }

  TRY(dx = sige_pass_gather(pass, gm, x, xmap, b->bn_scale[0], b->bn_shift[0], SIGE_ACT_NONE,
                           error));
  if (rec) TRY(a0 = widen_channels(rec, 0, b->hidden, error));
  TRY(gb0 = norm_gamma_beta(g, b, 0, pass, a0, gm, error));
  if (rec) g_clear_pointer(&a0, sige_tensor_free);
  modulate(pass, dx, gb0);
  g_clear_pointer(&gb0, sige_tensor_free);
  sige_activation(pass->ctx, dx, SIGE_ACT_LEAKY_RELU, dx);
  dx = sige_pass_conv_scatter_gather(pass, &b->conv_0, g_steal_pointer(&dx), SIGE_ACT_NONE, gm, gm,
                                     b->bn_scale[1], b->bn_shift[1], SIGE_ACT_NONE, error);
  TRY(dx);
  if (rec) TRY(a1 = widen_channels(rec, b->hidden, b->hidden, error));
  TRY(gb1 = norm_gamma_beta(g, b, 1, pass, a1, gm, error));
  /* with fp16 caches the full pass goes on with owned float32 copies of what
   * it records: drop each as soon as it is used, or the largest block holds
   * all of them at once (about 0.5 GB at 256x512) */
  g_clear_pointer(&a0, sige_tensor_free);
  g_clear_pointer(&a1, sige_tensor_free);
  g_clear_pointer(&as, sige_tensor_free);
  g_clear_pointer(&actvs, sige_tensor_free);
  modulate(pass, dx, gb1);
  g_clear_pointer(&gb1, sige_tensor_free);
  sige_activation(pass->ctx, dx, SIGE_ACT_LEAKY_RELU, dx);
  if (!b->learned_shortcut) {
    out = sige_pass_conv_scatter(pass, &b->conv_1, g_steal_pointer(&dx), SIGE_ACT_NONE, gm, x, xmap,
                                 error);
    goto out;
  }
  TRY(t = sige_pass_conv(pass, &b->conv_1, dx, error));

  if (b->learned_shortcut)
    out = sige_pass_scatter_block_residual(pass, gm, g_steal_pointer(&t), gs, g_steal_pointer(&xs),
                                          error);
  else
    out = sige_pass_scatter(pass, gm, g_steal_pointer(&t), x, xmap, error);
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

/* conv_img(leaky(x)) for an F16 host x (the last block's cache slot with
 * fp16 caches), in bands of rows widened from it: the whole float32 copy of
 * x was 34 MB at 256x512 (64 channels), at the peak of both passes. */
static sige_tensor *conv_img_banded(const sige_spade_generator *g, sige_pass *pass,
                                    const sige_tensor *x, GError **error) {
  const int h = SIGE_H(x), w = SIGE_W(x), rows = 32;
  const sige_conv_layer *conv = &g->conv_img;
  const int pt = conv->params.pad_top, pb = conv->params.pad_bottom;
  g_autoptr(sige_tensor) img = sige_tensor_new4_uninit(1, SIGE_N(conv->weight), h, w, error);
  if (!img) return NULL;
  for (int r0 = 0, r1; r0 < h; r0 = r1) {
    r1 = MIN(h, r0 + rows);
    g_autoptr(sige_tensor) t = widen_rows(x, 0, SIGE_C(x), MAX(0, r0 - pt), MIN(h, r1 + pb), error);
    if (!t) return NULL;
    sige_activation(pass->ctx, t, SIGE_ACT_LEAKY_RELU, t);
    g_autoptr(sige_tensor) y = band_conv(pass, conv, t, r0, r1, h, error);
    if (!y) return NULL;
    const size_t n = (size_t)(r1 - r0) * w, plane = (size_t)h * w;
    for (int c = 0; c < SIGE_C(img); c++)
      memcpy(img->data + c * plane + (size_t)r0 * w, y->data + c * n, n * sizeof(float));
  }
  return g_steal_pointer(&img);
}

gboolean sige_spade_generator_forward(const void *impl, sige_pass *pass, const sige_tensor *seg,
                                      float t, sige_tensor **out, GError **error) {
  const sige_spade_generator *g = impl;
  (void)t;
  const sige_spade_latent *lat = &g->lat;
  *out = NULL;
  if (seg->ndim != 4 || SIGE_N(seg) != 1 || SIGE_C(seg) != lat->semantic_nc ||
      SIGE_H(seg) != lat->out_h || SIGE_W(seg) != lat->out_w) {
    char buf[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "%s input is %s; expected [1, %d, %d, %d] (label_nc %d%s)", g->name,
                sige_tensor_shape_str(seg, buf, sizeof buf), lat->semantic_nc, lat->out_h,
                lat->out_w, g->label_nc, g->contain_instance ? " + instance edges" : "");
    return FALSE;
  }
  pass->layers_total = g->n_blocks + 2;
  if (!sige_pass_begin_group(pass, FALSE, error)) return FALSE;
  int rows[64], cols[64]; /* the latent grid is at most 64 x 64 (sige_spade_latent_init) */
  sige_nearest_indices(SIGE_H(seg), lat->sh, rows);
  sige_nearest_indices(SIGE_W(seg), lat->sw, cols);
  sige_resample_map latent = {lat->sh, lat->sw, rows, cols};
  g_autoptr(sige_tensor) small = sige_materialize(seg, &latent, error);
  if (!small) return FALSE;
  sige_tensor *x = sige_pass_conv(pass, &g->fc, small, error);
  if (!x) return FALSE;
  for (int i = 0; i < g->n_blocks; i++) {
    const sige_spade_block *b = &g->blocks[i];
    if (!sige_pass_begin_group(pass, b->sparse, error)) {
      sige_tensor_free(x);
      return FALSE;
    }
    sige_tensor *y = block_forward(g, b, pass, x, seg, error);
    sige_tensor_free(x);
    if (!y) return FALSE;
    x = y;
  }
  if (!sige_pass_begin_group(pass, FALSE, error)) {
    sige_tensor_free(x);
    return FALSE;
  }
  sige_tensor *img = NULL;
  if (x->storage == SIGE_STORAGE_F16 && !x->backend) {
    img = conv_img_banded(g, pass, x, error);
    sige_tensor_free(x);
    if (!img) return FALSE;
  } else {
    /* x may be a view on a cache (F16 with fp16 caches): activate an F32 copy */
    g_autoptr(sige_tensor) act = sige_tensor_to_f32(x, error);
    sige_tensor_free(x);
    if (!act) return FALSE;
    sige_activation(pass->ctx, act, SIGE_ACT_LEAKY_RELU, act);
    if (!(img = sige_pass_conv(pass, &g->conv_img, act, error))) return FALSE;
  }
  sige_activation(pass->ctx, img, SIGE_ACT_TANH, img);
  *out = img;
  return TRUE;
}

/* ---- config --------------------------------------------------------------- */

gboolean sige_spade_infer_common(const sige_weights *w, const char *path, sige_spade_config *c,
                                 GError **error) {
  const sige_indexed_shape fc = sige_shape_of(w, "fc.weight");
  if (!fc.found || fc.ndim != 4 || fc.shape[0] % 16) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: 'fc.weight' must be [16*ngf, semantic_nc, 3, 3]", path);
    return FALSE;
  }
  c->ngf = (int)fc.shape[0] / 16;
  c->contain_instance = sige_meta_int(w, "sige.contain_instance", 1) != 0;
  c->label_nc = (int)fc.shape[1] - (c->contain_instance ? 1 : 0);
  c->crop_size = sige_meta_int(w, "sige.crop_size", 512);
  const char *ar = sige_weights_metadata(w, "sige.aspect_ratio");
  if (ar) c->aspect_ratio = g_ascii_strtod(ar, NULL);
  return TRUE;
}

void sige_spade_describe_common(const sige_spade_config *s, GString *out) {
  sige_describe_line(out, "ngf", "%d", s->ngf);
  sige_describe_line(out, "label_nc", "%d", s->label_nc);
  sige_describe_line(out, "contain_instance", "%s", s->contain_instance ? "yes" : "no");
  sige_describe_line(out, "crop_size", "%d", s->crop_size);
  sige_describe_line(out, "aspect_ratio", "%g", s->aspect_ratio);
  sige_describe_line(out, "num_upsampling_layers", "%d", s->num_upsampling_layers);
}
