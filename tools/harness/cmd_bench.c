/* sige bench: dense vs sparse timing of full-size models with random
 * weights, and the raw sgemm rate the convolutions are measured against.
 *
 * Dense and sparse are timed in the same process, one after the other, so
 * that both see the same machine state.  The sparse pass is timed in steady
 * state: the session alternates regenerating `edited` and `original`, and only
 * the original -> edited passes are timed (the reverse pass has the same mask,
 * so it would only double the count; it restores the state for the next). */
#include <cblas.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_report.h"
#include "bench_sd.h"
#include "commands.h"
#include "sige-app/names.h"
#include "random_weights.h"
#include "sige/context.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/ops.h"
#include "sige/sampler.h"
#include "sige/session.h"
#include "sige/sparse.h"
#include "stroke_mask.h"

typedef struct {
  char *model, *save_mask, *mask;
  char *save_weights, *save_io; /* for an outside implementation to load and compare */
  double edit_ratio;
  int runs, warmup, threads;
  gint64 seed;
  gboolean json, dense_only, sparse_only, sgemm, conv_sweep, chain_only;
  gboolean follow_free; /* --follow-free-cpus */
  int sdedit_steps; /* > 0: also time a whole SDEdit edit (DDPM) */
  gboolean fp16;    /* sessions store their caches as fp16 */
  gboolean layers;  /* per layer group: the snapshot's full pass vs the sparse pass */
  gboolean sd_tiny; /* --model sd at a test size */
  char *sd_part;    /* --model sd: "unet", "decoder" or NULL (both) */
  char *device_name;
  char *conv_name;              /* --conv */
  sige_conv_policy conv_policy; /* resolved */
  sige_device device; /* resolved: auto became cpu or cuda once, for every timing */
} bench_opts;

typedef struct {
  int threads;
  const char *device_info;
  double dense_ms, sparse_ms, requested_ratio, stroke_ratio, edit_ratio;
  uint64_t dense_macs, sparse_macs;
  double rss_dense_mb, rss_peak_mb;
  uint64_t dense_mults, sparse_mults; /* multiplications executed (Winograd: < MACs) */
  size_t prepared_bytes;              /* Winograd weights kept on the model */
  gboolean have_sparse, have_sdedit;
  double sdedit_dense_ms, sdedit_sparse_ms, sdedit_snapshot_ms;
  uint64_t sdedit_dense_macs, sdedit_sparse_macs;
  size_t sdedit_cache_bytes;
  GArray *full_groups, *sparse_groups; /* of sige_layer_stats (--layers) */
} bench_result;

static GArray *copy_groups(const sige_session *s) {
  int n = 0;
  const sige_layer_stats *st = sige_session_last_layer_stats(s, &n);
  GArray *a = g_array_sized_new(FALSE, FALSE, sizeof(sige_layer_stats), (guint)n);
  g_array_append_vals(a, st, (guint)n);
  return a;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double sige_bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double now_ms(void) {
  return (double)g_get_monotonic_time() / 1000.0;
}

/* ---- sgemm alone --------------------------------------------------------- */

static int bench_sgemm(const bench_opts *o) {
  /* the GEMMs of the dominant convs: [Cout x Cin*9] x [Cin*9 x H*W] */
  static const int shapes[3][3] = {{64, 131072, 576}, {128, 32768, 1152}, {1024, 512, 9216}};
  g_autoptr(sige_ctx) ctx = sige_ctx_new(o->threads); /* sets OpenBLAS's thread count */
  const int threads = sige_ctx_threads(ctx);
  g_autoptr(JsonBuilder) jb = json_builder_new();
  json_builder_begin_object(jb);
  json_builder_set_member_name(jb, "threads");
  json_builder_add_int_value(jb, threads);
  json_builder_set_member_name(jb, "sgemm");
  json_builder_begin_array(jb);
  if (!o->json) printf("%-26s %10s %10s\n", "sgemm M x N x K", "median ms", "GFLOP/s");
  sige_rng rng;
  sige_rng_init(&rng, (uint64_t)o->seed);
  for (int s = 0; s < 3; s++) {
    const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    float *a = sige_aligned_alloc((size_t)M * K * sizeof(float));
    float *b = sige_aligned_alloc((size_t)K * N * sizeof(float));
    float *c = sige_aligned_alloc((size_t)M * N * sizeof(float));
    if (!a || !b || !c) {
      sige_aligned_free(a);
      sige_aligned_free(b);
      sige_aligned_free(c);
      return sige_cli_fail(g_error_new(SIGE_ERROR, SIGE_ERROR_NOMEM, "sgemm buffers: out of memory"));
    }
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)sige_rng_uniform(&rng) - 0.5f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)sige_rng_uniform(&rng) - 0.5f;
    double t[5];
    for (int r = -1; r < 5; r++) { /* one untimed warm-up */
      const double t0 = now_ms();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c,
                  N);
      if (r >= 0) t[r] = now_ms() - t0;
    }
    const double ms = sige_bench_median(t, 5), gflops = 2.0 * M * N * (double)K / (ms * 1e6);
    if (!o->json) {
      char name[64];
      snprintf(name, sizeof name, "%d x %d x %d", M, N, K);
      printf("%-26s %10.1f %10.1f\n", name, ms, gflops);
    }
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "m");
    json_builder_add_int_value(jb, M);
    json_builder_set_member_name(jb, "n");
    json_builder_add_int_value(jb, N);
    json_builder_set_member_name(jb, "k");
    json_builder_add_int_value(jb, K);
    json_builder_set_member_name(jb, "ms");
    json_builder_add_double_value(jb, ms);
    json_builder_set_member_name(jb, "gflops");
    json_builder_add_double_value(jb, gflops);
    json_builder_end_object(jb);
    sige_aligned_free(a);
    sige_aligned_free(b);
    sige_aligned_free(c);
  }
  json_builder_end_array(jb);
  g_autofree char *cpu = bench_cpu_model();
  json_builder_set_member_name(jb, "cpu");
  json_builder_add_string_value(jb, cpu);
  json_builder_end_object(jb);
  if (o->json) {
    g_autoptr(JsonNode) root = json_builder_get_root(jb);
    g_autofree char *s = json_to_string(root, FALSE);
    printf("%s\n", s);
  } else {
    printf("threads %d, cpu %s\n", threads, cpu);
  }
  return 0;
}

