/* Public model API: construction, recognition of a checkpoint, dispatch
 * through the model class. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../buffer.h"
#include "model_internal.h"
#include "param_list.h"
#include "sige/error.h"
#include "sige/sd_checkpoint.h"

/* In recognition order: a GAN-Compression checkpoint is also a SPADE one by
 * its keys, and a PD UNet also a DDPM one.  A whole SD 1.x file holds the
 * UNet, the text encoder and the VAE: loading it as one model gives the
 * UNet (sige_model_load_parts gives every part). */
static const sige_model_class *const classes[] = {&sige_gancomp_class, &sige_spade_class,
                                                  &sige_pd_class, &sige_ddpm_class,
                                                  &sige_sd_unet_class, &sige_clip_text_class,
                                                  &sige_sd_vae_encoder_class,
                                                  &sige_sd_vae_decoder_class};

static const sige_model_class *class_of(sige_model_kind k) {
  for (size_t i = 0; i < G_N_ELEMENTS(classes); i++)
    if (classes[i]->kind == k) return classes[i];
  return NULL;
}

/* Settings that would give wrong results rather than an error later (a
 * block smaller than the 3x3 kernel it feeds, a negative dilation, a NaN
 * threshold) are refused here, whether they come from a case.json, a
 * front-end or a program using the API. */
static gboolean check_sparse_config(const char *model, const sige_sparse_config *c,
                                    GError **error) {
  const char *field = NULL;
  char expected[64];
  if (c->block_size < 3)
    field = "block_size", g_strlcpy(expected, "at least 3 (the 3x3 kernel)", sizeof expected);
  else if (c->shortcut_block_size < 1)
    field = "shortcut_block_size", g_strlcpy(expected, "at least 1", sizeof expected);
  else if (!(c->diff_eps >= 0 && c->diff_eps < G_MAXFLOAT))
    field = "diff_eps", g_strlcpy(expected, "a finite number >= 0", sizeof expected);
  else if (c->mask_dilate_radius < 0)
    field = "mask_dilate_radius", g_strlcpy(expected, ">= 0", sizeof expected);
  else if (c->pyramid_dilation < 0)
    field = "pyramid_dilation", g_strlcpy(expected, ">= 0", sizeof expected);
  else if (!(c->pyramid_threshold >= 0 && c->pyramid_threshold <= 1))
    field = "pyramid_threshold", g_strlcpy(expected, "a number from 0 to 1", sizeof expected);
  else if (c->pyramid_min_h < 0 || c->pyramid_min_w < 0)
    field = "pyramid_min_h/w", g_strlcpy(expected, ">= 0 (0: the model's lowest level)", sizeof expected);
  if (!field) return TRUE;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              "%s: sparse setting %s is out of range (block_size %d, shortcut_block_size %d, "
              "diff_eps %g, mask_dilate_radius %d, pyramid_dilation %d, pyramid_threshold %g, "
              "pyramid_min %d x %d); expected %s",
              model, field, c->block_size, c->shortcut_block_size, (double)c->diff_eps,
              c->mask_dilate_radius, c->pyramid_dilation, (double)c->pyramid_threshold,
              c->pyramid_min_h, c->pyramid_min_w, expected);
  return FALSE;
}

static sige_model *model_new(const sige_model_class *cls, const void *cfg, const sige_weights *w,
                             GError **error) {
  if (!check_sparse_config(cls->name,
                           (const sige_sparse_config *)((const char *)cfg + cls->sparse_offset),
                           error))
    return NULL;
  g_autoptr(sige_param_list) l = sige_param_list_new();
  void *impl = cls->declare(cfg, l, error);
  if (!impl) return NULL;
  size_t bytes = 0;
  if (!sige_param_list_load(l, w, &bytes, error) || (cls->finish && !cls->finish(impl, error))) {
    cls->free(impl);
    return NULL;
  }
  sige_model *m = g_new0(sige_model, 1);
  m->cls = cls;
  m->cfg = g_memdup2(cfg, cls->config_size);
  m->impl = impl;
  m->weight_bytes = bytes;
  return m;
}

size_t sige_model_weight_bytes(const sige_model *m) { return m ? m->weight_bytes : 0; }

