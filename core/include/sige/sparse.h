/* The sparse half of the engine: difference masks, the mask pyramid, block
 * geometry, active blocks, and the gather / scatter kernels.
 *
 * Block batches are CNHW tensors ([C][nb][b][b]) so that a convolution over
 * all active blocks of a layer is one GEMM.  Full tensors are NCHW, N = 1.
 * Semantics follow ../shared/docs/SIGE-SEMANTICS.md. */
#pragma once
#include <glib.h>
#include <stdint.h>
#include "sige/context.h"
#include "sige/ops.h"
#include "sige/tensor.h"

G_BEGIN_DECLS

/* ---- masks ------------------------------------------------------------ */
typedef struct {
  int h, w;
  guint8 *data; /* row-major, 0 or 1 */
} sige_mask;

sige_mask *sige_mask_new(int h, int w); /* zero-filled */
sige_mask *sige_mask_dup(const sige_mask *m);
void sige_mask_free(sige_mask *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_mask, sige_mask_free)
int64_t sige_mask_count(const sige_mask *m);

/* any_over_channels(|a - b| > eps); a and b are host [1, C, H, W] tensors of
 * equal shape.  The _rows form splits the scan over n_threads (same result)
 * and also finds the rows [*row0, *row1) where a and b differ at all (any
 * channel, any bit): what copying b over a must cover; *row0 == *row1 when
 * they are identical (row0 and row1 may be NULL).  sige_diff_rows finds only
 * those rows.  One scan serves all three: the reference check tests what
 * sessions run. */
sige_mask *sige_mask_from_diff(const sige_tensor *a, const sige_tensor *b, float eps);
sige_mask *sige_mask_from_diff_rows(const sige_tensor *a, const sige_tensor *b, float eps,
                                    int n_threads, int *row0, int *row1);
void sige_diff_rows(const sige_tensor *a, const sige_tensor *b, int n_threads, int *row0,
                    int *row1);
/* Union of m and m shifted by 1..radius vertically and horizontally (a cross,
 * each shift taken from the undilated mask).  radius <= 0 copies. */
sige_mask *sige_mask_cross_dilate(const sige_mask *m, int radius);

/* The pyramid of `downsample_mask`: level 0 is the full resolution; each next
 * level halves h and w (floor) and is a bilinear (align_corners=False) resize
 * of the previous level's float mask; a level is kept as
 * cross_dilate(m > min(threshold, max(m) - 1e-3), dilation); it stops after a
 * level whose halved size is below (min_h AND min_w). */
typedef struct sige_mask_pyramid sige_mask_pyramid;
sige_mask_pyramid *sige_mask_pyramid_new(const sige_mask *full, int min_h, int min_w,
                                         int dilation, float threshold);
void sige_mask_pyramid_free(sige_mask_pyramid *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_mask_pyramid, sige_mask_pyramid_free)
int sige_mask_pyramid_levels(const sige_mask_pyramid *p);
const sige_mask *sige_mask_pyramid_level(const sige_mask_pyramid *p, int i);
/* The level of size h x w, or NULL. */
const sige_mask *sige_mask_pyramid_get(const sige_mask_pyramid *p, int h, int w);

/* ---- block geometry --------------------------------------------------- */
typedef struct {
  int kernel, stride;  /* of the convolution that consumes the gathered blocks */
  int offset;          /* the conv's padding (0 for the stride-2 downsample) */
  int block;           /* input block size b = n*stride + kernel */
  int block_stride;    /* (n+1)*stride */
  int out_block;       /* n+1 outputs per side */
} sige_block_geometry;

/* n = max(requested - kernel, 0) / stride. */
void sige_block_geometry_init(sige_block_geometry *g, int kernel, int stride, int offset,
                              int requested_block);

typedef struct {
  int n;        /* number of active blocks */
  int *corners; /* n pairs (h, w): top-left input corner, may be negative */
} sige_active_blocks;

/* reduce_mask: pad the mask with zeros (offset rows/cols before, `block`
 * after), max-pool with window `block` and stride `block_stride`; each true
 * cell (i, j), row-major, gives corner (block_stride*i - offset,
 * block_stride*j - offset). */
sige_active_blocks *sige_reduce_mask(const sige_mask *m, const sige_block_geometry *g);
void sige_active_blocks_free(sige_active_blocks *ab);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_active_blocks, sige_active_blocks_free)

/* ---- reading a full tensor through a resampling map ---------------------
 * A gather may read a tensor that is logically resized (nearest) without
 * materialising it: logical row r reads source row rows[r], column c reads
 * cols[c].  NULL map = identity (logical size = source size). */
typedef struct {
  int h, w;          /* logical size */
  const int *rows;   /* h source row indices */
  const int *cols;   /* w source column indices */
} sige_resample_map;

/* Fills rows/cols (caller-allocated, dst_h / dst_w ints) with PyTorch's
 * F.interpolate(mode="nearest") source indices for src -> dst. */
void sige_nearest_indices(int src, int dst, int *idx);

