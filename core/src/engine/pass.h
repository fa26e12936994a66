/* One forward pass in either mode.
 *
 * A model's forward function is written once in terms of the sige_pass_*
 * primitives below.  Their behaviour depends on the pass's mode and on whether
 * the current layer group is sparse-capable:
 *   dense (full mode, or a layer the model never runs sparsely): plain dense
 *     ops on full tensors;
 *   full mode, sparse-capable layer, recording: dense ops, and each scatter
 *     point records its full output in the next cache slot;
 *   sparse mode, sparse-capable layer: gathers the active blocks (CNHW block
 *     batches), runs convolutions on them as one GEMM, and scatters results
 *     into the cached activations in place (saving what it overwrites in the
 *     undo log first).
 *
 * With fp16 set, cache slots are stored as F16 (half the memory).  A
 * recording pass rounds each recorded tensor through half and goes on with
 * the rounded values, so that its output is exactly what a later sparse pass
 * computes outside the blocks it changes.  In sparse mode the scatter
 * primitives then return F16 views on the caches: read them through
 * sige_pass_gather / as a scatter residual (both take F16), or convert them
 * with sige_tensor_to_f32 before any dense op (dense ops refuse F16). */
#pragma once
#include <glib.h>
#include "sige/context.h"
#include "sige/stats.h"
#include "sige/ops.h"
#include "sige/sparse.h"
#include "sige/tensor.h"

typedef enum { SIGE_MODE_FULL, SIGE_MODE_SPARSE } sige_mode;

/* A convolution layer as stored in a model. */
typedef struct {
  sige_tensor *weight; /* [Cout, Cin/groups, k, k] */
  sige_tensor *bias;   /* [Cout] or NULL */
  sige_conv2d_params params;
  int kernel;
} sige_conv_layer;

/* The caches of one model instance: slot i holds the i-th recorded tensor in
 * forward order (the order is fixed by the model, so both modes agree). */
typedef struct {
  GPtrArray *slots; /* of sige_tensor*: activations, sparse-capable layers only */
  GPtrArray *stats; /* of float*: frozen normalisation scale | shift, every layer */
  GArray *stat_len; /* channels of each stats entry */
} sige_cache;

typedef struct {
  sige_ctx *ctx;
  sige_mode mode;
  gboolean layer_sparse;  /* the current layer group is sparse-capable */
  sige_cache *cache;      /* NULL: dense pass without recording */
  gboolean fp16;          /* cache slots are (recorded as) F16 */
  guint next_slot, next_stat;
  const sige_mask_pyramid *masks; /* sparse mode */
  GHashTable *blocks;     /* (H, W, block, stride, offset) -> sige_active_blocks*, this edit */
  sige_undo_log *undo;    /* sparse mode: saves what scatters overwrite */
  const gint *cancel;     /* polled by sige_pass_begin_group; may be NULL */
  /* The model's conditioning, set by the caller after init (the init
   * functions clear it): SD UNet: the context [tokens, context_dim]
   * (sige_model_pass moves it to the pass's device).  NULL: none. */
  const sige_tensor *cond;
  void (*progress)(double fraction, void *user_data);
  void *progress_data;
  int layers_done, layers_total;
  /* Optional: one sige_layer_stats per layer group, appended as groups end
   * (the last one by sige_pass_clear). */
  GArray *profile;
  gint64 group_t0;
  uint64_t group_macs0, group_mults0;
} sige_pass;

/* Dense pass without caches. */
void sige_pass_init_dense(sige_pass *pass, sige_ctx *ctx);
/* Full pass recording into cache (slots are cleared first). */
void sige_pass_init_full(sige_pass *pass, sige_ctx *ctx, sige_cache *cache);
/* Sparse pass against cache with the given mask pyramid. */
void sige_pass_init_sparse(sige_pass *pass, sige_ctx *ctx, sige_cache *cache,
                          const sige_mask_pyramid *masks, sige_undo_log *undo);
void sige_pass_clear(sige_pass *pass);

void sige_cache_init(sige_cache *c);
void sige_cache_clear(sige_cache *c);
void sige_cache_free_contents(sige_cache *c);
size_t sige_cache_bytes(const sige_cache *c); /* of the slots' elements, F16 or F32 */

/* Starts a layer group; polls the cancel flag and reports progress. */
gboolean sige_pass_begin_group(sige_pass *pass, gboolean sparse_capable, GError **error);
gboolean sige_pass_is_sparse(const sige_pass *pass);
gboolean sige_pass_records(const sige_pass *pass);

const sige_active_blocks *sige_pass_blocks(sige_pass *pass, int h, int w,
                                          const sige_block_geometry *g, GError **error);

/* Dense: act(resample(src) * scale + shift) as a full tensor.
 * Sparse: the active blocks of g at the logical size of (src, map). */
sige_tensor *sige_pass_gather(sige_pass *pass, const sige_block_geometry *g, const sige_tensor *src,
                             const sige_resample_map *map, const float *scale, const float *shift,
                             sige_act act, GError **error);
/* Dense: conv with the layer's padding.  Sparse: the same weights on the
 * block batch with no padding. */
sige_tensor *sige_pass_conv(sige_pass *pass, const sige_conv_layer *conv, const sige_tensor *x,
                           GError **error);