/* ---- convolution algorithms ---------------------------------------------- */

/* One 3x3 stride-1 conv, C -> C channels, timed with each algorithm (the
 * fastest of 5 after a warm-up, which also makes the Winograd weights: on
 * a shared machine the minimum is the run other processes disturbed
 * least): the data
 * behind the rule in cpu/conv2d.c.  Dense maps (NCHW, padding 1) and
 * gathered batches of 6x6 blocks (CNHW, no padding: one F(4x4) tile each,
 * the sparse layers' block). */
static double time_conv(sige_ctx *ctx, sige_conv_policy pol, const sige_tensor *x,
                        const sige_tensor *w, const sige_tensor *b, const sige_conv2d_params *p,
                        sige_tensor *out) {
  sige_ctx_set_conv_policy(ctx, pol);
  double best = G_MAXDOUBLE;
  for (int r = -1; r < 5; r++) {
    const double t0 = now_ms();
    if (!sige_conv2d(ctx, x, w, b, p, out, NULL)) return -1;
    if (r >= 0) best = MIN(best, now_ms() - t0);
  }
  return best;
}

static void sweep_chain(const bench_opts *o, sige_ctx *ctx, sige_rng *rng);

static int bench_conv_sweep(const bench_opts *o) {
  static const int chans[] = {16, 32, 64, 128, 256, 512, 1024};
  /* map side (dense) or block count (sparse) */
  static const int sizes[2][4] = {{16, 32, 64, 128}, {16, 64, 256, 1024}};
  g_autoptr(sige_ctx) ctx = sige_ctx_new(o->threads);
  sige_rng rng;
  sige_rng_init(&rng, (uint64_t)o->seed);
  printf("3x3 stride-1 C -> C, %d thread(s); ms: im2col, wino4, wino2; best\n",
         sige_ctx_threads(ctx));
  printf("%-6s %5s %6s %9s %9s %9s  %s\n", "kind", "C", "size", "im2col", "wino4", "wino2",
         "best");
  for (int kind = 0; kind < (o->chain_only ? 0 : 2); kind++)
    for (size_t ci = 0; ci < G_N_ELEMENTS(chans); ci++)
      for (int si = 0; si < 4; si++) {
        const int c = chans[ci], s = sizes[kind][si];
        const int n = kind ? s : 1, hw = kind ? 6 : s;
        const double gmacs = (double)c * c * 9 * n * (kind ? 16.0 : (double)hw * hw) / 1e9;
        if (gmacs > 12) continue; /* seconds per case: the trend is clear before */
        g_autoptr(sige_tensor) x = sige_tensor_new4(n, c, hw, hw, NULL);
        g_autoptr(sige_tensor) w = sige_tensor_new4(c, c, 3, 3, NULL);
        int64_t bs[1] = {c};
        g_autoptr(sige_tensor) b = sige_tensor_new(1, bs, NULL);
        const int ho = kind ? 4 : hw;
        g_autoptr(sige_tensor) out = sige_tensor_new4(n, c, ho, ho, NULL);
        if (!x || !w || !b || !out) return sige_cli_fail(g_error_new(SIGE_ERROR, SIGE_ERROR_NOMEM, "conv sweep: out of memory"));
        x->layout = out->layout = kind ? SIGE_LAYOUT_CNHW : SIGE_LAYOUT_NCHW;
        for (size_t i = 0; i < x->numel; i++) x->data[i] = (float)sige_rng_uniform(&rng) - 0.5f;
        for (size_t i = 0; i < w->numel; i++) w->data[i] = (float)sige_rng_uniform(&rng) - 0.5f;
        const sige_conv2d_params p = sige_conv2d_params_simple(1, kind ? 0 : 1);
        const double ms[3] = {time_conv(ctx, SIGE_CONV_POLICY_IM2COL, x, w, b, &p, out),
                              time_conv(ctx, SIGE_CONV_POLICY_WINO4, x, w, b, &p, out),
                              time_conv(ctx, SIGE_CONV_POLICY_WINO2, x, w, b, &p, out)};
        int best = 0;
        for (int a = 1; a < 3; a++)
          if (ms[a] < ms[best]) best = a;
        static const char *const names[] = {"im2col", "wino4", "wino2"};
        printf("%-6s %5d %6d %9.2f %9.2f %9.2f  %s\n", kind ? "blocks" : "map", c, s, ms[0],
               ms[1], ms[2], names[best]);
      }
  sweep_chain(o, ctx, &rng);
  return 0;
}

/* The sparse chain of one 3x3 layer on nb 6x6 blocks spread over a map
 * (each block's 4x4 output tile apart): gather + conv + scatter with a
 * residual, as a sparse pass runs it.  unfused: sige_gather, sige_conv2d
 * with the policy's algorithm, sige_scatter; fused: sige_sparse_conv
 * (Winograd with the transforms inside the gather and the scatter).  The
 * fastest of 9 after a warm-up, ms (the small cases take microseconds, so
 * one descheduling on a loaded machine costs more than the case). */
static double time_chain(sige_ctx *ctx, sige_conv_policy pol, gboolean fused,
                         const sige_tensor *src, const sige_tensor *w, const sige_tensor *b,
                         const sige_block_geometry *g, const sige_active_blocks *ab,
                         sige_tensor *gathered, sige_tensor *convout, sige_tensor *dst) {
  sige_ctx_set_conv_policy(ctx, pol);
  const sige_conv2d_params p = sige_conv2d_params_simple(1, 0);
  const sige_sparse_conv_io io = {.src = src, .weight = w, .bias = b, .residual = src};
  double best = G_MAXDOUBLE;
  for (int r = -1; r < 9; r++) {
    const double t0 = now_ms();
    if (fused) {
      if (!sige_sparse_conv(ctx, &io, g, ab, dst, NULL)) return -1;
    } else {
      sige_gather(ctx, src, NULL, g, ab, NULL, NULL, SIGE_ACT_NONE, gathered);
      if (!sige_conv2d(ctx, gathered, w, b, &p, convout, NULL)) return -1;
      sige_scatter(ctx, convout, g, ab, src, NULL, dst);
    }
    if (r >= 0) best = MIN(best, now_ms() - t0);
  }
  return best;
}

