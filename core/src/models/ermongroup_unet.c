/* The ermongroup/ddim UNet layout (see ermongroup_unet.h). */
#include "ermongroup_unet.h"

#include <string.h>

#include "model_internal.h"
#include "sige/error.h"

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
 * skip: the stack of skip widths, pushed by the down blocks and popped (the
 * concatenated input) by the up blocks. */
static gboolean level_declare(sige_param_list *l, const sige_unet_layout *lay, sige_unet_level *lv,
                              const char *dir, int i, int res, int n_blocks, int *block_in,
                              int *skip, int *n_skip, GError **error) {
  const int tc = lay->temb_ch, block_out = lay->ch * lay->ch_mult[i];
  const gboolean up = !strcmp(dir, "up");
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

/* Widths, sizes and counts far above any published UNet (SD's widest level
 * has 1280 channels) and far below where the products of the parameter
 * shapes overflow; a zero width would make empty tensors (a division by zero
 * in the fan-in).  Found by fuzz_case_json: a ch_mult of 0 in a case.json. */
#define UNET_MAX_WIDTH 65536
static gboolean check_layout(const char *what, const sige_unet_layout *lay, GError **error) {
  const char *field = NULL;
  gint64 value = 0;
  for (int i = 0; i < lay->n_levels && !field; i++)
    if (lay->ch_mult[i] < 1 || (gint64)lay->ch * lay->ch_mult[i] > UNET_MAX_WIDTH)
      field = "ch x ch_mult", value = (gint64)lay->ch * lay->ch_mult[i];
  if (field) {
  } else if (lay->ch < 1 || lay->ch > UNET_MAX_WIDTH) {
    field = "ch", value = lay->ch;
  } else if (lay->in_ch < 1 || lay->in_ch > UNET_MAX_WIDTH) {
    field = "in_ch", value = lay->in_ch;
  } else if (lay->out_ch < 1 || lay->out_ch > UNET_MAX_WIDTH) {
    field = "out_ch", value = lay->out_ch;
  } else if (lay->temb_ch < 1 || lay->temb_ch > 4 * UNET_MAX_WIDTH) {
    field = "temb_ch", value = lay->temb_ch;
  } else if (lay->image_size < 1 || lay->image_size > UNET_MAX_WIDTH) {
    field = "image_size", value = lay->image_size;
  } else if (lay->num_res_blocks < 1 || lay->num_res_blocks > 64) {
    field = "num_res_blocks", value = lay->num_res_blocks;
  }
  if (!field) return TRUE;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              "%s config: %s is %" G_GINT64_FORMAT "; expected 1 to %d (temb_ch: %d, "
              "num_res_blocks: 64)", what, field, value, UNET_MAX_WIDTH, 4 * UNET_MAX_WIDTH);
  return FALSE;
}