sige_model *sige_model_new_spade(const sige_spade_config *cfg, const sige_weights *w,
                                 GError **error) {
  return model_new(&sige_spade_class, cfg, w, error);
}
sige_model *sige_model_new_ddpm(const sige_ddpm_config *cfg, const sige_weights *w,
                                GError **error) {
  return model_new(&sige_ddpm_class, cfg, w, error);
}
sige_model *sige_model_new_pd(const sige_pd_config *cfg, const sige_weights *w, GError **error) {
  return model_new(&sige_pd_class, cfg, w, error);
}
sige_model *sige_model_new_gancomp(const sige_gancomp_config *cfg, const sige_weights *w,
                                   GError **error) {
  return model_new(&sige_gancomp_class, cfg, w, error);
}

sige_model *sige_model_new_clip_text(const sige_clip_text_config *cfg, const sige_weights *w,
                                     GError **error) {
  return model_new(&sige_clip_text_class, cfg, w, error);
}

sige_model *sige_model_new_sd_unet(const sige_sd_unet_config *cfg, const sige_weights *w,
                                   GError **error) {
  return model_new(&sige_sd_unet_class, cfg, w, error);
}

sige_model *sige_model_new_sd_vae(sige_model_kind part, const sige_sd_vae_config *cfg,
                                  const sige_weights *w, GError **error) {
  if (part != SIGE_MODEL_SD_VAE_ENCODER && part != SIGE_MODEL_SD_VAE_DECODER) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "SD VAE: part %d is neither the encoder nor the decoder", (int)part);
    return NULL;
  }
  return model_new(class_of(part), cfg, w, error);
}

void sige_model_free(sige_model *m) {
  if (!m) return;
  m->cls->free(m->impl);
  g_free(m->cfg);
  g_free(m);
}

sige_model_kind sige_model_get_kind(const sige_model *m) { return m->cls->kind; }

const char *sige_model_kind_name(sige_model_kind k) {
  const sige_model_class *c = class_of(k);
  return c ? c->name : "unknown";
}

const sige_spade_config *sige_model_spade_config(const sige_model *m) {
  if (m->cls == &sige_gancomp_class) return &((const sige_gancomp_config *)m->cfg)->base;
  return m->cls == &sige_spade_class ? m->cfg : NULL;
}
const sige_gancomp_config *sige_model_gancomp_config(const sige_model *m) {
  return m->cls == &sige_gancomp_class ? m->cfg : NULL;
}
const sige_ddpm_config *sige_model_ddpm_config(const sige_model *m) {
  return m->cls == &sige_ddpm_class ? m->cfg : NULL;
}
const sige_pd_config *sige_model_pd_config(const sige_model *m) {
  return m->cls == &sige_pd_class ? m->cfg : NULL;
}

const sige_clip_text_config *sige_model_clip_text_config(const sige_model *m) {
  return m->cls == &sige_clip_text_class ? m->cfg : NULL;
}

const sige_sd_unet_config *sige_model_sd_unet_config(const sige_model *m) {
  return m->cls == &sige_sd_unet_class ? m->cfg : NULL;
}

const sige_sd_vae_config *sige_model_sd_vae_config(const sige_model *m) {
  return m->cls == &sige_sd_vae_encoder_class || m->cls == &sige_sd_vae_decoder_class ? m->cfg
                                                                                       : NULL;
}

void sige_model_mask_shape(const sige_model *m, int *h, int *w) {
  if (m->cls->mask_shape) {
    m->cls->mask_shape(m->cfg, h, w);
    return;
  }
  int64_t s[4];
  m->cls->input_shape(m->cfg, s);
  *h = (int)s[2];
  *w = (int)s[3];
}

void sige_model_input_shape(const sige_model *m, int64_t shape[4]) {
  m->cls->input_shape(m->cfg, shape);
}

void sige_model_describe_settings(const sige_model *m, GString *out) { m->cls->describe(m->cfg, out); }

gboolean sige_model_forward_dense(const sige_model *m, sige_ctx *ctx, const sige_tensor *input,
                                  float t, sige_tensor **out, GError **error) {
  sige_pass pass;
  sige_pass_init_dense(&pass, ctx);
  gboolean ok = sige_model_pass(m, &pass, input, t, out, error);
  sige_pass_clear(&pass);
  return ok;
}