static void sweep_chain(const bench_opts *o, sige_ctx *ctx, sige_rng *rng) {
  static const int chans[] = {32, 64, 96, 128, 192, 256, 512, 1024};
  static const int counts[] = {1, 2, 4, 8, 16, 32, 64, 256, 1024};
  (void)o;
  printf("\nsparse chain: gather + 3x3 conv + scatter (residual) of nb 6x6 blocks, C -> C;"
         " ms: unfused im2col, unfused wino4, fused wino4; best\n");
  printf("%-6s %5s %6s %9s %9s %9s  %s\n", "kind", "C", "blocks", "im2col", "wino4", "fused",
         "best");
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  for (size_t ci = 0; ci < G_N_ELEMENTS(chans); ci++)
    for (size_t ni = 0; ni < G_N_ELEMENTS(counts); ni++) {
      const int c = chans[ci], nb = counts[ni];
      if ((double)c * c * 9 * nb * 16 / 1e9 > 6) continue;
      int side = 1;
      while (side * side < nb) side++;
      const int hw = 4 * side + 4; /* a margin: blocks off the map's edges */
      g_autoptr(sige_tensor) src = sige_tensor_new4(1, c, hw, hw, NULL);
      g_autoptr(sige_tensor) dst = sige_tensor_new4(1, c, hw, hw, NULL);
      g_autoptr(sige_tensor) w = sige_tensor_new4(c, c, 3, 3, NULL);
      int64_t bs[1] = {c};
      g_autoptr(sige_tensor) b = sige_tensor_new(1, bs, NULL);
      g_autoptr(sige_tensor) gathered = sige_tensor_new4(nb, c, 6, 6, NULL);
      g_autoptr(sige_tensor) convout = sige_tensor_new4(nb, c, 4, 4, NULL);
      if (!src || !dst || !w || !b || !gathered || !convout) return;
      gathered->layout = convout->layout = SIGE_LAYOUT_CNHW;
      for (size_t i = 0; i < src->numel; i++) src->data[i] = (float)sige_rng_uniform(rng) - 0.5f;
      for (size_t i = 0; i < w->numel; i++) w->data[i] = (float)sige_rng_uniform(rng) - 0.5f;
      g_autofree int *corners = g_new(int, 2 * nb);
      for (int k = 0; k < nb; k++) {
        corners[2 * k] = 4 * (k / side) + 1;
        corners[2 * k + 1] = 4 * (k % side) + 1;
      }
      const sige_active_blocks ab = {nb, corners};
      const double ms[3] = {
          time_chain(ctx, SIGE_CONV_POLICY_IM2COL, FALSE, src, w, b, &g, &ab, gathered, convout, dst),
          time_chain(ctx, SIGE_CONV_POLICY_WINO4, FALSE, src, w, b, &g, &ab, gathered, convout, dst),
          time_chain(ctx, SIGE_CONV_POLICY_WINO4, TRUE, src, w, b, &g, &ab, gathered, convout, dst)};
      int best = 0;
      for (int a = 1; a < 3; a++)
        if (ms[a] < ms[best]) best = a;
      static const char *const names[] = {"im2col", "wino4", "fused"};
      printf("%-6s %5d %6d %9.3f %9.3f %9.3f  %s\n", "chain", c, nb, ms[0], ms[1], ms[2],
             names[best]);
    }
}

/* ---- inputs ---------------------------------------------------------------- */

/* Cityscapes ids: sky above buildings above road, with cars, trees and people
 * as rectangles; the instance map is the label map, so class borders are
 * instance edges. */
static int32_t *synthetic_labels(int h, int w, uint64_t seed) {
  int32_t *lab = g_new(int32_t, (size_t)h * w);
  for (int y = 0; y < h; y++) {
    const int32_t c = y < 0.3 * h ? 23 : y < 0.55 * h ? 11 : y < 0.62 * h ? 8 : 7;
    for (int x = 0; x < w; x++) lab[(size_t)y * w + x] = c;
  }
  sige_rng rng;
  sige_rng_init(&rng, seed ^ 0x1abe1u);
  static const int32_t objects[3] = {26, 21, 24};
  for (int i = 0; i < 12; i++) {
    const int32_t c = objects[sige_rng_int(&rng, 3)];
    const int rh = h / 16 + sige_rng_int(&rng, h / 6), rw = w / 32 + sige_rng_int(&rng, w / 8);
    const int y0 = (int)(h * 0.3) + sige_rng_int(&rng, MAX(1, (int)(h * 0.7) - rh));
    const int x0 = sige_rng_int(&rng, MAX(1, w - rw));
    for (int y = y0; y < MIN(h, y0 + rh); y++)
      for (int x = x0; x < MIN(w, x0 + rw); x++) lab[(size_t)y * w + x] = c;
  }
  return lab;
}

static gboolean make_inputs(const sige_model *m, const guint8 *mask, uint64_t seed,
                            sige_tensor **orig, sige_tensor **edited, GError **error) {
  int64_t shape[4];
  sige_model_input_shape(m, shape);
  const int h = (int)shape[2], w = (int)shape[3];
  const size_t hw = (size_t)h * w;
  if (sige_model_spade_config(m)) { /* SPADE or sub-mobile SPADE: semantic labels */
    const sige_spade_config *cfg = sige_model_spade_config(m);
    g_autofree int32_t *lab = synthetic_labels(h, w, seed);
    g_autofree int32_t *lab2 = g_memdup2(lab, hw * sizeof *lab);
    /* paint vegetation over the stroke (sidewalk where it already is) */
    for (size_t i = 0; i < hw; i++)
      if (mask[i]) lab2[i] = lab[i] == 21 ? 8 : 21;
    const int32_t *inst = cfg->contain_instance ? lab : NULL;
    const int32_t *inst2 = cfg->contain_instance ? lab2 : NULL;
    *orig = sige_semantic_input(lab, inst, h, w, cfg->label_nc, error);
    if (!*orig) return FALSE;
    *edited = sige_semantic_input(lab2, inst2, h, w, cfg->label_nc, error);
    return *edited != NULL;
  }
  *orig = sige_tensor_new(4, shape, error);
  if (!*orig) return FALSE;
  sige_rng rng;
  sige_rng_init(&rng, seed ^ 0x1ea9eu);
  for (size_t i = 0; i < (*orig)->numel; i++)
    (*orig)->data[i] = (float)(2.0 * sige_rng_uniform(&rng) - 1.0);
  *edited = sige_tensor_dup(*orig, error);
  if (!*edited) return FALSE;
  const size_t c = (size_t)shape[1];
  for (size_t k = 0; k < c; k++)
    for (size_t i = 0; i < hw; i++)
      if (mask[i]) (*edited)->data[k * hw + i] = (float)(2.0 * sige_rng_uniform(&rng) - 1.0);
  return TRUE;
}

