#include "pass.h"

#include <string.h>

#include "../buffer.h"
#include "../sparse/sparse_internal.h"
#include "sige/error.h"

void sige_cache_init(sige_cache *c) {
  c->slots = g_ptr_array_new_with_free_func((GDestroyNotify)sige_tensor_free);
  c->stats = g_ptr_array_new_with_free_func(g_free);
  c->stat_len = g_array_new(FALSE, FALSE, sizeof(int));
}

void sige_cache_clear(sige_cache *c) {
  if (c->slots) g_ptr_array_set_size(c->slots, 0);
  if (c->stats) g_ptr_array_set_size(c->stats, 0);
  if (c->stat_len) g_array_set_size(c->stat_len, 0);
}

void sige_cache_free_contents(sige_cache *c) {
  if (c->slots) g_ptr_array_unref(c->slots);
  if (c->stats) g_ptr_array_unref(c->stats);
  if (c->stat_len) g_array_unref(c->stat_len);
  c->slots = c->stats = NULL;
  c->stat_len = NULL;
}

size_t sige_cache_bytes(const sige_cache *c) {
  size_t total = 0;
  for (guint i = 0; c->slots && i < c->slots->len; i++) {
    const sige_tensor *t = g_ptr_array_index(c->slots, i);
    total += sige_tensor_bytes(t);
  }
  for (guint i = 0; c->stat_len && i < c->stat_len->len; i++)
    total += 2 * sizeof(float) * (size_t)g_array_index(c->stat_len, int, i);
  return total;
}

/* The key of pass->blocks: a resolution and a block geometry.  A struct,
 * not a printed string: the lookup runs for every sparse layer, and
 * formatting its key was 3-5 % of a tiny model's pass. */
typedef struct {
  int h, w, block, stride, offset;
} blocks_key;

static guint blocks_key_hash(gconstpointer p) {
  const blocks_key *k = p;
  guint x = 2166136261u;
  const int v[5] = {k->h, k->w, k->block, k->stride, k->offset};
  for (int i = 0; i < 5; i++) x = (x ^ (guint)v[i]) * 16777619u;
  return x;
}

static gboolean blocks_key_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, sizeof(blocks_key)) == 0;
}

static void run_init(sige_pass *pass, sige_ctx *ctx, sige_mode mode) {
  memset(pass, 0, sizeof *pass);
  pass->ctx = ctx;
  pass->mode = mode;
  pass->blocks = g_hash_table_new_full(blocks_key_hash, blocks_key_equal, g_free,
                                      (GDestroyNotify)sige_active_blocks_free);
}

void sige_pass_init_dense(sige_pass *pass, sige_ctx *ctx) { run_init(pass, ctx, SIGE_MODE_FULL); }

void sige_pass_init_full(sige_pass *pass, sige_ctx *ctx, sige_cache *cache) {
  run_init(pass, ctx, SIGE_MODE_FULL);
  pass->cache = cache;
  sige_cache_clear(cache);
}

void sige_pass_init_sparse(sige_pass *pass, sige_ctx *ctx, sige_cache *cache,
                          const sige_mask_pyramid *masks, sige_undo_log *undo) {
  run_init(pass, ctx, SIGE_MODE_SPARSE);
  pass->cache = cache;
  pass->masks = masks;
  pass->undo = undo;
}

/* Closes the current layer group's profile entry, if one is open. */
static void profile_close(sige_pass *pass) {
  if (!pass->profile || pass->layers_done == 0) return;
  const uint64_t macs = sige_ctx_macs(pass->ctx);
  sige_layer_stats st = {
      .group = pass->layers_done - 1,
      .sparse = sige_pass_is_sparse(pass),
      .macs = macs - pass->group_macs0,
      .seconds = (g_get_monotonic_time() - pass->group_t0) / 1e6,
      .mults = sige_ctx_mults(pass->ctx) - pass->group_mults0,
      .algos = sige_ctx_take_conv_algos(pass->ctx),
  };
  g_array_append_val(pass->profile, st);
}

void sige_pass_clear(sige_pass *pass) {
  profile_close(pass);
  pass->profile = NULL;
  if (pass->blocks) g_hash_table_destroy(pass->blocks);
  pass->blocks = NULL;
}