gboolean sige_model_forward_dense_cond(const sige_model *m, sige_ctx *ctx,
                                       const sige_tensor *input, float t,
                                       const sige_tensor *cond, sige_tensor **out,
                                       GError **error) {
  sige_pass pass;
  sige_pass_init_dense(&pass, ctx);
  pass.cond = cond;
  gboolean ok = sige_model_pass(m, &pass, input, t, out, error);
  sige_pass_clear(&pass);
  return ok;
}

gboolean sige_model_forward_sparse_once(const sige_model *m, sige_ctx *ctx,
                                        const sige_tensor *orig, const sige_tensor *edited,
                                        float t, const sige_tensor *cond, const sige_mask *mask,
                                        gboolean fp16, sige_tensor **full_out, sige_tensor **out,
                                        GError **error) {
  return sige_model_forward_sparse_once_stats(m, ctx, orig, edited, t, cond, mask, fp16, full_out,
                                              out, NULL, error);
}

static double process_cpu_seconds(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0.0;
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

gboolean sige_model_forward_sparse_once_stats(const sige_model *m, sige_ctx *ctx,
                                              const sige_tensor *orig, const sige_tensor *edited,
                                              float t, const sige_tensor *cond,
                                              const sige_mask *mask, gboolean fp16,
                                              sige_tensor **full_out, sige_tensor **out,
                                              sige_session_stats stats[2], GError **error) {
  return sige_model_forward_sparse_once_profile(m, ctx, orig, edited, t, cond, mask, fp16,
                                                full_out, out, stats, NULL, NULL, error);
}

gboolean sige_model_forward_sparse_once_profile(const sige_model *m, sige_ctx *ctx,
                                                const sige_tensor *orig,
                                                const sige_tensor *edited, float t,
                                                const sige_tensor *cond, const sige_mask *mask,
                                                gboolean fp16, sige_tensor **full_out,
                                                sige_tensor **out, sige_session_stats stats[2],
                                                GArray *full_groups, GArray *sparse_groups,
                                                GError **error) {
  *out = NULL;
  if (full_out) *full_out = NULL;
  if (stats) memset(stats, 0, 2 * sizeof *stats);
  g_autoptr(sige_mask_pyramid) pyr = NULL;
  sige_sparse_params p;
  sige_model_sparse_params(m, &p);
  sige_cache cache;
  sige_cache_init(&cache);
  sige_pass pass;
  sige_pass_init_full(&pass, ctx, &cache);
  pass.fp16 = fp16;
  pass.cond = cond;
  pass.profile = full_groups;
  g_autoptr(sige_tensor) full = NULL;
  const uint64_t macs0 = sige_ctx_macs(ctx);
  gint64 t0 = g_get_monotonic_time();
  double c0 = process_cpu_seconds();
  gboolean ok = sige_model_pass(m, &pass, orig, t, &full, error);
  sige_pass_clear(&pass);
  if (stats) {
    stats[0].seconds = (g_get_monotonic_time() - t0) / 1e6;
    stats[0].cpu_seconds = process_cpu_seconds() - c0;
    stats[0].macs = stats[0].dense_macs = sige_ctx_macs(ctx) - macs0;
  }
  if (ok) {
    /* the pyramid is part of the sparse pass's cost, as in a session */
    const uint64_t macs1 = sige_ctx_macs(ctx);
    t0 = g_get_monotonic_time();
    c0 = process_cpu_seconds();
    pyr = sige_mask_pyramid_new(mask, p.min_h, p.min_w, p.pyramid_dilation, p.pyramid_threshold);
    sige_pass_init_sparse(&pass, ctx, &cache, pyr, NULL);
    pass.fp16 = fp16;
    pass.cond = cond;
    pass.profile = sparse_groups;
    ok = sige_model_pass(m, &pass, edited, t, out, error);
    sige_pass_clear(&pass);
    if (stats) {
      stats[1].seconds = (g_get_monotonic_time() - t0) / 1e6;
      stats[1].cpu_seconds = process_cpu_seconds() - c0;
      stats[1].macs = sige_ctx_macs(ctx) - macs1;
      stats[1].dense_macs = stats[0].macs;
      stats[1].was_sparse = ok;
      stats[1].edit_ratio = (double)sige_mask_count(mask) / ((double)mask->h * mask->w);
    }
  }
  if (ok && full_out) *full_out = g_steal_pointer(&full);
  sige_cache_free_contents(&cache);
  return ok;
}

sige_param_list *sige_model_kind_params(sige_model_kind kind, const void *config,
                                        GError **error) {
  const sige_model_class *cls = class_of(kind);
  if (!cls) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "model kind %d: no such kind", (int)kind);
    return NULL;
  }
  sige_param_list *l = sige_param_list_new();
  void *impl = cls->declare(config, l, error);
  if (!impl) {
    sige_param_list_free(l);
    return NULL;
  }
  cls->free(impl); /* nothing was loaded into it */
  return l;
}