/* ---- model ----------------------------------------------------------------- */

/* --save-weights: the random weights (F32, the names the loaders read), so
 * that another implementation (tools/peer) can run exactly the same model. */
static gboolean save_weights_to(const sige_weights *w, const char *path, GError **error) {
  return !path || sige_weights_save_safetensors(w, path, SIGE_DTYPE_F32, NULL, error);
}

static sige_model *build_model(const char *kind, uint64_t seed, const char *save_weights,
                               GError **error) {
  if (!g_strcmp0(kind, "gaugan")) {
    sige_spade_config cfg;
    sige_spade_config_init(&cfg);
    g_autoptr(sige_weights) w = sige_random_spade_weights(&cfg, seed, error);
    if (w && !save_weights_to(w, save_weights, error)) return NULL;
    return w ? sige_model_new_spade(&cfg, w, error) : NULL;
  }
  if (!g_strcmp0(kind, "gancomp")) {
    sige_gancomp_config cfg; /* the published compressed config, 32_32_32_48_32_24_24_32 */
    sige_gancomp_config_init(&cfg);
    g_autoptr(sige_weights) w = sige_random_gancomp_weights(&cfg, seed, error);
    if (w && !save_weights_to(w, save_weights, error)) return NULL;
    return w ? sige_model_new_gancomp(&cfg, w, error) : NULL;
  }
  if (!g_strcmp0(kind, "ddpm")) {
    sige_ddpm_config cfg;
    sige_ddpm_config_init(&cfg);
    g_autoptr(sige_weights) w = sige_random_ddpm_weights(&cfg, seed, error);
    if (w && !save_weights_to(w, save_weights, error)) return NULL;
    return w ? sige_model_new_ddpm(&cfg, w, error) : NULL;
  }
  if (!g_strcmp0(kind, "pd")) {
    sige_pd_config cfg; /* the published church-128 PD UNet (ch 64, ch_mult 1,2,4,6,8) */
    sige_pd_config_init(&cfg);
    g_autoptr(sige_weights) w = sige_random_pd_weights(&cfg, seed, error);
    if (w && !save_weights_to(w, save_weights, error)) return NULL;
    return w ? sige_model_new_pd(&cfg, w, error) : NULL;
  }
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              "--model must be 'ddpm', 'pd', 'gaugan', 'gancomp' or 'sd' (got '%s')", kind ? kind : "");
  return NULL;
}

static gboolean time_dense(const sige_model *m, const bench_opts *o, const sige_tensor *x,
                           float t, bench_result *r, GError **error) {
  g_autoptr(sige_ctx) ctx = sige_ctx_new_device(o->threads, o->device, error);
  if (!ctx) return FALSE;
  r->threads = sige_ctx_threads(ctx);
  if (o->conv_name) sige_ctx_set_conv_policy(ctx, o->conv_policy);
  g_autofree double *ms = g_new(double, o->runs);
  for (int i = -o->warmup; i < o->runs; i++) {
    sige_ctx_reset_macs(ctx);
    if (o->follow_free) sige_ctx_fit_threads(ctx);
    sige_tensor *out = NULL;
    const double t0 = now_ms();
    if (!sige_model_forward_dense(m, ctx, x, t, &out, error)) return FALSE;
    const double dt = now_ms() - t0;
    sige_tensor_free(out);
    r->dense_macs = sige_ctx_macs(ctx);
    r->dense_mults = sige_ctx_mults(ctx);
    if (i >= 0) ms[i] = dt;
  }
  r->dense_ms = sige_bench_median(ms, o->runs);
  r->prepared_bytes += sige_ctx_prepared_bytes(ctx);
  return TRUE;
}

/* One more dense forward of x, written with its input and timestep: the
 * reference output another implementation compares against (untimed).
 * With a sparse run, also the edited input and the session's sparse output
 * for it, so that a peer's sparse pass on the same pair can be checked. */
static gboolean save_io(const sige_model *m, const bench_opts *o, const sige_tensor *x, float t,
                        const sige_tensor *edited, sige_tensor *sparse_out, GError **error) {
  g_autoptr(sige_weights) io = sige_weights_new();
  if (sparse_out) sige_weights_insert(io, "output_sparse", sparse_out); /* io owns it from here */
  g_autoptr(sige_ctx) ctx = sige_ctx_new(o->threads);
  sige_tensor *out = NULL, *in = NULL, *ts = NULL, *ed = NULL;
  int64_t one[1] = {1};
  if (!sige_model_forward_dense(m, ctx, x, t, &out, error)) return FALSE;
  sige_weights_insert(io, "output", out);
  if (!(in = sige_tensor_dup(x, error)) || !(ts = sige_tensor_new(1, one, error))) {
    sige_tensor_free(in);
    return FALSE;
  }
  sige_weights_insert(io, "input", in);
  ts->data[0] = t;
  sige_weights_insert(io, "timestep", ts);
  if (sparse_out) {
    if (!(ed = sige_tensor_dup(edited, error))) return FALSE;
    sige_weights_insert(io, "edited", ed);
  }
  return sige_weights_save_safetensors(io, o->save_io, SIGE_DTYPE_F32, NULL, error);
}

/* sparse_out (optional): the output of one more, untimed, original -> edited
 * pass after the timed ones. */