gboolean sige_pass_begin_group(sige_pass *pass, gboolean sparse_capable, GError **error) {
  /* a device reports what failed in the previous layer's void ops */
  if (!sige_buffer_check(sige_ctx_backend(pass->ctx), error)) return FALSE;
  if (pass->cancel && g_atomic_int_get(pass->cancel)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_CANCELLED, "cancelled");
    return FALSE;
  }
  profile_close(pass);
  pass->layer_sparse = sparse_capable;
  if (pass->profile) {
    pass->group_t0 = g_get_monotonic_time();
    pass->group_macs0 = sige_ctx_macs(pass->ctx);
    pass->group_mults0 = sige_ctx_mults(pass->ctx);
    sige_ctx_take_conv_algos(pass->ctx);
  }
  if (pass->progress && pass->layers_total > 0)
    pass->progress(MIN(1.0, (double)pass->layers_done / pass->layers_total), pass->progress_data);
  pass->layers_done++;
  return TRUE;
}

gboolean sige_pass_is_sparse(const sige_pass *pass) {
  return pass->mode == SIGE_MODE_SPARSE && pass->layer_sparse;
}

gboolean sige_pass_records(const sige_pass *pass) {
  return pass->mode == SIGE_MODE_FULL && pass->layer_sparse && pass->cache != NULL;
}

const sige_active_blocks *sige_pass_blocks(sige_pass *pass, int h, int w,
                                          const sige_block_geometry *g, GError **error) {
  const blocks_key key = {h, w, g->block, g->block_stride, g->offset};
  const sige_active_blocks *ab = g_hash_table_lookup(pass->blocks, &key);
  if (ab) return ab;
  const sige_mask *m = pass->masks ? sige_mask_pyramid_get(pass->masks, h, w) : NULL;
  if (!m) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "no difference mask at resolution %dx%d (the mask pyramid does not reach it)", h, w);
    return NULL;
  }
  sige_active_blocks *nab = sige_reduce_mask(m, g);
  g_hash_table_insert(pass->blocks, g_memdup2(&key, sizeof key), nab);
  return nab;
}

static sige_tensor *view_of(const sige_tensor *t) {
  sige_tensor *v = sige_tensor_view(t->data, t->ndim, t->shape);
  v->layout = t->layout;
  v->storage = t->storage;
  v->backend = t->backend;
  return v;
}

/* Records value (an owned F32 full tensor) as the next cache slot and returns
 * what the pass goes on with, owned by the caller: a read-only view on the
 * slot, or with fp16 caches value itself, rounded through half in place.
 * Going on with the rounded values keeps the full pass consistent with the
 * caches: a later sparse pass recomputes only the changed blocks from them,
 * and everything else it outputs must match this pass bit for bit (the
 * session's changed rectangle relies on it).  Frees value on failure. */
static sige_tensor *slot_record(sige_pass *pass, sige_tensor *value, GError **error) {
  value->layout = SIGE_LAYOUT_NCHW;
  if (!pass->fp16) {
    g_ptr_array_add(pass->cache->slots, value);
    pass->next_slot++;
    return view_of(value);
  }
  sige_tensor *half = sige_tensor_to_f16(value, error);
  if (!half || !sige_tensor_copy(value, half, error)) {
    sige_tensor_free(half);
    sige_tensor_free(value);
    return NULL;
  }
  g_ptr_array_add(pass->cache->slots, half);
  pass->next_slot++;
  return value;
}

sige_tensor *sige_pass_record_f16_slot(sige_pass *pass, int c, int h, int w, GError **error) {
  g_return_val_if_fail(sige_pass_records(pass) && pass->fp16, NULL);
  sige_tensor *half = sige_tensor_new4_f16_uninit(1, c, h, w, error);
  if (!half) return NULL;
  g_ptr_array_add(pass->cache->slots, half);
  pass->next_slot++;
  return half;
}

