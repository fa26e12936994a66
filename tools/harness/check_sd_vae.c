/* sige check-reference for the "sd-vae" case: the AutoencoderKL encoder
 * and decoder, dense on both images / latents, and sparse with the masks of
 * the published sdedit runner (the encoder's: the image difference dilated
 * by 5, pyramid dilation 1; the decoder's: that mask dilated again by 40,
 * pyramid dilation 0), masks and active blocks compared exactly. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_reference.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/session.h"

static JsonObject *object_member(JsonObject *o, const char *k) {
  JsonNode *n = o ? json_object_get_member(o, k) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static void get_int(JsonObject *o, const char *k, int *v) {
  if (o && json_object_has_member(o, k)) *v = (int)json_object_get_int_member(o, k);
}

static void get_float(JsonObject *o, const char *k, float *v) {
  if (o && json_object_has_member(o, k)) *v = (float)json_object_get_double_member(o, k);
}

/* up to max ints of list k; -1 when absent */
static int get_ints(JsonObject *o, const char *k, int *v, int max) {
  JsonNode *n = o ? json_object_get_member(o, k) : NULL;
  if (!n || !JSON_NODE_HOLDS_ARRAY(n)) return -1;
  JsonArray *a = json_node_get_array(n);
  const int len = (int)json_array_get_length(a);
  for (int i = 0; i < len && i < max; i++) v[i] = (int)json_array_get_int_element(a, i);
  return MIN(len, max);
}

/* case.json "config" and "sige" into a config of `part`. */
gboolean sd_vae_case_config(const sige_case *cs, sige_model_kind part, sige_sd_vae_config *c,
                            GError **error) {
  sige_sd_vae_config_init(c, part);
  JsonObject *m = object_member(cs->root, "config"), *sg = object_member(cs->root, "sige");
  if (!m || !sg) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                "%s/case.json: no \"config\" or \"sige\" object", cs->dir);
    return FALSE;
  }
  int attn[8];
  if (get_ints(m, "attn_resolutions", attn, 8) > 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s/case.json: config.attn_resolutions must be empty (attention only in the "
                "middle blocks, as SD's VAE)", cs->dir);
    return FALSE;
  }
  get_int(m, "ch", &c->ch);
  const int n = get_ints(m, "ch_mult", c->ch_mult, 8);
  if (n > 0) c->n_ch_mult = n;
  get_int(m, "num_res_blocks", &c->num_res_blocks);
  get_int(m, "in_channels", &c->in_channels);
  get_int(m, "out_ch", &c->out_ch);
  get_int(m, "z_channels", &c->z_channels);
  get_int(m, "embed_dim", &c->embed_dim);
  if (json_object_has_member(m, "double_z"))
    c->double_z = json_object_get_boolean_member(m, "double_z");
  int size[2];
  if (get_ints(m, "image_size", size, 2) == 2) c->image_h = size[0], c->image_w = size[1];
  get_int(m, "groupnorm_groups", &c->groupnorm_groups);
  get_float(m, "groupnorm_eps", &c->groupnorm_eps);
  get_int(sg, "block_size_normal", &c->sparse.block_size);
  get_int(sg, "block_size_shortcut", &c->sparse.shortcut_block_size);
  get_int(sg, "block_size_attention", &c->attention_block_size);
  get_float(sg, "diff_eps", &c->sparse.diff_eps);
  get_float(sg, "downsample_threshold", &c->sparse.pyramid_threshold);
  /* the decoder's extra dilation (40) is stated only in words in the case
   * ("then by 40"): it stays the config's default */
  JsonObject *mk = object_member(sg, part == SIGE_MODEL_SD_VAE_DECODER ? "decoder_masks"
                                                                        : "encoder_masks");
  JsonObject *em = object_member(sg, "encoder_masks");
  get_int(em, "dilate_radius", &c->sparse.mask_dilate_radius);
  if (get_ints(mk, "downsample_min_res", size, 2) == 2)
    c->sparse.pyramid_min_h = size[0], c->sparse.pyramid_min_w = size[1];
  get_int(mk, "downsample_dilation", &c->sparse.pyramid_dilation);
  return TRUE;
}