static gboolean time_sparse(const sige_model *m, const bench_opts *o, const sige_tensor *orig,
                            const sige_tensor *edited, float t, bench_result *r,
                            sige_tensor **sparse_out, GError **error) {
  sige_session_options so;
  sige_session_options_init(&so);
  so.n_threads = o->threads;
  so.device = o->device;
  so.timestep = t;
  so.full_pass_above = 2.0;
  so.fp16_caches = o->fp16; /* always sparse, whatever the edit size */
  so.conv_policy = o->conv_policy;
  so.follow_free_cpus = o->follow_free;
  g_autoptr(sige_session) s = sige_session_new(m, &so, error);
  if (!s || !sige_session_snapshot(s, orig, NULL, error)) return FALSE;
  const uint64_t snapshot_dense_macs = sige_session_last_stats(s)->dense_macs;
  if (o->layers) r->full_groups = copy_groups(s);
  if (o->sparse_only) {
    r->dense_macs = snapshot_dense_macs;
    g_autoptr(sige_ctx) ctx = sige_ctx_new(o->threads); /* only to resolve the count */
    r->threads = sige_ctx_threads(ctx);
  }
  g_autofree double *ms = g_new(double, o->runs);
  for (int i = -o->warmup; i < o->runs; i++) {
    const double t0 = now_ms();
    if (!sige_session_regenerate(s, edited, NULL, NULL, NULL, NULL, NULL, error)) return FALSE;
    const double dt = now_ms() - t0;
    const sige_session_stats *st = sige_session_last_stats(s);
    if (!st->was_sparse) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                  "the session ran a %s pass, not a sparse one: no sparse timing to report",
                  st->macs ? "full" : "skipped");
      return FALSE;
    }
    r->sparse_macs = st->macs;
    r->sparse_mults = 0;
    int ng = 0;
    const sige_layer_stats *gs = sige_session_last_layer_stats(s, &ng);
    for (int g = 0; g < ng; g++) r->sparse_mults += gs[g].mults;
    r->edit_ratio = st->edit_ratio;
    if (o->layers && i == o->runs - 1) r->sparse_groups = copy_groups(s);
    if (i >= 0) ms[i] = dt;
    if (!sige_session_regenerate(s, orig, NULL, NULL, NULL, NULL, NULL, error)) return FALSE;
  }
  if (snapshot_dense_macs != r->dense_macs)
    g_warning("dense MACs differ: forward %" G_GUINT64_FORMAT ", session snapshot %" G_GUINT64_FORMAT,
              r->dense_macs, snapshot_dense_macs);
  r->sparse_ms = sige_bench_median(ms, o->runs);
  r->have_sparse = TRUE;
  return !sparse_out ||
         sige_session_regenerate(s, edited, NULL, NULL, NULL, sparse_out, NULL, error);
}

/* A whole SDEdit edit (DPM-Solver++, the demo's noise level 750): dense =
 * the same loop with dense forwards and no caches; sparse = a session's
 * regenerate after its snapshot (one run each: an edit takes many passes). */
static gboolean time_sdedit(const sige_model *m, const bench_opts *o, const sige_tensor *orig,
                            const sige_tensor *edited, bench_result *r, GError **error) {
  sige_session_options so;
  sige_session_options_init(&so);
  so.n_threads = o->threads;
  so.device = o->device;
  so.full_pass_above = 2.0;
  so.fp16_caches = o->fp16;
  so.conv_policy = o->conv_policy;
  so.follow_free_cpus = o->follow_free;
  so.sdedit = TRUE;
  sige_sampler_config_init(&so.sampler, SIGE_SAMPLER_DPM_SOLVER_PP);
  so.sampler.sample_steps = o->sdedit_steps;
  so.seed = (guint64)o->seed;
  g_autoptr(sige_sampler) smp = sige_sampler_new(&so.sampler, error);
  if (!smp) return FALSE;
  g_autoptr(sige_ctx) ctx = sige_ctx_new_device(o->threads, o->device, error);
  if (!ctx) return FALSE;
  g_autoptr(sige_tensor) noise = sige_tensor_dup(orig, error);
  g_autoptr(sige_tensor) x = sige_tensor_dup(orig, error);
  if (!noise || !x) return FALSE;
  sige_normal_noise((guint64)o->seed, noise);
  double t0 = now_ms();
  sige_sampler_noisy(smp, 0, edited, noise, x);
  sige_ctx_reset_macs(ctx);
  for (int i = 0; i < sige_sampler_steps(smp); i++) {
    g_autoptr(sige_tensor) eps = NULL;
    if (!sige_model_forward_dense(m, ctx, x, sige_sampler_model_t(smp, i), &eps, error) ||
        !sige_sampler_step(smp, i, x, eps, error))
      return FALSE;
  }
  r->sdedit_dense_ms = now_ms() - t0;
  r->sdedit_dense_macs = sige_ctx_macs(ctx);
  g_autoptr(sige_session) s = sige_session_new(m, &so, error);
  if (!s) return FALSE;
  t0 = now_ms();
  if (!sige_session_snapshot(s, orig, NULL, error)) return FALSE;
  r->sdedit_snapshot_ms = now_ms() - t0;
  t0 = now_ms();
  if (!sige_session_regenerate(s, edited, NULL, NULL, NULL, NULL, NULL, error)) return FALSE;
  r->sdedit_sparse_ms = now_ms() - t0;
  r->sdedit_sparse_macs = sige_session_last_stats(s)->macs;
  r->sdedit_cache_bytes = sige_session_cache_bytes(s);
  r->have_sdedit = TRUE;
  return TRUE;
}

/* --layers: where the sparse pass spends its time, group by group (the full
 * column is the snapshot's recording pass, one run). */
/* The convolution algorithms of a group, e.g. "wino4+1x1". */
static const char *algo_names(unsigned algos, char *buf, size_t len) {
  static const char *const names[] = {"im2col", "1x1", "dw", "smallc", "wino4", "wino2", "wino4f"};
  buf[0] = '\0';
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
    if (algos & (1u << i)) {
      if (buf[0]) g_strlcat(buf, "+", len);
      g_strlcat(buf, names[i], len);
    }
  if (!buf[0]) g_strlcpy(buf, "-", len);
  return buf;
}

static void report_groups(const bench_result *r) {
  printf("\nlayer group   full ms  full GMACs  sparse ms  sparse GMACs  MAC ratio  speedup"
         "  sparse Gmults  algorithms (full / sparse)\n");
  const guint n = MIN(r->full_groups->len, r->sparse_groups->len);
  for (guint g = 0; g < n; g++) {
    const sige_layer_stats *f = &g_array_index(r->full_groups, sige_layer_stats, g);
    const sige_layer_stats *s = &g_array_index(r->sparse_groups, sige_layer_stats, g);
    printf("%3d %-7s %9.1f %11.3f %10.1f %13.3f %9.2fx %7.2fx", s->group,
           s->sparse ? "sparse" : "dense", f->seconds * 1e3, f->macs / 1e9, s->seconds * 1e3,
           s->macs / 1e9, s->macs ? (double)f->macs / s->macs : 0.0,
           s->seconds > 0 ? f->seconds / s->seconds : 0.0);
    char fa[64], sa[64];
    printf(" %14.3f  %s / %s\n", s->mults / 1e9, algo_names(f->algos, fa, sizeof fa),
           algo_names(s->algos, sa, sizeof sa));
  }
}