static sige_tensor *slot_lookup(sige_pass *pass, GError **error) {
  if (!pass->cache || pass->next_slot >= pass->cache->slots->len) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "sparse pass needs cache slot %u but the full pass recorded %u", pass->next_slot,
                pass->cache ? pass->cache->slots->len : 0);
    return NULL;
  }
  return g_ptr_array_index(pass->cache->slots, pass->next_slot++);
}

sige_tensor *sige_channel_view(const sige_tensor *x, int c0, int nc) {
  int64_t shape[4] = {x->shape[0], nc, x->shape[2], x->shape[3]};
  size_t plane = (size_t)x->shape[2] * x->shape[3];
  size_t off = x->layout == SIGE_LAYOUT_CNHW ? (size_t)c0 * x->shape[0] * plane
                                             : (size_t)c0 * plane;
  g_return_val_if_fail(x->layout == SIGE_LAYOUT_CNHW || x->shape[0] == 1, NULL);
  sige_tensor *v = sige_tensor_view(x->data, 4, shape);
  if (x->storage == SIGE_STORAGE_F16)
    v->data16 = x->data16 + off;
  else
    v->data = x->data + off;
  v->layout = x->layout;
  v->storage = x->storage;
  v->backend = x->backend;
  return v;
}

sige_tensor *sige_materialize(const sige_tensor *src, const sige_resample_map *map,
                              GError **error) {
  if (!map) return sige_tensor_to_f32(src, error);
  return sige_sparse_materialize(src, map, error);
}

/* act(x * scale + shift) in place on a dense tensor. */
static void dense_affine(sige_pass *pass, sige_tensor *x, const float *scale, const float *shift,
                         sige_act act) {
  if (!scale && !shift) {
    if (act != SIGE_ACT_NONE) sige_activation(pass->ctx, x, act, x);
    return;
  }
  const int C = SIGE_C(x);
  g_autofree float *ones = NULL, *zeros = NULL;
  if (!scale) {
    ones = g_new(float, C);
    for (int c = 0; c < C; c++) ones[c] = 1.0f;
    scale = ones;
  }
  if (!shift) shift = zeros = g_new0(float, C);
  sige_channel_affine(pass->ctx, x, scale, shift, FALSE, act, x);
}

sige_tensor *sige_pass_gather(sige_pass *pass, const sige_block_geometry *g, const sige_tensor *src,
                             const sige_resample_map *map, const float *scale, const float *shift,
                             sige_act act, GError **error) {
  if (!sige_pass_is_sparse(pass)) {
    sige_tensor *x = sige_materialize(src, map, error);
    if (x) dense_affine(pass, x, scale, shift, act);
    return x;
  }
  const int h = map ? map->h : SIGE_H(src), w = map ? map->w : SIGE_W(src);
  const sige_active_blocks *ab = sige_pass_blocks(pass, h, w, g, error);
  if (!ab) return NULL;
  sige_tensor *out = sige_tensor_new4_like(src, ab->n, SIGE_C(src), g->block, g->block, error);
  if (!out) return NULL;
  out->layout = SIGE_LAYOUT_CNHW;
  if (ab->n > 0) sige_gather(pass->ctx, src, map, g, ab, scale, shift, act, out);
  return out;
}

sige_tensor *sige_pass_conv(sige_pass *pass, const sige_conv_layer *conv, const sige_tensor *x,
                           GError **error) {
  sige_conv2d_params p = conv->params;
  if (x->layout == SIGE_LAYOUT_CNHW) {
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
  }
  int64_t shape[4];
  sige_conv2d_out_shape(x, conv->weight, &p, shape);
  sige_tensor *out = sige_tensor_new4_like(x, (int)shape[0], (int)shape[1], (int)shape[2],
                                           (int)shape[3], error);
  if (!out) return NULL;
  out->layout = x->layout;
  if (shape[0] == 0) return out;
  if (!sige_conv2d(pass->ctx, x, conv->weight, conv->bias, &p, out, error)) {
    sige_tensor_free(out);
    return NULL;
  }
  return out;
}

