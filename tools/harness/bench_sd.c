/* sige bench --model sd: one Stable Diffusion 1.5 UNet step and the VAE
 * decoder, dense vs sparse, with seeded random weights (no checkpoint).
 *
 * The masks follow the published sdedit runner as the SD pipeline builds
 * them: a stroke mask in image space (8 x the latent) stands for the raw
 * image difference; the UNet's mask is it dilated by its mask_dilate_radius,
 * the decoder's that dilated again by decoder_extra_dilate.  The session
 * does not drive the SD parts (the UNet needs a context), so each sparse
 * run is a recording pass on the original then a sparse pass on the edit
 * (sige_model_forward_sparse_once_stats), and only the sparse pass is
 * reported as "sparse"; the recording pass is shown beside it. */
#include "bench_sd.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_report.h"
#include "random_weights.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/rng.h"
#include "stroke_mask.h"

typedef struct {
  const char *name;
  double dense_ms, record_ms, sparse_ms;
  double dense_cpu_ms, record_cpu_ms, sparse_cpu_ms; /* process CPU time, all threads */
  uint64_t dense_macs, sparse_macs;
  double mask_ratio; /* of the image-space mask this part runs with */
  double rss_mb;     /* peak RSS after this part */
  double kept_mb, keep_limit_mb; /* Winograd weights kept on this part's context, its limit */
  GArray *full_groups, *sparse_groups; /* of sige_layer_stats (--layers), last run */
  char **group_names; /* NULL-terminated, or NULL (the UNet's are not named) */
} part_result;