static void add_groups(JsonBuilder *jb, const bench_result *r) {
  json_builder_set_member_name(jb, "layers");
  json_builder_begin_array(jb);
  const guint n = MIN(r->full_groups->len, r->sparse_groups->len);
  for (guint g = 0; g < n; g++) {
    const sige_layer_stats *f = &g_array_index(r->full_groups, sige_layer_stats, g);
    const sige_layer_stats *s = &g_array_index(r->sparse_groups, sige_layer_stats, g);
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "group");
    json_builder_add_int_value(jb, s->group);
    json_builder_set_member_name(jb, "sparse");
    json_builder_add_boolean_value(jb, s->sparse);
    json_builder_set_member_name(jb, "full_ms");
    json_builder_add_double_value(jb, f->seconds * 1e3);
    json_builder_set_member_name(jb, "full_gmacs");
    json_builder_add_double_value(jb, f->macs / 1e9);
    json_builder_set_member_name(jb, "sparse_ms");
    json_builder_add_double_value(jb, s->seconds * 1e3);
    json_builder_set_member_name(jb, "sparse_gmacs");
    json_builder_add_double_value(jb, s->macs / 1e9);
    json_builder_set_member_name(jb, "sparse_gmults");
    json_builder_add_double_value(jb, s->mults / 1e9);
    char fa[64], sa[64];
    json_builder_set_member_name(jb, "full_algorithms");
    json_builder_add_string_value(jb, algo_names(f->algos, fa, sizeof fa));
    json_builder_set_member_name(jb, "sparse_algorithms");
    json_builder_add_string_value(jb, algo_names(s->algos, sa, sizeof sa));
    json_builder_end_object(jb);
  }
  json_builder_end_array(jb);
}

static void report(const bench_opts *o, const bench_result *r) {
  g_autofree char *cpu = bench_cpu_model();
  const double dg = r->dense_macs / 1e9, sg = r->sparse_macs / 1e9;
  const double dense_gflops = 2.0 * dg / (r->dense_ms / 1e3);
  if (o->json) {
    g_autoptr(JsonBuilder) jb = json_builder_new();
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "model");
    json_builder_add_string_value(jb, o->model);
    json_builder_set_member_name(jb, "threads");
    json_builder_add_int_value(jb, r->threads);
    json_builder_set_member_name(jb, "device");
    json_builder_add_string_value(jb, sige_device_name(o->device));
    json_builder_set_member_name(jb, "device_info");
    json_builder_add_string_value(jb, r->device_info);
    json_builder_set_member_name(jb, "runs");
    json_builder_add_int_value(jb, o->runs);
    json_builder_set_member_name(jb, "warmup");
    json_builder_add_int_value(jb, o->warmup);
    json_builder_set_member_name(jb, "seed");
    json_builder_add_int_value(jb, o->seed);
    json_builder_set_member_name(jb, "dense_only");
    json_builder_add_boolean_value(jb, !r->have_sparse);
    bench_json_num(jb, "edit_ratio_requested", r->requested_ratio);
    bench_json_num(jb, "dense_gmacs", dg);
    json_builder_set_member_name(jb, "conv");
    json_builder_add_string_value(jb, o->conv_name ? o->conv_name : "auto");
    bench_json_num(jb, "winograd_weights_mb", r->prepared_bytes / 1048576.0);
    if (!o->sparse_only) {
      bench_json_num(jb, "dense_gmults", r->dense_mults / 1e9);
      bench_json_num(jb, "dense_ms", r->dense_ms);
      bench_json_num(jb, "dense_gflops", dense_gflops);
    }
    if (r->have_sparse) {
      bench_json_num(jb, "edit_ratio_stroke", r->stroke_ratio);
      bench_json_num(jb, "edit_ratio", r->edit_ratio);
      bench_json_num(jb, "sparse_ms", r->sparse_ms);
      if (!o->sparse_only) bench_json_num(jb, "speedup", r->dense_ms / r->sparse_ms);
      bench_json_num(jb, "sparse_gmacs", sg);
      bench_json_num(jb, "sparse_gmults", r->sparse_mults / 1e9);
      bench_json_num(jb, "mac_ratio", dg / sg);
    }
    if (r->have_sdedit) {
      json_builder_set_member_name(jb, "sdedit_steps");
      json_builder_add_int_value(jb, o->sdedit_steps);
      bench_json_num(jb, "sdedit_dense_ms", r->sdedit_dense_ms);
      bench_json_num(jb, "sdedit_snapshot_ms", r->sdedit_snapshot_ms);
      bench_json_num(jb, "sdedit_sparse_ms", r->sdedit_sparse_ms);
      bench_json_num(jb, "sdedit_speedup", r->sdedit_dense_ms / r->sdedit_sparse_ms);
      bench_json_num(jb, "sdedit_dense_gmacs", r->sdedit_dense_macs / 1e9);
      bench_json_num(jb, "sdedit_sparse_gmacs", r->sdedit_sparse_macs / 1e9);
      bench_json_num(jb, "sdedit_cache_mb", r->sdedit_cache_bytes / 1048576.0);
      json_builder_set_member_name(jb, "fp16_caches");
      json_builder_add_boolean_value(jb, o->fp16);
    }
    if (r->full_groups && r->sparse_groups) add_groups(jb, r);
    bench_json_num(jb, "peak_rss_dense_mb", r->rss_dense_mb);
    bench_json_num(jb, "peak_rss_mb", r->rss_peak_mb);
    json_builder_set_member_name(jb, "cpu");
    json_builder_add_string_value(jb, cpu);
    bench_json_print(jb);
    return;
  }
  printf("model %s, %d thread(s), median of %d run(s) after %d warm-up(s)\ncpu %s\ndevice %s\n\n",
         o->model, r->threads, o->runs, o->warmup, cpu, r->device_info);
  printf("convolutions: %s; Winograd weights kept: %.1f MiB\n\n",
         o->conv_name ? o->conv_name : "auto", r->prepared_bytes / 1048576.0);
  /* GFLOP/s from direct-convolution MACs (comparable across algorithms);
   * Gmults: the multiplications actually executed */
  printf("%-8s %12s %10s %10s %10s\n", "pass", "median ms", "GMACs", "GFLOP/s", "Gmults");
  if (!o->sparse_only)
    printf("%-8s %12.1f %10.2f %10.1f %10.2f\n", "dense", r->dense_ms, dg, dense_gflops,
           r->dense_mults / 1e9);
  if (r->have_sparse) {
    printf("%-8s %12.1f %10.2f %10.1f %10.2f\n", "sparse", r->sparse_ms, sg,
           2.0 * sg / (r->sparse_ms / 1e3), r->sparse_mults / 1e9);
    printf("\nedit ratio: requested %.2f%%, stroke %.2f%%, dilated difference %.2f%%\n",
           100 * r->requested_ratio, 100 * r->stroke_ratio, 100 * r->edit_ratio);
    printf("MAC ratio %.2fx", dg / sg);
    if (!o->sparse_only)
      printf(", speedup %.2fx (%.0f%% of the MAC ratio)", r->dense_ms / r->sparse_ms,
             100.0 * (r->dense_ms / r->sparse_ms) / (dg / sg));
    printf("\n");
  }
  if (r->have_sdedit)
    printf("\nSDEdit, DPM-Solver++ %d steps from 750: dense %.1f ms (%.1f GMACs), sparse %.1f ms "
           "(%.1f GMACs), speedup %.2fx; snapshot %.1f ms, caches %.0f MiB\n",
           o->sdedit_steps, r->sdedit_dense_ms, r->sdedit_dense_macs / 1e9, r->sdedit_sparse_ms,
           r->sdedit_sparse_macs / 1e9, r->sdedit_dense_ms / r->sdedit_sparse_ms,
           r->sdedit_snapshot_ms, r->sdedit_cache_bytes / 1048576.0);
  printf("peak RSS %.0f MB (%.0f MB after the dense runs)\n", r->rss_peak_mb, r->rss_dense_mb);
  if (r->full_groups && r->sparse_groups) report_groups(r);
}