/* Both "<prefix>HxW" masks of the pyramid and "<ai_prefix>..." blocks. */
static void compare_masks(checker *ck, const sige_mask *diff, const sige_sparse_config *sp,
                          const char *prefix, const char *ai_prefix) {
  g_autoptr(sige_mask_pyramid) pyr =
      sige_mask_pyramid_new(diff, sp->pyramid_min_h, sp->pyramid_min_w, sp->pyramid_dilation,
                            sp->pyramid_threshold);
  guint n;
  const char *const *names = sige_weights_names(ck->io, &n);
  for (guint i = 0; i < n; i++) {
    int h, w, consumed = 0;
    if (!g_str_has_prefix(names[i], prefix) ||
        sscanf(names[i] + strlen(prefix), "%dx%d%n", &h, &w, &consumed) != 2 ||
        names[i][strlen(prefix) + consumed] != '\0')
      continue;
    compare_mask(ck, names[i], sige_mask_pyramid_get(pyr, h, w));
  }
  compare_active_indices_named(ck, pyr, ai_prefix, "");
}

/* mean + exp(0.5 clamp(logvar, -30, 20)) noise (noise NULL: the mean). */
static sige_tensor *posterior(const sige_tensor *moments, const sige_tensor *noise,
                              GError **error) {
  const int C = SIGE_C(moments) / 2, H = SIGE_H(moments), W = SIGE_W(moments);
  const size_t plane = (size_t)H * W;
  sige_tensor *z = sige_tensor_new4(1, C, H, W, error);
  if (!z) return NULL;
  for (size_t i = 0; i < (size_t)C * plane; i++) {
    const float lv = CLAMP(moments->data[(size_t)C * plane + i], -30.0f, 20.0f);
    z->data[i] = moments->data[i] + (noise ? expf(0.5f * lv) * noise->data[i] : 0.0f);
  }
  return z;
}

static const sige_tensor *io_get(checker *ck, const char *name, const char *out, gboolean *ok) {
  GError *error = NULL;
  const sige_tensor *t = sige_weights_require(ck->io, name, 4, NULL, &error);
  if (!t) {
    report_error(ck, out, error);
    *ok = FALSE;
  }
  return t;
}

/* Dense forwards of model on io inputs ins[0..1] against outs[0..1]. */
static void check_dense(checker *ck, const sige_model *model, const char *const ins[2],
                        const char *const outs[2], gboolean encoder) {
  const sige_tensor *noise = encoder ? sige_weights_get(ck->io, "enc_noise") : NULL;
  for (int i = 0; i < 2; i++) {
    GError *error = NULL;
    gboolean ok = TRUE;
    const sige_tensor *x = io_get(ck, ins[i], outs[i], &ok);
    g_autoptr(sige_tensor) out = NULL;
    if (!ok) continue;
    if (!sige_model_forward_dense(model, ck->ctx, x, 0, &out, &error)) {
      report_error(ck, outs[i], error);
      continue;
    }
    compare(ck, outs[i], out, "full_vs_dense");
    if (!encoder) continue;
    /* the posterior's mean and sample (the mean is the decoder's z) */
    const char *tag = strrchr(outs[i], '_') + 1;
    g_autofree char *mn = g_strdup_printf("enc_mean_dense_%s", tag);
    g_autofree char *sn = g_strdup_printf("enc_sample_dense_%s", tag);
    g_autoptr(sige_tensor) mean = posterior(out, NULL, &error);
    g_autoptr(sige_tensor) sample = mean && noise ? posterior(out, noise, &error) : NULL;
    if (mean) compare(ck, mn, mean, "full_vs_dense");
    if (sample) compare(ck, sn, sample, "full_vs_dense");
    if (error) report_error(ck, sn, error);
  }
}