sige_tensor *sige_pass_scatter_gather(sige_pass *pass, const sige_block_geometry *g_in,
                                     sige_tensor *x, const sige_block_geometry *g_out,
                                     const float *scale, const float *shift, sige_act act,
                                     GError **error) {
  if (!sige_pass_is_sparse(pass)) {
    const gboolean identity = !scale && !shift && act == SIGE_ACT_NONE;
    if (sige_pass_records(pass)) {
      sige_tensor *y = slot_record(pass, x, error);
      if (!y || identity) return y;
      if (!y->owned) { /* a view on the slot: activate a copy */
        sige_tensor *copy = sige_tensor_dup(y, error);
        sige_tensor_free(y);
        if (!(y = copy)) return NULL;
      }
      dense_affine(pass, y, scale, shift, act);
      return y;
    }
    dense_affine(pass, x, scale, shift, act);
    return x;
  }
  sige_tensor *dst = slot_lookup(pass, error);
  if (!dst) {
    sige_tensor_free(x);
    return NULL;
  }
  const int H = SIGE_H(dst), W = SIGE_W(dst);
  const sige_active_blocks *ab_in =
      sige_pass_blocks(pass, H * g_in->stride, W * g_in->stride, g_in, error);
  gboolean ok = ab_in != NULL;
  if (ok && ab_in->n > 0) {
    ok = !pass->undo || sige_undo_log_save_blocks(pass->undo, dst, g_in, ab_in, error);
    if (ok) sige_scatter(pass->ctx, x, g_in, ab_in, NULL, NULL, dst);
  }
  sige_tensor_free(x);
  return ok ? sige_pass_gather(pass, g_out, dst, NULL, scale, shift, act, error) : NULL;
}

sige_tensor *sige_pass_scatter(sige_pass *pass, const sige_block_geometry *g, sige_tensor *x,
                              const sige_tensor *residual, const sige_resample_map *rmap,
                              GError **error) {
  if (!sige_pass_is_sparse(pass)) {
    if (residual) {
      sige_tensor *r = sige_materialize(residual, rmap, error);
      if (!r) {
        sige_tensor_free(x);
        return NULL;
      }
      sige_add(pass->ctx, x, r, x);
      sige_tensor_free(r);
    }
    if (sige_pass_records(pass)) return slot_record(pass, x, error);
    return x;
  }
  sige_tensor *dst = slot_lookup(pass, error);
  const sige_active_blocks *ab =
      dst ? sige_pass_blocks(pass, SIGE_H(dst) * g->stride, SIGE_W(dst) * g->stride, g, error) : NULL;
  gboolean ok = ab != NULL;
  if (ok && ab->n > 0) {
    ok = !pass->undo || sige_undo_log_save_blocks(pass->undo, dst, g, ab, error);
    if (ok) sige_scatter(pass->ctx, x, g, ab, residual, rmap, dst);
  }
  sige_tensor_free(x);
  return ok ? view_of(dst) : NULL;
}

sige_tensor *sige_pass_scatter_block_residual(sige_pass *pass, const sige_block_geometry *g_main,
                                             sige_tensor *main,
                                             const sige_block_geometry *g_sc,
                                             sige_tensor *shortcut, GError **error) {
  if (!sige_pass_is_sparse(pass)) {
    sige_add(pass->ctx, main, shortcut, main);
    if (sige_pass_records(pass)) {
      sige_tensor *out = slot_record(pass, main, error);
      if (!out) {
        sige_tensor_free(shortcut);
        return NULL;
      }
      sige_tensor *res = slot_record(pass, shortcut, error);
      if (!res) {
        sige_tensor_free(out);
        return NULL;
      }
      sige_tensor_free(res); /* only the cache keeps the shortcut output */
      return out;
    }
    sige_tensor_free(shortcut);
    return main;
  }
  gboolean ok = FALSE;
  sige_tensor *dst = slot_lookup(pass, error);
  sige_tensor *res = dst ? slot_lookup(pass, error) : NULL;
  if (res) {
    const int H = SIGE_H(dst), W = SIGE_W(dst);
    const sige_active_blocks *ab_main = sige_pass_blocks(pass, H, W, g_main, error);
    const sige_active_blocks *ab_sc = ab_main ? sige_pass_blocks(pass, H, W, g_sc, error) : NULL;
    ok = ab_sc && (!pass->undo || (sige_undo_log_save_blocks(pass->undo, dst, g_main, ab_main, error) &&
                                  sige_undo_log_save_blocks(pass->undo, dst, g_sc, ab_sc, error) &&
                                  sige_undo_log_save_blocks(pass->undo, res, g_sc, ab_sc, error)));
    if (ok)
      sige_scatter_block_residual(pass->ctx, main, g_main, ab_main, shortcut, g_sc, ab_sc, dst, res);
  }
  sige_tensor_free(main);
  sige_tensor_free(shortcut);
  return ok ? view_of(dst) : NULL;
}