static gboolean run_bench(bench_opts *o, GError **error) {
  bench_result r = {.requested_ratio = o->edit_ratio};
  if (o->dense_only && o->sparse_only) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "--sparse-only cannot be combined with --dense-only");
    return FALSE;
  }
  if (o->sdedit_steps > 0 && g_strcmp0(o->model, "ddpm")) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "--sdedit needs --model ddpm");
    return FALSE;
  }
  if (!sige_device_from_option("--device", o->device_name, &o->device, error)) return FALSE;
  g_autofree char *device_info = NULL;
  { /* resolve auto once, so that every timing below runs on the same device */
    g_autoptr(sige_ctx) probe = sige_ctx_new_device(o->threads, o->device, error);
    if (!probe) return FALSE;
    o->device = sige_ctx_device(probe);
    r.device_info = device_info = g_strdup(sige_ctx_device_info(probe));
  }
  if (!g_strcmp0(o->model, "sd")) { /* bench_sd.c */
    if (o->sdedit_steps > 0 || o->mask || o->save_mask || o->save_weights ||
        o->save_io || o->dense_only) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  "--model sd takes --edit-ratio, --runs, --warmup, --threads, --seed, --json, "
                  "--device, --conv, --fp16-caches, --sparse-only, --layers, --sd-tiny and --sd-part only");
      return FALSE;
    }
    const sige_bench_sd_opts so = {.edit_ratio = o->edit_ratio, .runs = o->runs,
                                   .warmup = o->warmup, .threads = o->threads, .seed = o->seed,
                                   .json = o->json, .tiny = o->sd_tiny, .fp16 = o->fp16,
                                   .set_conv = o->conv_name != NULL,
                                   .conv_policy = o->conv_policy, .device = o->device,
                                   .sparse_only = o->sparse_only, .layers = o->layers,
                                   .skip_unet = !g_strcmp0(o->sd_part, "decoder"),
                                   .skip_decoder = !g_strcmp0(o->sd_part, "unet")};
    if (o->sd_part && !so.skip_unet && !so.skip_decoder) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  "--sd-part must be 'unet' or 'decoder' (got '%s')", o->sd_part);
      return FALSE;
    }
    return sige_bench_sd(&so, error);
  }
  if (o->sd_tiny || o->sd_part) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "--sd-tiny and --sd-part need --model sd");
    return FALSE;
  }
  g_autoptr(sige_model) m = build_model(o->model, (uint64_t)o->seed, o->save_weights, error);
  if (!m) return FALSE;
  int64_t shape[4];
  sige_model_input_shape(m, shape);
  const int h = (int)shape[2], w = (int)shape[3];
  g_autofree guint8 *mask = NULL;
  if (o->mask) {
    if (!(mask = sige_mask_load_png(o->mask, h, w, error))) return FALSE;
    size_t n = 0;
    for (size_t i = 0; i < (size_t)h * w; i++) n += mask[i];
    r.stroke_ratio = (double)n / ((double)h * w);
  } else if (!(mask = sige_stroke_mask(h, w, o->edit_ratio, (uint64_t)o->seed, &r.stroke_ratio,
                                       error))) {
    return FALSE;
  }
  if (o->save_mask && !sige_mask_save_png(o->save_mask, mask, h, w, error)) return FALSE;
  g_autoptr(sige_tensor) orig = NULL;
  g_autoptr(sige_tensor) edited = NULL;
  if (!make_inputs(m, mask, (uint64_t)o->seed, &orig, &edited, error)) return FALSE;
  /* DDPM: timestep 500; PD: log-SNR 0 (the middle of its schedule) */
  const float t = sige_model_get_kind(m) == SIGE_MODEL_DDPM_UNET ? 500.0f : 0.0f;
  if (!o->sparse_only && !time_dense(m, o, orig, t, &r, error)) return FALSE;
  r.rss_dense_mb = bench_peak_rss_mb();
  sige_tensor *sparse_out = NULL; /* --save-io: owned by save_io's file once written */
  if (!o->dense_only &&
      !time_sparse(m, o, orig, edited, t, &r, o->save_io ? &sparse_out : NULL, error))
    return FALSE;
  if (o->sdedit_steps > 0 && !time_sdedit(m, o, orig, edited, &r, error)) {
    sige_tensor_free(sparse_out);
    return FALSE;
  }
  r.rss_peak_mb = bench_peak_rss_mb();
  /* after the peak is read: the extra dense pass is not part of the figures */
  if (o->save_io && !save_io(m, o, orig, t, edited, sparse_out, error)) return FALSE;
  report(o, &r);
  if (r.full_groups) g_array_free(r.full_groups, TRUE);
  if (r.sparse_groups) g_array_free(r.sparse_groups, TRUE);
  return TRUE;
}