/* A full pass on orig, then a sparse pass on edit with `mask`. */
static void check_sparse(checker *ck, const sige_model *model, const char *orig, const char *edit,
                         const sige_mask *mask, const char *out_name) {
  GError *error = NULL;
  gboolean ok = TRUE;
  const sige_tensor *a = io_get(ck, orig, out_name, &ok);
  const sige_tensor *b = ok ? io_get(ck, edit, out_name, &ok) : NULL;
  if (!ok) return;
  sige_session_options opts;
  sige_session_options_init(&opts);
  opts.n_threads = ck->threads;
  opts.device = ck->device;
  opts.full_pass_above = 2.0; /* always sparse: what the reference computed */
  g_autoptr(sige_session) s = sige_session_new(model, &opts, &error);
  g_autoptr(sige_tensor) out = NULL;
  if (!s || !sige_session_snapshot(s, a, NULL, &error) ||
      !sige_session_regenerate_masked(s, b, mask, NULL, NULL, NULL, &out, NULL, &error)) {
    report_error(ck, out_name, error);
    return;
  }
  compare(ck, out_name, out, "sparse_vs_reference");
}

void check_sd_vae(checker *ck, const sige_weights *w, gboolean dense, gboolean sparse) {
  GError *error = NULL;
  sige_sd_vae_config ec, dc;
  g_autoptr(sige_model) enc = NULL, dec = NULL;
  if (!sd_vae_case_config(&ck->cs, SIGE_MODEL_SD_VAE_ENCODER, &ec, &error) ||
      !sd_vae_case_config(&ck->cs, SIGE_MODEL_SD_VAE_DECODER, &dc, &error) ||
      !(enc = sige_model_new_sd_vae(SIGE_MODEL_SD_VAE_ENCODER, &ec, w, &error)) ||
      !(dec = sige_model_new_sd_vae(SIGE_MODEL_SD_VAE_DECODER, &dc, w, &error))) {
    report_error(ck, "sd-vae setup", error);
    return;
  }
  if (dense) {
    const char *const ei[2] = {"x_orig", "x_edit"};
    const char *const eo[2] = {"enc_moments_dense_orig", "enc_moments_dense_edit"};
    const char *const di[2] = {"z_orig", "z_edit"};
    const char *const dout[2] = {"dec_dense_orig", "dec_dense_edit"};
    check_dense(ck, enc, ei, eo, TRUE);
    check_dense(ck, dec, di, dout, FALSE);
  }
  if (!sparse) return;
  const sige_tensor *a = sige_weights_get(ck->io, "x_orig");
  const sige_tensor *b = sige_weights_get(ck->io, "x_edit");
  if (!a || !b) {
    report_error(ck, "diff_mask",
                 g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING, "io has no x_orig or x_edit"));
    return;
  }
  g_autoptr(sige_mask) raw = sige_mask_from_diff(a, b, ec.sparse.diff_eps);
  g_autoptr(sige_mask) diff = sige_mask_cross_dilate(raw, ec.sparse.mask_dilate_radius);
  g_autoptr(sige_mask) ddiff = sige_mask_cross_dilate(diff, dc.decoder_extra_dilate);
  compare_mask(ck, "diff_mask_raw", raw);
  compare_mask(ck, "diff_mask", diff);
  compare_masks(ck, diff, &ec.sparse, "mask/", "active_indices/");
  check_sparse(ck, enc, "x_orig", "x_edit", diff, "enc_moments_sparse_edit");
  compare_mask(ck, "dec_diff_mask", ddiff);
  compare_masks(ck, ddiff, &dc.sparse, "dec_mask/", "dec_active_indices/");
  check_sparse(ck, dec, "z_orig", "z_edit", ddiff, "dec_sparse_edit");
}