sige_tensor *sige_pass_gather_cat(sige_pass *pass, const sige_block_geometry *g, const sige_tensor *a,
                                 const sige_resample_map *amap, const sige_tensor *b,
                                 const sige_tensor *dense_cat, const float *scale,
                                 const float *shift, sige_act act, GError **error) {
  if (!b) return sige_pass_gather(pass, g, a, amap, scale, shift, act, error);
  const int ca = SIGE_C(a), cb = SIGE_C(b);
  if (!sige_pass_is_sparse(pass)) {
    sige_tensor *x = NULL;
    if (dense_cat) {
      x = sige_tensor_dup(dense_cat, error);
    } else {
      g_autoptr(sige_tensor) am = sige_materialize(a, amap, error);
      if (am) x = sige_tensor_new4_like(am, 1, ca + cb, SIGE_H(am), SIGE_W(am), error);
      if (x) sige_concat_channels(pass->ctx, am, b, x);
    }
    if (x) dense_affine(pass, x, scale, shift, act);
    return x;
  }
  g_return_val_if_fail(amap == NULL, NULL);
  const sige_active_blocks *ab = sige_pass_blocks(pass, SIGE_H(a), SIGE_W(a), g, error);
  if (!ab) return NULL;
  sige_tensor *out = sige_tensor_new4_like(a, ab->n, ca + cb, g->block, g->block, error);
  if (!out) return NULL;
  out->layout = SIGE_LAYOUT_CNHW;
  if (ab->n > 0) {
    g_autoptr(sige_tensor) va = sige_channel_view(out, 0, ca);
    g_autoptr(sige_tensor) vb = sige_channel_view(out, ca, cb);
    sige_gather(pass->ctx, a, NULL, g, ab, scale, shift, act, va);
    sige_gather(pass->ctx, b, NULL, g, ab, scale ? scale + ca : NULL, shift ? shift + ca : NULL,
                act, vb);
  }
  return out;
}

gboolean sige_pass_needs_stats(const sige_pass *pass) {
  return !(pass->mode == SIGE_MODE_SPARSE && pass->cache);
}

gboolean sige_pass_stats(sige_pass *pass, int C, float *scale, float *shift, GError **error) {
  if (!pass->cache) return TRUE;
  if (pass->mode == SIGE_MODE_FULL) {
    float *v = g_new(float, 2 * (size_t)C);
    memcpy(v, scale, sizeof(float) * C);
    memcpy(v + C, shift, sizeof(float) * C);
    g_ptr_array_add(pass->cache->stats, v);
    g_array_append_val(pass->cache->stat_len, C);
    pass->next_stat++;
    return TRUE;
  }
  if (pass->next_stat >= pass->cache->stats->len ||
      g_array_index(pass->cache->stat_len, int, pass->next_stat) != C) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "sparse pass needs normalisation statistics #%u of %d channels that the full "
                "pass did not record", pass->next_stat, C);
    return FALSE;
  }
  const float *v = g_ptr_array_index(pass->cache->stats, pass->next_stat++);
  memcpy(scale, v, sizeof(float) * C);
  memcpy(shift, v + C, sizeof(float) * C);
  return TRUE;
}

/* The sparse half of the two conv_scatter primitives: the geometry and
 * conv must be those sige_sparse_conv takes, else the caller runs the
 * primitives one by one. */