static gboolean parse_conv(bench_opts *o, GError **error) {
  static const char *const names[] = {"auto", "im2col", "wino4", "wino2"};
  if (!o->conv_name) return TRUE;
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
    if (!strcmp(o->conv_name, names[i])) {
      o->conv_policy = (sige_conv_policy)i;
      return TRUE;
    }
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              "--conv must be 'auto', 'im2col', 'wino4' or 'wino2' (got '%s')", o->conv_name);
  return FALSE;
}

int sige_cmd_bench(int argc, char **argv) {
  bench_opts o = {.edit_ratio = 0.012, .runs = 5, .warmup = 1, .threads = 0, .seed = 0};
  GOptionEntry entries[] = {
      {"model", 0, 0, G_OPTION_ARG_STRING, &o.model,
       "ddpm, pd, gaugan, gancomp or sd (Stable Diffusion 1.5: UNet step and VAE decoder)",
       "NAME"},
      {"sd-tiny", 0, 0, G_OPTION_ARG_NONE, &o.sd_tiny,
       "--model sd at a test size (128 x 128, narrow layers)", NULL},
      {"sd-part", 0, 0, G_OPTION_ARG_STRING, &o.sd_part,
       "--model sd: time only this part, unet or decoder (default both)", "PART"},
      {"edit-ratio", 0, 0, G_OPTION_ARG_DOUBLE, &o.edit_ratio,
       "fraction of the image the stroke mask covers (default 0.012)", "R"},
      {"runs", 0, 0, G_OPTION_ARG_INT, &o.runs, "timed runs (default 5)", "N"},
      {"warmup", 0, 0, G_OPTION_ARG_INT, &o.warmup, "untimed runs first (default 1)", "W"},
      {"threads", 0, 0, G_OPTION_ARG_INT, &o.threads, "threads (default: SIGE_NUM_THREADS or all)",
       "T"},
      {"seed", 0, 0, G_OPTION_ARG_INT64, &o.seed, "seed of weights, inputs and mask", "S"},
      {"save-mask", 0, 0, G_OPTION_ARG_FILENAME, &o.save_mask, "write the mask as a PNG", "FILE"},
      {"mask", 0, 0, G_OPTION_ARG_FILENAME, &o.mask, "use this PNG mask (white = edited)", "FILE"},
      {"save-weights", 0, 0, G_OPTION_ARG_FILENAME, &o.save_weights,
       "write the random weights as safetensors (F32)", "FILE"},
      {"save-io", 0, 0, G_OPTION_ARG_FILENAME, &o.save_io,
       "write input, timestep and one dense output as safetensors (with a sparse run also "
       "the edited input and its sparse output)", "FILE"},
      {"json", 0, 0, G_OPTION_ARG_NONE, &o.json, "print one JSON object", NULL},
      {"dense-only", 0, 0, G_OPTION_ARG_NONE, &o.dense_only, "time the dense forward only", NULL},
      {"sparse-only", 0, 0, G_OPTION_ARG_NONE, &o.sparse_only,
       "skip the dense timing (for profiling the sparse pass alone)", NULL},
      {"sgemm", 0, 0, G_OPTION_ARG_NONE, &o.sgemm, "time cblas_sgemm alone on conv shapes (CPU)", NULL},
      {"device", 'd', 0, G_OPTION_ARG_STRING, &o.device_name, SIGE_CLI_DEVICE_HELP, "DEVICE"},
      {"fp16-caches", 0, 0, G_OPTION_ARG_NONE, &o.fp16, "sessions keep fp16 caches", NULL},
      {"layers", 0, 0, G_OPTION_ARG_NONE, &o.layers,
       "per layer group: time and MACs of the snapshot's full pass and of the sparse pass", NULL},
      {"conv", 0, 0, G_OPTION_ARG_STRING, &o.conv_name,
       "CPU 3x3 convolutions: auto (default: Winograd where the measured rule picks it), "
       "im2col, wino4 or wino2", "ALGO"},
      {"follow-free-cpus", 0, 0, G_OPTION_ARG_NONE, &o.follow_free,
       "before each pass, use only the free CPUs (at most --threads), as the front-ends do", NULL},
      {"conv-sweep", 0, 0, G_OPTION_ARG_NONE, &o.conv_sweep,
       "time 3x3 convs with im2col, Winograd F(4x4) and F(2x2) over channels and sizes, then "
       "the sparse chain (gather, conv, scatter) unfused and fused", NULL},
      {"chain-only", 0, 0, G_OPTION_ARG_NONE, &o.chain_only,
       "with --conv-sweep: only the sparse chain", NULL},
      {"sdedit", 0, 0, G_OPTION_ARG_INT, &o.sdedit_steps,
       "DDPM: also time a whole N-step SDEdit edit dense vs sparse", "N"},
      {NULL, 0, 0, 0, NULL, NULL, NULL}};
  g_autoptr(GOptionContext) oc = g_option_context_new("- time dense vs sparse passes");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  int rc = 0;
  if (!g_option_context_parse(oc, &argc, &argv, &error)) {
    rc = sige_cli_fail(error);
  } else if (o.runs < 1 || o.warmup < 0) {
    rc = sige_cli_fail(
        g_error_new(SIGE_ERROR, SIGE_ERROR_INVALID, "--runs must be >= 1, --warmup >= 0"));
  } else if (!parse_conv(&o, &error)) {
    rc = sige_cli_fail(error);
  } else if (o.sgemm) {
    rc = bench_sgemm(&o);
  } else if (o.conv_sweep) {
    rc = bench_conv_sweep(&o);
  } else if (!o.model) {
    rc = sige_cli_fail(
        g_error_new(SIGE_ERROR, SIGE_ERROR_INVALID, "--model ddpm|pd|gaugan|gancomp|sd is required"));
  } else if (!run_bench(&o, &error)) {
    rc = sige_cli_fail(error);
  }
  g_free(o.model);
  g_free(o.save_mask);
  g_free(o.mask);
  g_free(o.save_weights);
  g_free(o.save_io);
  g_free(o.device_name);
  g_free(o.sd_part);
  g_free(o.conv_name);
  return rc;
}