sige_unet *sige_unet_new(sige_param_list *l, const sige_unet_layout *lay,
                         const sige_unet_norms *norms, const sige_sparse_config *sp,
                         int sparse_threshold, GError **error) {
  if (!check_layout(norms->name, lay, error)) return NULL;
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

void sige_unet_describe_levels(GString *out, int ch, const int *ch_mult, int n_ch_mult,
                               int num_res_blocks, const int *attn_res, int n_attn_res) {
  sige_describe_line(out, "ch", "%d", ch);
  sige_describe_ints(out, "ch_mult", ch_mult, n_ch_mult);
  sige_describe_line(out, "num_res_blocks", "%d", num_res_blocks);
  sige_describe_ints(out, "attn_resolutions", attn_res, n_attn_res);
}

void sige_unet_describe_io(GString *out, int in_ch, int out_ch, int image_size) {
  sige_describe_line(out, "channels in -> out", "%d -> %d", in_ch, out_ch);
  sige_describe_line(out, "image_size", "%d", image_size);
}

/* temb_proj then the block (owning nothing it is given). */
static sige_tensor *block_step(const sige_unet *u, const sige_unet_resblock *b,
                               const sige_unet_geometry *geo, sige_pass *pass, gboolean sparse,
                               const sige_tensor *x, const sige_tensor *skip,
                               const sige_tensor *temb, GError **error) {
  g_autofree float *proj = sige_unet_temb_proj(pass, temb, b, error);
  return proj ? sige_unet_resblock_forward(&u->norms, b, geo, pass, sparse, x, skip, proj, error) : NULL;
}

/* h followed by attention a (h is consumed). */
static sige_tensor *then_attn(const sige_unet *u, const sige_unet_attn *a, sige_pass *pass,
                              sige_tensor *h, GError **error) {
  if (!h || !a) return h;
  sige_tensor *y = sige_unet_attn_forward(&u->norms, a, pass, h, error);
  sige_tensor_free(h);
  return y;
}

gboolean sige_unet_forward(const void *impl, sige_pass *pass, const sige_tensor *x, float t_in,
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
  sige_unet_geometry geo;
  sige_block_geometry_init(&geo.main, 3, 1, 1, u->block_size);
  sige_block_geometry_init(&geo.shortcut, 1, 1, 0, u->shortcut_block_size);
  sige_block_geometry_init(&geo.down, 3, 2, 0, u->block_size);
  gboolean ok = FALSE;
  /* hs holds the skip tensors; some are views on caches (not owned data) */
  GPtrArray *hs = g_ptr_array_new_with_free_func((GDestroyNotify)sige_tensor_free);
  sige_tensor *h = NULL, *temb = NULL;
  pass->layers_total = L * (2 * u->down[0].n_blocks + 3) + 6;
  if (!sige_pass_begin_group(pass, FALSE, error) || !(temb = sige_unet_temb_forward(&u->temb, pass, t_in, error)))
    goto done;
  if (!(h = sige_pass_conv(pass, &u->conv_in, x, error))) goto done;
  g_ptr_array_add(hs, g_steal_pointer(&h));
  int res = u->image_size;
  for (int i = 0; i < L; i++) {
    const sige_unet_level *l = &u->down[i];
    for (int j = 0; j < l->n_blocks; j++) {
      h = block_step(u, &l->blocks[j], &geo, pass, res >= thr, g_ptr_array_index(hs, hs->len - 1),
                     NULL, temb, error);
      if (!(h = then_attn(u, l->attn ? &l->attn[j] : NULL, pass, h, error))) goto done;
      g_ptr_array_add(hs, g_steal_pointer(&h));
    }
    if (l->has_resample) {
      /* sparse by its input resolution (a resampling block's convolutions
       * run at res / 2) */
      const sige_tensor *in = g_ptr_array_index(hs, hs->len - 1);
      h = l->resample_is_block
              ? block_step(u, &l->resample_block, &geo, pass, res >= thr, in, NULL, temb, error)
              : sige_unet_resample_conv_forward(&l->resample_conv, &geo.down, pass, res >= thr, in, FALSE,
                                      error);
      if (!h) goto done;
      g_ptr_array_add(hs, g_steal_pointer(&h));
      res /= 2;
    }
  }
  const gboolean mid_sparse = u->mid_sparse_by_res && res >= thr;
  h = block_step(u, &u->mid1, &geo, pass, mid_sparse, g_ptr_array_index(hs, hs->len - 1), NULL,
                 temb, error);
  if (!(h = then_attn(u, &u->mid_attn, pass, h, error))) goto done;
  {
    sige_tensor *y = block_step(u, &u->mid2, &geo, pass, mid_sparse, h, NULL, temb, error);
    sige_tensor_free(h);
    if (!(h = y)) goto done;
  }
  for (int i = L - 1; i >= 0; i--) {
    const sige_unet_level *l = &u->up[i];
    for (int j = 0; j < l->n_blocks; j++) {
      sige_tensor *skip = g_ptr_array_steal_index(hs, hs->len - 1);
      sige_tensor *y = block_step(u, &l->blocks[j], &geo, pass, res >= thr, h, skip, temb, error);
      sige_tensor_free(skip);
      g_clear_pointer(&h, sige_tensor_free);
      if (!(h = then_attn(u, l->attn ? &l->attn[j] : NULL, pass, y, error))) goto done;
    }
    if (l->has_resample) {
      /* a resampling block is sparse by its input resolution; the DDPM
       * upsample conv is sparse at every level (as in the published code) */
      sige_tensor *y =
          l->resample_is_block
              ? block_step(u, &l->resample_block, &geo, pass, res >= thr, h, NULL, temb, error)
              : sige_unet_resample_conv_forward(&l->resample_conv, &geo.main, pass,
                                      u->upsample_always_sparse || res >= thr, h, TRUE, error);
      g_clear_pointer(&h, sige_tensor_free);
      if (!(h = y)) goto done;
      res *= 2;
    }
  }
  /* norm_out uses fresh statistics in every mode */
  if (!sige_pass_begin_group(pass, FALSE, error)) goto done;
  if (h->storage == SIGE_STORAGE_F16) { /* an F16 cache view (fp16 caches) */
    sige_tensor *h32 = sige_tensor_to_f32(h, error);
    sige_tensor_free(h);
    if (!(h = h32)) goto done;
  }
  {
    const int C = SIGE_C(h);
    g_autofree float *scale = g_new(float, C), *shift = g_new(float, C);
    if (!sige_unet_norm_fresh(&u->norms, pass, h, u->out_g, u->out_b, NULL, scale, shift, error)) goto done;
    g_autoptr(sige_tensor) n = sige_tensor_new4_like(h, 1, C, SIGE_H(h), SIGE_W(h), error);
    if (!n) goto done;
    sige_channel_affine(pass->ctx, h, scale, shift, FALSE, SIGE_ACT_SWISH, n);
    *out = sige_pass_conv(pass, &u->conv_out, n, error);
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
    const sige_indexed_shape t = sige_shape_of(w, k);
    if (!t.found) break;
    ch_mult[(*n_ch_mult)++] = (int)t.shape[0] / ch;
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