sige_param_list *sige_model_params(const sige_model *m, GError **error) {
  return sige_model_kind_params(m->cls->kind, m->cfg, error);
}

/* ---- helpers of the classes --------------------------------------------- */
int sige_meta_int(const sige_weights *w, const char *key, int def) {
  const char *v = sige_weights_metadata(w, key);
  return v ? atoi(v) : def;
}

sige_indexed_shape sige_shape_of(const sige_weights *w, const char *name) {
  sige_indexed_shape s = {0};
  s.found = sige_weights_shape(w, name, &s.ndim, s.shape);
  return s;
}

void sige_describe_line(GString *out, const char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_string_append_printf(out, "  %-22s", name);
  g_string_append_vprintf(out, fmt, ap);
  g_string_append_c(out, '\n');
  va_end(ap);
}

void sige_describe_ints(GString *out, const char *name, const int *v, int n) {
  g_string_append_printf(out, "  %-22s", name);
  for (int i = 0; i < n; i++) g_string_append_printf(out, "%s%d", i ? ", " : "", v[i]);
  g_string_append_printf(out, "%s\n", n ? "" : "(none)");
}

sige_model *sige_model_new_from_weights_kind(const sige_weights *w, const char *path, int kind,
                                             GError **error) {
  for (size_t i = 0; i < G_N_ELEMENTS(classes); i++) {
    const sige_model_class *cls = classes[i];
    if ((kind >= 0 && (int)cls->kind != kind) || !cls->recognise(w)) continue;
    g_autofree void *cfg = g_malloc0(cls->config_size);
    if (!cls->infer(w, path, cfg, error)) return NULL;
    return model_new(cls, cfg, w, error);
  }
  if (kind >= 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED, "%s: not a %s checkpoint", path,
                sige_model_kind_name((sige_model_kind)kind));
    return NULL;
  }
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
              "%s: unknown model layout (expected a SPADE generator with 'fc.weight' and "
              "'conv_img.weight', a DDPM UNet with 'conv_in.weight' and 'temb.dense.0.weight', a "
              "Stable Diffusion UNet with 'model.diffusion_model.time_embed.0.weight', or a "
              "CLIP text encoder with '[cond_stage_model.transformer.]text_model.embeddings."
              "token_embedding.weight', or a Stable Diffusion VAE with "
              "'[first_stage_model.]encoder.conv_in.weight')",
              path);
  return NULL;
}

sige_model *sige_model_new_from_weights(const sige_weights *w, const char *path,
                                        GError **error) {
  return sige_model_new_from_weights_kind(w, path, -1, error);
}

gboolean sige_model_describe_weights(const sige_weights *w, const char *path, GString *out,
                                     GString *kinds, GError **error) {
  guint found = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(classes); i++) {
    const sige_model_class *cls = classes[i];
    if (!cls->recognise(w)) continue;
    /* a GAN-Compression file is also a SPADE one, a PD UNet a DDPM one:
     * the first of those is what the file is */
    if (found && (cls == &sige_spade_class || cls == &sige_ddpm_class)) continue;
    g_autofree void *cfg = g_malloc0(cls->config_size);
    if (!cls->infer(w, path, cfg, error)) return FALSE;
    g_string_append_printf(out, "model:      %s\n", cls->name);
    cls->describe(cfg, out);
    if (kinds) g_string_append_printf(kinds, "%s%s", kinds->len ? ", " : "", cls->name);
    found++;
  }
  if (found) return TRUE;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
              "%s: no model class of this build reads these weights", path);
  return FALSE;
}