static void part_result_clear(part_result *r) {
  if (r->full_groups) g_array_unref(r->full_groups);
  if (r->sparse_groups) g_array_unref(r->sparse_groups);
  g_strfreev(r->group_names);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(part_result, part_result_clear)

/* The decoder's layer groups in forward order (sd_vae.c's vae_forward). */
static char **decoder_group_names(const sige_sd_vae_config *c) {
  GPtrArray *a = g_ptr_array_new();
  g_ptr_array_add(a, g_strdup("post_quant_conv+conv_in"));
  g_ptr_array_add(a, g_strdup("mid.block_1"));
  g_ptr_array_add(a, g_strdup("mid.attn_1"));
  g_ptr_array_add(a, g_strdup("mid.block_2"));
  for (int i = c->n_ch_mult - 1; i >= 0; i--) {
    for (int j = 0; j < c->num_res_blocks + 1; j++)
      g_ptr_array_add(a, g_strdup_printf("up.%d.block.%d", i, j));
    if (i) g_ptr_array_add(a, g_strdup_printf("up.%d.upsample", i));
  }
  g_ptr_array_add(a, g_strdup("norm_out+conv_out"));
  g_ptr_array_add(a, NULL);
  return (char **)g_ptr_array_free(a, FALSE);
}


/* SD 1.5 (v1-inference.yaml) or, with --sd-tiny, the same layout small
 * enough for a test: two levels of one block, width 32, 2 heads, a
 * 64-wide context, a 16 x 16 latent (128 x 128 image). */
static void unet_config(sige_sd_unet_config *c, gboolean tiny) {
  sige_sd_unet_config_init(c);
  if (!tiny) return;
  c->model_channels = 32;
  c->channel_mult[0] = 1;
  c->channel_mult[1] = 2;
  c->n_channel_mult = 2;
  c->num_res_blocks = 1;
  c->attention_resolutions[0] = 1;
  c->attention_resolutions[1] = 2;
  c->n_attention_resolutions = 2;
  c->num_heads = 2;
  c->context_dim = 64;
  c->latent_h = c->latent_w = 16;
}

static void decoder_config(sige_sd_vae_config *c, gboolean tiny) {
  sige_sd_vae_config_init(c, SIGE_MODEL_SD_VAE_DECODER);
  if (!tiny) return;
  c->ch = 32;
  const int mult[] = {1, 2, 2, 2};
  memcpy(c->ch_mult, mult, sizeof mult);
  c->num_res_blocks = 1;
  c->image_h = c->image_w = 128;
  /* the published 40 is for 512 x 512 pictures: scaled with the image, so
   * that a small edit does not cover the whole tiny picture */
  c->decoder_extra_dilate = 10;
}

static sige_tensor *random_tensor(int64_t n, int64_t c, int64_t h, int64_t w, sige_rng *rng,
                                  GError **error) {
  sige_tensor *t = sige_tensor_new4(n, c, h, w, error);
  if (t)
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (float)sige_rng_normal(rng);
  return t;
}

/* The edited latent: new values at every latent pixel whose f x f image
 * block the stroke touches (f: image size / latent size). */
static sige_tensor *edit_latent(const sige_tensor *x, const guint8 *stroke, int ih, int iw,
                                sige_rng *rng, GError **error) {
  sige_tensor *e = sige_tensor_dup(x, error);
  if (!e) return NULL;
  const int c = (int)x->shape[1], h = (int)x->shape[2], w = (int)x->shape[3];
  const int fy = ih / h, fx = iw / w;
  for (int y = 0; y < h; y++)
    for (int xx = 0; xx < w; xx++) {
      gboolean hit = FALSE;
      for (int dy = 0; dy < fy && !hit; dy++)
        for (int dx = 0; dx < fx && !hit; dx++)
          hit = stroke[(size_t)(y * fy + dy) * iw + xx * fx + dx] != 0;
      if (hit)
        for (int k = 0; k < c; k++) e->data[((size_t)k * h + y) * w + xx] = (float)sige_rng_normal(rng);
    }
  return e;
}

static double now_ms(void) {
  return (double)g_get_monotonic_time() / 1000.0;
}

/* Process CPU time: with other load on the machine the wall times swing,
 * the work done much less (spin-waiting threads count, see
 * docs/PERFORMANCE.md; OMP_WAIT_POLICY=passive keeps them out). */
static double cpu_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0.0;
  return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static gboolean time_part(const sige_model *m, const sige_bench_sd_opts *o,
                          const sige_tensor *orig, const sige_tensor *edited, float t,
                          const sige_tensor *cond, const sige_mask *mask, part_result *r,
                          int *threads, GError **error) {
  g_autoptr(sige_ctx) ctx = sige_ctx_new_device(o->threads, o->device, error);
  if (!ctx) return FALSE;
  *threads = sige_ctx_threads(ctx);
  if (o->set_conv) sige_ctx_set_conv_policy(ctx, o->conv_policy);
  g_autofree double *dense = g_new(double, o->runs);
  g_autofree double *rec = g_new(double, o->runs);
  g_autofree double *sparse = g_new(double, o->runs);
  g_autofree double *dense_cpu = g_new(double, o->runs);
  g_autofree double *rec_cpu = g_new(double, o->runs);
  g_autofree double *sparse_cpu = g_new(double, o->runs);
  for (int i = -o->warmup; i < o->runs && !o->sparse_only; i++) {
    sige_ctx_reset_macs(ctx);
    g_autoptr(sige_tensor) out = NULL;
    const double t0 = now_ms(), c0 = cpu_ms();
    if (!sige_model_forward_dense_cond(m, ctx, orig, t, cond, &out, error)) return FALSE;
    const double dt = now_ms() - t0;
    if (i >= 0) dense_cpu[i] = cpu_ms() - c0;
    r->dense_macs = sige_ctx_macs(ctx);
    if (i >= 0) dense[i] = dt;
  }
  for (int i = -o->warmup; i < o->runs; i++) {
    sige_session_stats st[2];
    g_autoptr(sige_tensor) out = NULL;
    const gboolean last = o->layers && i == o->runs - 1;
    if (last) {
      r->full_groups = g_array_new(FALSE, TRUE, sizeof(sige_layer_stats));
      r->sparse_groups = g_array_new(FALSE, TRUE, sizeof(sige_layer_stats));
    }
    if (!sige_model_forward_sparse_once_profile(m, ctx, orig, edited, t, cond, mask, o->fp16,
                                                NULL, &out, st, last ? r->full_groups : NULL,
                                                last ? r->sparse_groups : NULL, error))
      return FALSE;
    if (o->sparse_only) r->dense_macs = st[0].macs;
    if (st[0].macs != r->dense_macs)
      g_warning("%s: recording pass %" G_GUINT64_FORMAT " MACs, dense %" G_GUINT64_FORMAT,
                r->name, st[0].macs, r->dense_macs);
    r->sparse_macs = st[1].macs;
    if (i >= 0) {
      rec[i] = st[0].seconds * 1e3;
      sparse[i] = st[1].seconds * 1e3;
      rec_cpu[i] = st[0].cpu_seconds * 1e3;
      sparse_cpu[i] = st[1].cpu_seconds * 1e3;
    }
  }
  r->dense_ms = o->sparse_only ? 0 : sige_bench_median(dense, o->runs);
  r->record_ms = sige_bench_median(rec, o->runs);
  r->sparse_ms = sige_bench_median(sparse, o->runs);
  r->dense_cpu_ms = o->sparse_only ? 0 : sige_bench_median(dense_cpu, o->runs);
  r->record_cpu_ms = sige_bench_median(rec_cpu, o->runs);
  r->sparse_cpu_ms = sige_bench_median(sparse_cpu, o->runs);
  r->mask_ratio = (double)sige_mask_count(mask) / ((double)mask->h * mask->w);
  r->rss_mb = bench_peak_rss_mb();
  r->kept_mb = sige_ctx_prepared_bytes(ctx) / 1048576.0;
  r->keep_limit_mb = sige_ctx_winograd_keep_bytes(ctx) / 1048576.0;
  return TRUE;
}

/* The stroke dilated by `dilate`, then by `extra` (two crosses, as the
 * SD pipeline builds the decoder's mask: not one cross of the sum). */
static sige_mask *mask_of(const guint8 *m, int h, int w, int dilate, int extra) {
  g_autoptr(sige_mask) raw = sige_mask_new(h, w);
  for (size_t i = 0; i < (size_t)h * w; i++) raw->data[i] = m[i] != 0;
  g_autoptr(sige_mask) d = sige_mask_cross_dilate(raw, dilate);
  return sige_mask_cross_dilate(d, extra);
}

static gboolean run_unet(const sige_bench_sd_opts *o, const guint8 *stroke, int ih, int iw,
                         part_result *r, int *threads, GError **error) {
  sige_sd_unet_config cfg;
  unet_config(&cfg, o->tiny);
  g_autoptr(sige_model) m = NULL;
  {
    g_autoptr(sige_weights) w =
        sige_random_model_weights(SIGE_MODEL_SD_UNET, &cfg, (uint64_t)o->seed, error);
    if (!w || !(m = sige_model_new_sd_unet(&cfg, w, error))) return FALSE;
  } /* the table is copied into the model: free it before the timings */
  sige_rng rng;
  sige_rng_init(&rng, (uint64_t)o->seed ^ 0x5du);
  g_autoptr(sige_tensor) x = random_tensor(1, cfg.in_channels, cfg.latent_h, cfg.latent_w, &rng, error);
  const int64_t cshape[3] = {1, 77, cfg.context_dim}; /* a prompt's 77 tokens */
  g_autoptr(sige_tensor) cond = x ? sige_tensor_new(3, cshape, error) : NULL;
  if (!cond) return FALSE;
  for (size_t i = 0; i < cond->numel; i++) cond->data[i] = (float)sige_rng_normal(&rng);
  g_autoptr(sige_tensor) e = edit_latent(x, stroke, ih, iw, &rng, error);
  if (!e) return FALSE;
  g_autoptr(sige_mask) mask = mask_of(stroke, ih, iw, cfg.sparse.mask_dilate_radius, 0);
  r->name = "unet";
  /* timestep 500: the middle of the schedule (the cost does not depend on it) */
  return time_part(m, o, x, e, 500.0f, cond, mask, r, threads, error);
}

static gboolean run_decoder(const sige_bench_sd_opts *o, const guint8 *stroke, int ih, int iw,
                            part_result *r, int *threads, GError **error) {
  sige_sd_vae_config cfg;
  decoder_config(&cfg, o->tiny);
  g_autoptr(sige_model) m = NULL;
  {
    g_autoptr(sige_weights) w =
        sige_random_model_weights(SIGE_MODEL_SD_VAE_DECODER, &cfg, (uint64_t)o->seed, error);
    if (!w || !(m = sige_model_new_sd_vae(SIGE_MODEL_SD_VAE_DECODER, &cfg, w, error)))
      return FALSE;
  }
  int64_t shape[4];
  sige_model_input_shape(m, shape);
  sige_rng rng;
  sige_rng_init(&rng, (uint64_t)o->seed ^ 0xdecu);
  g_autoptr(sige_tensor) z = random_tensor(1, shape[1], shape[2], shape[3], &rng, error);
  g_autoptr(sige_tensor) e = z ? edit_latent(z, stroke, ih, iw, &rng, error) : NULL;
  if (!e) return FALSE;
  g_autoptr(sige_mask) mask =
      mask_of(stroke, ih, iw, cfg.sparse.mask_dilate_radius, cfg.decoder_extra_dilate);
  r->name = "decoder";
  r->group_names = decoder_group_names(&cfg);
  return time_part(m, o, z, e, 0.0f, NULL, mask, r, threads, error);
}

static void add_part(JsonBuilder *jb, const part_result *r) {
  json_builder_set_member_name(jb, r->name);
  json_builder_begin_object(jb);
  bench_json_num(jb, "dense_ms", r->dense_ms);
  bench_json_num(jb, "record_ms", r->record_ms);
  bench_json_num(jb, "sparse_ms", r->sparse_ms);
  bench_json_num(jb, "dense_cpu_ms", r->dense_cpu_ms);
  bench_json_num(jb, "record_cpu_ms", r->record_cpu_ms);
  bench_json_num(jb, "sparse_cpu_ms", r->sparse_cpu_ms);
  json_builder_set_member_name(jb, "dense_macs");
  json_builder_add_int_value(jb, (gint64)r->dense_macs);
  json_builder_set_member_name(jb, "sparse_macs");
  json_builder_add_int_value(jb, (gint64)r->sparse_macs);
  bench_json_num(jb, "dense_gmacs", r->dense_macs / 1e9);
  bench_json_num(jb, "sparse_gmacs", r->sparse_macs / 1e9);
  bench_json_num(jb, "mac_ratio", (double)r->dense_macs / (double)r->sparse_macs);
  if (r->dense_ms > 0) bench_json_num(jb, "speedup", r->dense_ms / r->sparse_ms); /* --sparse-only: none */
  bench_json_num(jb, "mask_ratio", r->mask_ratio);
  bench_json_num(jb, "peak_rss_mb", r->rss_mb);
  bench_json_num(jb, "winograd_kept_mib", r->kept_mb);
  bench_json_num(jb, "winograd_keep_limit_mib", r->keep_limit_mb);
  if (r->sparse_groups) {
    json_builder_set_member_name(jb, "layers");
    json_builder_begin_array(jb);
    const guint n = MIN(r->full_groups->len, r->sparse_groups->len);
    const guint names = r->group_names ? g_strv_length(r->group_names) : 0;
    for (guint g = 0; g < n; g++) {
      const sige_layer_stats *f = &g_array_index(r->full_groups, sige_layer_stats, g);
      const sige_layer_stats *sp = &g_array_index(r->sparse_groups, sige_layer_stats, g);
      json_builder_begin_object(jb);
      json_builder_set_member_name(jb, "group");
      json_builder_add_int_value(jb, sp->group);
      if (g < names) {
        json_builder_set_member_name(jb, "name");
        json_builder_add_string_value(jb, r->group_names[g]);
      }
      json_builder_set_member_name(jb, "sparse");
      json_builder_add_boolean_value(jb, sp->sparse);
      bench_json_num(jb, "record_ms", f->seconds * 1e3);
      bench_json_num(jb, "sparse_ms", sp->seconds * 1e3);
      bench_json_num(jb, "dense_gmacs", f->macs / 1e9);
      bench_json_num(jb, "sparse_gmacs", sp->macs / 1e9);
      json_builder_end_object(jb);
    }
    json_builder_end_array(jb);
  }
  json_builder_end_object(jb);
}

/* --layers: the recording pass (dense work, with the caches' writes) vs the
 * sparse pass, group by group, so that a group slower than its MAC ratio
 * stands out; the sparse groups do not sum to the sparse time (the mask
 * pyramid is built before the first group). */
static void print_groups(const part_result *r) {
  if (!r->sparse_groups) return;
  printf("%-8s %3s %-24s %-6s %10s %10s %10s %10s %9s %9s\n", r->name, "grp", "name", "mode",
         "record ms", "sparse ms", "GMACs", "sp GMACs", "MAC ratio", "speedup");
  const guint n = MIN(r->full_groups->len, r->sparse_groups->len);
  const guint names = r->group_names ? g_strv_length(r->group_names) : 0;
  for (guint g = 0; g < n; g++) {
    const sige_layer_stats *f = &g_array_index(r->full_groups, sige_layer_stats, g);
    const sige_layer_stats *sp = &g_array_index(r->sparse_groups, sige_layer_stats, g);
    printf("%-8s %3d %-24s %-6s %10.1f %10.1f %10.3f %10.3f %8.2fx %8.2fx\n", r->name, sp->group,
           g < names ? r->group_names[g] : "-", sp->sparse ? "sparse" : "dense", f->seconds * 1e3,
           sp->seconds * 1e3, f->macs / 1e9, sp->macs / 1e9,
           sp->macs ? (double)f->macs / sp->macs : 0.0,
           sp->seconds > 0 ? f->seconds / sp->seconds : 0.0);
  }
}

static void print_part(const part_result *r) {
  const double mr = (double)r->dense_macs / (double)r->sparse_macs;
  printf("%-8s %-7s %12.1f %12.4f %12.1f\n", r->name, "dense", r->dense_ms, r->dense_macs / 1e9,
         r->dense_cpu_ms);
  printf("%-8s %-7s %12.1f %12.4f %12.1f\n", r->name, "record", r->record_ms, r->dense_macs / 1e9,
         r->record_cpu_ms);
  printf("%-8s %-7s %12.1f %12.4f %12.1f\n", r->name, "sparse", r->sparse_ms, r->sparse_macs / 1e9,
         r->sparse_cpu_ms);
  printf("%-8s Winograd weights kept: %.0f of %.0f MiB (each part has its own context)\n",
         r->name, r->kept_mb, r->keep_limit_mb);
  if (r->dense_ms <= 0) { /* --sparse-only */
    printf("%-8s mask %.2f%%, MAC ratio %.2fx (dense not timed), peak RSS %.0f MB\n", r->name,
           100 * r->mask_ratio, mr, r->rss_mb);
    return;
  }
  printf("%-8s mask %.2f%%, MAC ratio %.2fx, speedup %.2fx (%.0f%% of the MAC ratio), "
         "peak RSS %.0f MB\n",
         r->name, 100 * r->mask_ratio, mr, r->dense_ms / r->sparse_ms,
         100.0 * (r->dense_ms / r->sparse_ms) / mr, r->rss_mb);
}

gboolean sige_bench_sd(const sige_bench_sd_opts *o, GError **error) {
  sige_sd_unet_config uc;
  sige_sd_vae_config dc;
  unet_config(&uc, o->tiny);
  decoder_config(&dc, o->tiny);
  /* SD's masks live in image space: the decoder's output size */
  const int ih = dc.image_h, iw = dc.image_w;
  if (ih % uc.latent_h || iw % uc.latent_w) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "bench sd: image %dx%d is not a multiple of the UNet latent %dx%d", ih, iw,
                uc.latent_h, uc.latent_w);
    return FALSE;
  }
  double stroke_ratio = 0;
  g_autofree guint8 *stroke =
      sige_stroke_mask(ih, iw, o->edit_ratio, (uint64_t)o->seed, &stroke_ratio, error);
  if (!stroke) return FALSE;
  g_auto(part_result) unet = {0}, dec = {0};
  int threads = 0;
  if ((!o->skip_unet && !run_unet(o, stroke, ih, iw, &unet, &threads, error)) ||
      (!o->skip_decoder && !run_decoder(o, stroke, ih, iw, &dec, &threads, error)))
    return FALSE;
  g_autofree char *cpu = bench_cpu_model();
  const char *arch = o->tiny ? "tiny SD layout (test size)" : "Stable Diffusion 1.5";
  if (o->json) {
    g_autoptr(JsonBuilder) jb = json_builder_new();
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "model");
    json_builder_add_string_value(jb, o->tiny ? "sd-tiny" : "sd");
    json_builder_set_member_name(jb, "threads");
    json_builder_add_int_value(jb, threads);
    json_builder_set_member_name(jb, "runs");
    json_builder_add_int_value(jb, o->runs);
    json_builder_set_member_name(jb, "image");
    json_builder_add_int_value(jb, ih);
    json_builder_set_member_name(jb, "latent");
    json_builder_add_int_value(jb, uc.latent_h);
    bench_json_num(jb, "requested_ratio", o->edit_ratio);
    bench_json_num(jb, "stroke_ratio", stroke_ratio);
    if (!o->skip_unet) add_part(jb, &unet);
    if (!o->skip_decoder) add_part(jb, &dec);
    bench_json_num(jb, "peak_rss_mb", bench_peak_rss_mb());
    json_builder_set_member_name(jb, "fp16_caches");
    json_builder_add_boolean_value(jb, o->fp16);
    json_builder_set_member_name(jb, "cpu");
    json_builder_add_string_value(jb, cpu);
    bench_json_print(jb);
    return TRUE;
  }
  printf("model sd: %s, random weights (seed %" G_GINT64_FORMAT "), %d thread(s), median of %d "
         "run(s) after %d warm-up(s)\ncpu %s\n",
         arch, o->seed, threads, o->runs, o->warmup, cpu);
  printf("image %d x %d, latent %d x %d, context [1, 77, %d]; edit: requested %.2f%%, "
         "stroke %.2f%%\n\n",
         ih, iw, uc.latent_h, uc.latent_w, uc.context_dim, 100 * o->edit_ratio,
         100 * stroke_ratio);
  printf("%-8s %-7s %12s %12s %12s\n", "part", "pass", "median ms", "GMACs", "CPU ms");
  if (!o->skip_unet) print_part(&unet);
  if (!o->skip_decoder) print_part(&dec);
  if (o->layers) {
    printf("\nper layer group (last run): the recording pass vs the sparse pass\n");
    print_groups(&unet);
    print_groups(&dec);
  }
  printf("\nrecord: the full pass that keeps the caches the sparse pass reads\n");
  printf("peak RSS %.0f MB\n", bench_peak_rss_mb());
  return TRUE;
}