/* Scatter x (a conv output of geometry g_in) into the next cache slot, then
 * gather the blocks of g_out from it with act(z * scale + shift).
 * Dense: act(x * scale + shift) (recording x when recording).
 * Takes ownership of x.  Without scale, shift and act the result may be a
 * view on the cache: callers must not modify it.  The result is always F32
 * (a sparse gather widens F16 caches). */
sige_tensor *sige_pass_scatter_gather(sige_pass *pass, const sige_block_geometry *g_in,
                                     sige_tensor *x, const sige_block_geometry *g_out,
                                     const float *scale, const float *shift, sige_act act,
                                     GError **error);
/* Scatter x (+ residual read through rmap) into the next cache slot and
 * return the whole updated tensor (may be a view on the cache: read only,
 * and F16 in sparse mode with fp16 caches).  The residual may be F16.
 * Takes ownership of x. */
sige_tensor *sige_pass_scatter(sige_pass *pass, const sige_block_geometry *g, sige_tensor *x,
                              const sige_tensor *residual, const sige_resample_map *rmap,
                              GError **error);
/* y = act_out(conv(x)) then sige_pass_scatter(g, y, residual, rmap), for
 * a 3x3 stride-1 conv of geometry g.  Sparse: one sige_sparse_conv from the
 * block batch x (the CPU fuses the output transform of Winograd layers
 * into the scatter).  Takes ownership of x. */
sige_tensor *sige_pass_conv_scatter(sige_pass *pass, const sige_conv_layer *conv, sige_tensor *x,
                                    sige_act act_out, const sige_block_geometry *g,
                                    const sige_tensor *residual, const sige_resample_map *rmap,
                                    GError **error);
/* sige_pass_gather(g, src, map, scale, shift, act_in), then as
 * sige_pass_conv_scatter.  Sparse: one sige_sparse_conv reading src (the
 * CPU fuses the input transform into the gather too). */
sige_tensor *sige_pass_gather_conv_scatter(sige_pass *pass, const sige_block_geometry *g,
                                           const sige_tensor *src, const sige_resample_map *map,
                                           const float *scale, const float *shift,
                                           sige_act act_in, const sige_conv_layer *conv,
                                           sige_act act_out, const sige_tensor *residual,
                                           const sige_resample_map *rmap, GError **error);

/* y = act_out(conv(x)) then sige_pass_scatter_gather(g_in, y, g_out, scale,
 * shift, act); sparse: sige_pass_conv_scatter, then the gather of g_out
 * from the updated cache.  Takes ownership of x. */
sige_tensor *sige_pass_conv_scatter_gather(sige_pass *pass, const sige_conv_layer *conv,
                                           sige_tensor *x, sige_act act_out,
                                           const sige_block_geometry *g_in,
                                           const sige_block_geometry *g_out, const float *scale,
                                           const float *shift, sige_act act, GError **error);
/* Block output = main + shortcut (a 1x1 shortcut conv of geometry g_sc):
 * uses two slots (output, shortcut residual).  Takes ownership of main and
 * shortcut; the result may be a view on the cache (read only, F16 in sparse
 * mode with fp16 caches). */
sige_tensor *sige_pass_scatter_block_residual(sige_pass *pass, const sige_block_geometry *g_main,
                                             sige_tensor *main,
                                             const sige_block_geometry *g_sc,
                                             sige_tensor *shortcut, GError **error);

/* Gather from the channel concatenation [a, b] (b may be NULL) without
 * materialising it in sparse mode.  Dense: act(cat * scale + shift) where
 * cat = dense_cat when given (the caller already built it), else built here. */
sige_tensor *sige_pass_gather_cat(sige_pass *pass, const sige_block_geometry *g, const sige_tensor *a,
                                 const sige_resample_map *amap, const sige_tensor *b,
                                 const sige_tensor *dense_cat, const float *scale,
                                 const float *shift, sige_act act, GError **error);

/* A recording pass with fp16 caches: appends the next cache slot as an
 * uninitialised F16 [1, c, h, w] tensor, owned by the cache, for a model
 * that computes a layer in row bands and writes each band's half values
 * into it (sige_f32_to_f16_n, the rounding slot_record uses), so that no
 * float32 copy of the whole layer exists.  The model must fill every
 * element before the pass ends; the slot order is the one the unbanded
 * primitives would record in. */
sige_tensor *sige_pass_record_f16_slot(sige_pass *pass, int c, int h, int w, GError **error);

/* Normalisation statistics frozen by the full pass.  When this returns TRUE
 * the caller computes scale/shift (C floats each) from the current input and
 * then calls sige_pass_stats_done; when FALSE (sparse pass) the recorded values
 * have been copied into scale/shift already. */
gboolean sige_pass_needs_stats(const sige_pass *pass);
gboolean sige_pass_stats(sige_pass *pass, int C, float *scale, float *shift, GError **error);

/* Helpers shared by the models. */
/* An owned F32 copy of src read through map (NULL: as is), whatever src's
 * storage: the way a dense layer reads a tensor that may be an F16 cache. */
sige_tensor *sige_materialize(const sige_tensor *src, const sige_resample_map *map,
                              GError **error);
/* A channel range of x as a view (contiguous in NCHW with N = 1 and in CNHW),
 * with x's storage. */
sige_tensor *sige_channel_view(const sige_tensor *x, int c0, int nc);
