/* What a pass measured: the figures a session reports after each pass and
 * the engine's pass primitives record per layer group.  A header of its own
 * so that the engine's internals need not include the session API. */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct {
  uint64_t macs;          /* multiply-accumulates of the last pass */
  uint64_t dense_macs;    /* of a full pass (measured at the snapshot) */
  double edit_ratio;      /* fraction of input pixels in the dilated difference */
  gboolean was_sparse;    /* the last pass was sparse (not full, not skipped) */
  double seconds;         /* wall time of the last pass */
  double cpu_seconds;     /* CPU time of the process over the pass, all threads (set by
                           * sige_model_forward_sparse_once_stats only, else 0): less
                           * sensitive to other load than the wall time */
} sige_session_stats;

/* One layer group of the last pass (a model's forward is a sequence of
 * groups, e.g. a residual block): where its time and MACs went.  An SDEdit
 * pass sums each group over the steps. */
typedef struct {
  int group;       /* index in forward order */
  gboolean sparse; /* ran on active blocks (FALSE: dense) */
  uint64_t macs;   /* direct-convolution MACs, as everywhere */
  double seconds;
  uint64_t mults;  /* multiplications executed (fewer than macs with Winograd) */
  unsigned algos;  /* sige_conv_algo bits of its convolutions (context.h) */
} sige_layer_stats;

G_END_DECLS
