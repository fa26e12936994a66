#include "sige-app/sd_app.h"

#include <stdlib.h>
#include <string.h>

#include "app-i18n.h"
#include "sige-app/png_io.h"
#include "sige/error.h"
#include "sige/sd_checkpoint.h"

void sige_sd_app_models_clear(sige_sd_app_models *m) {
  g_clear_pointer(&m->unet, sige_model_free);
  g_clear_pointer(&m->encoder, sige_model_free);
  g_clear_pointer(&m->decoder, sige_model_free);
  g_clear_pointer(&m->text, sige_model_free);
  g_clear_pointer(&m->tokenizer, sige_clip_tokenizer_free);
}

static int meta_int(const sige_weights *w, const char *key, int def) {
  const char *v = sige_weights_metadata(w, key);
  return v ? atoi(v) : def;
}

static void set_int(sige_weights *w, const char *key, int v) {
  char buf[32];
  g_snprintf(buf, sizeof buf, "%d", v);
  sige_weights_set_metadata(w, key, buf);
}

/* A single file's sige.* sizes were written for its model and bind; a
 * diffusers folder's sample_size is only diffusers' default size (its
 * pipelines take other sizes), so the picture's size replaces it. */
static gboolean size_part(const sige_sd_checkpoint *ck, sige_weights *w, sige_sd_part part,
                          int width, int height, GError **error) {
  const gboolean binding = strcmp(sige_sd_checkpoint_format(ck), "diffusers") != 0;
  const gboolean unet = part == SIGE_SD_PART_UNET;
  const int f = unet ? 8 : 1; /* the UNet's sizes are the latent's */
  const char *kh = unet ? "sige.latent_h" : "sige.image_h";
  const char *kw = unet ? "sige.latent_w" : "sige.image_w";
  const int size = unet ? -1 : meta_int(w, "sige.image_size", -1);
  const int h = meta_int(w, kh, size), wd = meta_int(w, kw, size);
  if (binding && ((h > 0 && h * f != height) || (wd > 0 && wd * f != width))) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                _("%s: the %s is for %d x %d pictures (metadata '%s', '%s'%s); the picture is "
                  "%d x %d"),
                sige_sd_checkpoint_part_path(ck, part), unet ? "UNet" : "VAE",
                (wd > 0 ? wd : h) * f, (h > 0 ? h : wd) * f, kh, kw,
                unet ? "" : " or 'sige.image_size'", width, height);
    return FALSE;
  }
  set_int(w, kh, height / f);
  set_int(w, kw, width / f);
  return TRUE;
}

static sige_model *part_model(const sige_sd_checkpoint *ck, sige_sd_part part, int kind,
                              int width, int height, GError **error) {
  g_autoptr(sige_weights) w = sige_sd_checkpoint_part(ck, part, 0, error);
  if (!w) return NULL;
  if (part != SIGE_SD_PART_TEXT_ENCODER && !size_part(ck, w, part, width, height, error))
    return NULL;
  return sige_model_new_from_weights_kind(w, sige_sd_checkpoint_part_path(ck, part), kind, error);
}

gboolean sige_sd_app_load(const char *path, int width, int height, const char *fallback_bpe,
                          sige_sd_app_models *m, GError **error) {
  memset(m, 0, sizeof *m);
  if (width < 8 || height < 8 || width % 8 || height % 8) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                _("the picture is %d x %d; Stable Diffusion needs both sides multiples of 8 "
                  "(the latent is 1/8 of the picture)"), width, height);
    return FALSE;
  }
  g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(path, error);
  if (!ck || !(m->unet = part_model(ck, SIGE_SD_PART_UNET, SIGE_MODEL_SD_UNET, width, height, error)) ||
      !(m->encoder = part_model(ck, SIGE_SD_PART_VAE, SIGE_MODEL_SD_VAE_ENCODER, width, height,
                                error)) ||
      !(m->decoder = part_model(ck, SIGE_SD_PART_VAE, SIGE_MODEL_SD_VAE_DECODER, width, height,
                                error)) ||
      !(m->text = part_model(ck, SIGE_SD_PART_TEXT_ENCODER, SIGE_MODEL_CLIP_TEXT, width, height,
                             error)) ||
      !(m->tokenizer = sige_clip_tokenizer_new_for_sd(ck, fallback_bpe, error))) {
    sige_sd_app_models_clear(m);
    return FALSE;
  }
  const int ctx_dim = sige_model_sd_unet_config(m->unet)->context_dim;
  const int tw = sige_model_clip_text_config(m->text)->width;
  if (ctx_dim != tw) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                _("%s: the UNet's context_dim is %d but the text encoder's width is %d"), path,
                ctx_dim, tw);
    sige_sd_app_models_clear(m);
    return FALSE;
  }
  return TRUE;
}

sige_tensor *sige_sd_app_context(const sige_sd_app_models *m, const char *prompt, int n_threads,
                                 GError **error) {
  const int len = sige_model_clip_text_config(m->text)->context_length;
  g_autofree int32_t *ids = g_new(int32_t, len);
  if (!sige_clip_tokenize(m->tokenizer, prompt, len, ids, error)) return NULL;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(n_threads);
  sige_tensor *last = NULL;
  if (!sige_clip_text_encode(m->text, ctx, ids, 1, &last, NULL, error)) return NULL;
  return last;
}

sige_tensor *sige_sd_app_read_picture(const char *path, GError **error) {
  g_autofree guint8 *px = NULL;
  int w = 0, h = 0, ch = 0;
  if (!sige_png_read(path, 3, &px, &w, &h, &ch, error)) return NULL;
  const int64_t shape[4] = {1, 3, h, w};
  sige_tensor *t = sige_tensor_new(4, shape, error);
  if (!t) return NULL;
  const size_t n = (size_t)w * h;
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < 3; c++) t->data[c * n + i] = px[i * 3 + c] / 127.5f - 1.0f;
  return t;
}

sige_mask *sige_sd_app_read_mask(const char *path, int width, int height, GError **error) {
  g_autofree guint8 *px = NULL;
  int w = 0, h = 0, ch = 0;
  if (!sige_png_read_sized(path, 1, width, height, &px, &w, &h, &ch, error)) return NULL;
  sige_mask *m = sige_mask_new(height, width);
  for (size_t i = 0; i < (size_t)width * height; i++) m->data[i] = px[i] >= 128;
  return m;
}
