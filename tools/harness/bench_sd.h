/* sige bench --model sd: the Stable Diffusion 1.5 UNet (one step) and VAE
 * decoder with seeded random weights, dense vs sparse. */
#pragma once
#include <glib.h>

#include "sige/context.h"

G_BEGIN_DECLS

typedef struct {
  double edit_ratio;
  int runs, warmup, threads;
  gint64 seed;
  gboolean json, tiny, fp16;
  gboolean skip_unet, skip_decoder; /* --sd-part */
  gboolean layers;                  /* per layer group: recording vs sparse pass */
  gboolean sparse_only;             /* no dense timing (dense MACs from the recording pass) */
  gboolean set_conv; /* conv_policy was given */
  sige_conv_policy conv_policy;
  sige_device device; /* resolved */
} sige_bench_sd_opts;

/* The median of v[0..n) (sorts v in place); the bench commands' one statistic. */
double sige_bench_median(double *v, int n);

/* Prints the report (text or one JSON object) on stdout. */
gboolean sige_bench_sd(const sige_bench_sd_opts *o, GError **error);

G_END_DECLS