/* ---- kernels ------------------------------------------------------------
 * Full tensors (src, dst, residual, res_cache) may have F16 storage (the
 * fp16 activation caches, see sige_session_options.fp16_caches): values are
 * widened to float32 on read, computed in float32, and rounded to nearest
 * half once on write.  Block batches are always float32. */
/* out: CNHW [C][nb][b][b] with b = g->block.  For each active block, copies
 * the b x b window of `src` (read through map) at the block's corner;
 * positions outside the logical tensor are 0 and untransformed; inside,
 * z = act(z * scale[c] + shift[c]) (scale/shift may be NULL = 1 / 0). */
void sige_gather(sige_ctx *ctx, const sige_tensor *src, const sige_resample_map *map,
                 const sige_block_geometry *g, const sige_active_blocks *ab,
                 const float *scale, const float *shift, sige_act act, sige_tensor *out);

/* Writes the blocks (CNHW [C][nb][o][o], o = g->out_block) into dst (NCHW
 * [1, C, H, W]) at ((offset + corner) / stride), clipped to dst; when residual
 * is non-NULL (a full NCHW tensor of dst's logical size, read through rmap),
 * dst = block + residual at those positions. */
void sige_scatter(sige_ctx *ctx, const sige_tensor *blocks, const sige_block_geometry *g,
                  const sige_active_blocks *ab, const sige_tensor *residual,
                  const sige_resample_map *rmap, sige_tensor *dst);

/* A residual block with a 1x1 shortcut conv: dst and res_cache hold the
 * cached block output and cached shortcut output.  In main blocks:
 * dst = main + res_cache; then in shortcut blocks: dst += sc - res_cache;
 * finally res_cache = sc in shortcut blocks (the cache update). */
void sige_scatter_block_residual(sige_ctx *ctx, const sige_tensor *main_blocks,
                                 const sige_block_geometry *g_main,
                                 const sige_active_blocks *ab_main, const sige_tensor *sc_blocks,
                                 const sige_block_geometry *g_sc, const sige_active_blocks *ab_sc,
                                 sige_tensor *dst, sige_tensor *res_cache);

/* A 3x3 stride-1 convolution of the active blocks of g (g->kernel 3,
 * g->stride 1), fused with the gather before it and the scatter after it.
 * Input: src read as sige_gather(src, map, g, ab, scale, shift, act_in)
 * reads it, or (src NULL) blocks, a gathered CNHW [Cin][nb][b][b] batch.
 * Output: y = act_out(conv(input, weight, no padding) + bias), written as
 * sige_scatter(y, g, ab, residual, rmap, dst) writes it.  The result is
 * that of those ops in sequence up to the convolution's rounding: the CPU
 * runs the layers its rule gives Winograd F(4x4, 3x3) with the input
 * transform inside the gather and the output transform inside the
 * scatter, without forming either block batch; other layers and other
 * backends run the ops one after the other.  src must not be dst. */
typedef struct {
  const sige_tensor *src;        /* full NCHW [1, Cin, H, W], F32 or F16; or NULL */
  const sige_resample_map *map;  /* src read through it; NULL: as is */
  const float *scale, *shift;    /* per input channel, may be NULL */
  sige_act act_in;
  const sige_tensor *blocks;     /* when src is NULL */
  const sige_tensor *weight;     /* [Cout, Cin, 3, 3] */
  const sige_tensor *bias;       /* [Cout] or NULL */
  sige_act act_out;
  const sige_tensor *residual;   /* full, dst's logical size through rmap; may be NULL */
  const sige_resample_map *rmap;
} sige_sparse_conv_io;
gboolean sige_sparse_conv(sige_ctx *ctx, const sige_sparse_conv_io *io,
                          const sige_block_geometry *g, const sige_active_blocks *ab,
                          sige_tensor *dst, GError **error);

/* ---- undo log ------------------------------------------------------------
 * Sparse passes write into cached activations in place.  Before each write
 * the engine saves the region it will overwrite; a cancelled or failed pass
 * rolls every region back (in reverse order), leaving the caches exactly as
 * they were, without ever copying a full-size activation. */
typedef struct sige_undo_log sige_undo_log;
sige_undo_log *sige_undo_log_new(void);
void sige_undo_log_free(sige_undo_log *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_undo_log, sige_undo_log_free)
/* Saves the output tiles that sige_scatter with (g, ab) would write in dst
 * (F32 or F16: the raw elements, so F16 tiles take half the bytes). */
gboolean sige_undo_log_save_blocks(sige_undo_log *log, sige_tensor *dst,
                                   const sige_block_geometry *g, const sige_active_blocks *ab,
                                   GError **error);
/* Saves a whole tensor (for small ones, such as the dense low-resolution
 * layers). */
gboolean sige_undo_log_save_tensor(sige_undo_log *log, sige_tensor *t, GError **error);
void sige_undo_log_rollback(sige_undo_log *log); /* restores and clears */
void sige_undo_log_clear(sige_undo_log *log);    /* forgets (commit) */
size_t sige_undo_log_bytes(const sige_undo_log *log);

G_END_DECLS