sige_model *sige_model_load(const char *path, GError **error) {
  /* a diffusers folder gives its UNet, as a whole SD file does */
  if (sige_sd_path_is_folder(path)) return sige_sd_load_model(path, SIGE_SD_PART_UNET, 0, error);
  /* safetensors or a PyTorch checkpoint, any known key layout (told apart
   * by content), renamed to the names the parameter lists use */
  g_autoptr(sige_weights) w = sige_weights_load_any(path, error);
  if (!w) return NULL;
  return sige_model_new_from_weights(w, path, error);
}

GPtrArray *sige_model_load_parts(const char *path, GError **error) {
  g_autoptr(sige_weights) w = sige_weights_load_any(path, error);
  if (!w) return NULL;
  g_autoptr(GPtrArray) parts = g_ptr_array_new_with_free_func((GDestroyNotify)sige_model_free);
  for (size_t i = 0; i < G_N_ELEMENTS(classes); i++) {
    const sige_model_class *cls = classes[i];
    if (!cls->recognise(w)) continue;
    /* a GAN-Compression file is also a SPADE one, a PD UNet a DDPM one:
     * the first of those is the part */
    if ((cls == &sige_spade_class && parts->len) || (cls == &sige_ddpm_class && parts->len))
      continue;
    g_autofree void *cfg = g_malloc0(cls->config_size);
    sige_model *m = cls->infer(w, path, cfg, error) ? model_new(cls, cfg, w, error) : NULL;
    if (!m) return NULL;
    g_ptr_array_add(parts, m);
  }
  if (parts->len == 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED, "%s: holds no model this build knows",
                path);
    return NULL;
  }
  return g_steal_pointer(&parts);
}

void sige_sparse_config_defaults(sige_sparse_config *s, float diff_eps, int mask_dilate_radius,
                                 int pyramid_dilation) {
  *s = (sige_sparse_config){.block_size = 6, .shortcut_block_size = 4, .diff_eps = diff_eps,
                            .mask_dilate_radius = mask_dilate_radius,
                            .pyramid_dilation = pyramid_dilation, .pyramid_threshold = 0.3f};
}

void sige_model_sparse_params(const sige_model *m, sige_sparse_params *p) {
  const sige_sparse_config *c =
      (const sige_sparse_config *)((const char *)m->cfg + m->cls->sparse_offset);
  p->diff_eps = c->diff_eps;
  p->dilate_radius = c->mask_dilate_radius;
  m->cls->lowest_level(m->cfg, &p->min_h, &p->min_w);
  if (c->pyramid_min_h > 0) p->min_h = c->pyramid_min_h;
  if (c->pyramid_min_w > 0) p->min_w = c->pyramid_min_w;
  p->pyramid_dilation = c->pyramid_dilation;
  p->pyramid_threshold = c->pyramid_threshold;
}

gboolean sige_model_pass(const sige_model *m, sige_pass *pass, const sige_tensor *input, float t,
                        sige_tensor **out, GError **error) {
  sige_backend *be = sige_ctx_backend(pass->ctx);
  *out = NULL;
  if (!be) return m->cls->forward(m->impl, pass, input, t, out, error);
  /* a pass on a device: the input goes up unless it is there already (a
   * session keeps its own copy), the output comes back (the download waits
   * for the pass and reports whatever the device latched) */
  g_autoptr(sige_tensor) in_dev = NULL, cond_dev = NULL;
  if (input->backend != be && !(in_dev = sige_tensor_to_backend(be, input, error))) return FALSE;
  const sige_tensor *cond = pass->cond;
  if (cond && cond->backend != be) {
    if (!(cond_dev = sige_tensor_to_backend(be, cond, error))) return FALSE;
    pass->cond = cond_dev;
  }
  sige_tensor *out_dev = NULL;
  gboolean ok = m->cls->forward(m->impl, pass, in_dev ? in_dev : input, t, &out_dev, error);
  pass->cond = cond;
  if (ok && !(*out = sige_tensor_to_host(out_dev, error))) ok = FALSE;
  sige_tensor_free(out_dev);
  if (!ok) sige_buffer_check(be, NULL); /* the error above names the cause; drop later ones */
  return ok;
}