static gboolean fusable(const sige_conv_layer *conv, const sige_block_geometry *g) {
  const sige_conv2d_params *p = &conv->params;
  return g->kernel == 3 && g->stride == 1 && g->out_block == g->block - 2 && conv->kernel == 3 &&
         SIGE_H(conv->weight) == 3 && SIGE_W(conv->weight) == 3 && p->stride_h == 1 &&
         p->stride_w == 1 && p->groups == 1 && conv->weight->storage == SIGE_STORAGE_F32;
}

static sige_tensor *sparse_conv_scatter(sige_pass *pass, const sige_sparse_conv_io *io,
                                        const sige_block_geometry *g, GError **error) {
  sige_tensor *dst = slot_lookup(pass, error);
  const sige_active_blocks *ab =
      dst ? sige_pass_blocks(pass, SIGE_H(dst) * g->stride, SIGE_W(dst) * g->stride, g, error)
          : NULL;
  gboolean ok = ab != NULL;
  if (ok && ab->n > 0) {
    ok = !pass->undo || sige_undo_log_save_blocks(pass->undo, dst, g, ab, error);
    if (ok) ok = sige_sparse_conv(pass->ctx, io, g, ab, dst, error);
  }
  return ok ? view_of(dst) : NULL;
}

sige_tensor *sige_pass_conv_scatter(sige_pass *pass, const sige_conv_layer *conv, sige_tensor *x,
                                    sige_act act_out, const sige_block_geometry *g,
                                    const sige_tensor *residual, const sige_resample_map *rmap,
                                    GError **error) {
  if (sige_pass_is_sparse(pass) && fusable(conv, g)) {
    const sige_sparse_conv_io io = {.blocks = x, .weight = conv->weight, .bias = conv->bias,
                                    .act_out = act_out, .residual = residual, .rmap = rmap};
    sige_tensor *out = sparse_conv_scatter(pass, &io, g, error);
    sige_tensor_free(x);
    return out;
  }
  sige_tensor *y = sige_pass_conv(pass, conv, x, error);
  sige_tensor_free(x);
  if (!y) return NULL;
  if (act_out != SIGE_ACT_NONE) sige_activation(pass->ctx, y, act_out, y);
  return sige_pass_scatter(pass, g, y, residual, rmap, error);
}

sige_tensor *sige_pass_gather_conv_scatter(sige_pass *pass, const sige_block_geometry *g,
                                           const sige_tensor *src, const sige_resample_map *map,
                                           const float *scale, const float *shift,
                                           sige_act act_in, const sige_conv_layer *conv,
                                           sige_act act_out, const sige_tensor *residual,
                                           const sige_resample_map *rmap, GError **error) {
  if (sige_pass_is_sparse(pass) && fusable(conv, g)) {
    const sige_sparse_conv_io io = {.src = src, .map = map, .scale = scale, .shift = shift,
                                    .act_in = act_in, .weight = conv->weight, .bias = conv->bias,
                                    .act_out = act_out, .residual = residual, .rmap = rmap};
    return sparse_conv_scatter(pass, &io, g, error);
  }
  sige_tensor *x = sige_pass_gather(pass, g, src, map, scale, shift, act_in, error);
  return x ? sige_pass_conv_scatter(pass, conv, x, act_out, g, residual, rmap, error) : NULL;
}

sige_tensor *sige_pass_conv_scatter_gather(sige_pass *pass, const sige_conv_layer *conv,
                                           sige_tensor *x, sige_act act_out,
                                           const sige_block_geometry *g_in,
                                           const sige_block_geometry *g_out, const float *scale,
                                           const float *shift, sige_act act, GError **error) {
  if (sige_pass_is_sparse(pass) && fusable(conv, g_in)) {
    sige_tensor *full = sige_pass_conv_scatter(pass, conv, x, act_out, g_in, NULL, NULL, error);
    if (!full) return NULL;
    sige_tensor *out = sige_pass_gather(pass, g_out, full, NULL, scale, shift, act, error);
    sige_tensor_free(full);
    return out;
  }
  sige_tensor *y = sige_pass_conv(pass, conv, x, error);
  sige_tensor_free(x);
  if (!y) return NULL;
  if (act_out != SIGE_ACT_NONE) sige_activation(pass->ctx, y, act_out, y);
  return sige_pass_scatter_gather(pass, g_in, y, g_out, scale, shift, act, error);
}
