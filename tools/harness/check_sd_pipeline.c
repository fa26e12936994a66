/* sige check-reference for the SD pipeline cases: "sd-img2img" (the
 * published sdedit task) and "sd-inpainting", through sige_sd_pipeline.
 * Dense: the schedule, the encoder, every step's guided UNet outputs and x,
 * the final latent and picture.  Sparse: the masks and active blocks, then
 * snapshot + regenerate with the per-step tensors of both trajectories. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_reference.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/sd_pipeline.h"

typedef struct {
  sige_sd_unet_config unet;
  sige_sd_vae_config enc, dec;
  sige_sd_params prm;
  int ddim_steps;
  gboolean inpaint;
} sd_case;

static JsonObject *member_object(JsonObject *o, const char *k) {
  JsonNode *n = o && json_object_has_member(o, k) ? json_object_get_member(o, k) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static int member_int(JsonObject *o, const char *k, int def) {
  return o && json_object_has_member(o, k) ? (int)json_object_get_int_member(o, k) : def;
}

/* the two ints of list k into v; FALSE when absent */
static gboolean member_pair(JsonObject *o, const char *k, int v[2]) {
  JsonNode *n = o && json_object_has_member(o, k) ? json_object_get_member(o, k) : NULL;
  if (!n || !JSON_NODE_HOLDS_ARRAY(n) || json_array_get_length(json_node_get_array(n)) != 2)
    return FALSE;
  for (int i = 0; i < 2; i++) v[i] = (int)json_array_get_int_element(json_node_get_array(n), i);
  return TRUE;
}

/* A case whose "config" is the part `part` of the pipeline case's config
 * (with the pipeline's image and latent sizes), and the same "sige". */
static void sub_case(const sige_case *cs, const char *part, sige_case *sub, JsonObject **root) {
  JsonObject *cfg = member_object(cs->root, "config");
  JsonObject *p = member_object(cfg, part);
  JsonObject *r = json_object_new();
  if (p) {
    for (const char *k = "image_size"; k; k = !strcmp(k, "image_size") ? "latent_size" : NULL)
      if (cfg && json_object_has_member(cfg, k) && !json_object_has_member(p, k))
        json_object_set_member(p, k, json_node_copy(json_object_get_member(cfg, k)));
    json_object_set_object_member(r, "config", json_object_ref(p));
  }
  JsonObject *sg = member_object(cs->root, "sige");
  if (sg) json_object_set_object_member(r, "sige", json_object_ref(sg));
  *sub = *cs;
  sub->root = r;
  *root = r;
}

/* The case's sizes, sparse settings and sampler. */
static gboolean read_case(const sige_case *cs, sd_case *c, GError **error) {
  sige_case sub;
  JsonObject *root;
  c->inpaint = !strcmp(cs->kind, "sd-inpainting");
  sub_case(cs, "unet", &sub, &root);
  gboolean ok = sige_case_sd_unet_config(&sub, &c->unet, error);
  json_object_unref(root);
  sub_case(cs, "vae", &sub, &root);
  ok = ok && sd_vae_case_config(&sub, SIGE_MODEL_SD_VAE_ENCODER, &c->enc, error) &&
       sd_vae_case_config(&sub, SIGE_MODEL_SD_VAE_DECODER, &c->dec, error);
  json_object_unref(root);
  if (!ok) return FALSE;
  JsonObject *sg = member_object(cs->root, "sige"), *smp = member_object(cs->root, "sampler");
  JsonObject *cfg = member_object(cs->root, "config");
  if (!smp || !sg) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                "%s/case.json: no \"sampler\" or \"sige\" object", cs->dir);
    return FALSE;
  }
  const char *kind = json_object_has_member(smp, "kind") ? json_object_get_string_member(smp, "kind") : "";
  if (strcmp(kind, "ddim") != 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s/case.json: sampler.kind \"%s\": the SD pipeline runs ddim only", cs->dir, kind);
    return FALSE;
  }
  sige_sd_params_init(&c->prm);
  c->prm.task = c->inpaint ? SIGE_SD_INPAINT : SIGE_SD_IMG2IMG;
  c->ddim_steps = c->prm.steps = member_int(smp, "ddim_steps", 50);
  if (json_object_has_member(smp, "strength"))
    c->prm.strength = json_object_get_double_member(smp, "strength");
  if (json_object_has_member(smp, "guidance_scale"))
    c->prm.guidance = json_object_get_double_member(smp, "guidance_scale");
  if (cfg && json_object_has_member(cfg, "scale_factor"))
    c->prm.scale_factor = json_object_get_double_member(cfg, "scale_factor");
  /* the sparse settings: block sizes, the UNet / encoder masks, the decoder's */
  JsonObject *bs = member_object(sg, "block_sizes");
  sige_sparse_config *sps[3] = {&c->unet.sparse, &c->enc.sparse, &c->dec.sparse};
  JsonObject *um = member_object(sg, "unet_and_encoder_masks"), *dm = member_object(sg, "decoder_masks");
  for (int i = 0; i < 3; i++) {
    sige_sparse_config *s = sps[i];
    s->block_size = member_int(bs, "conv3x3", s->block_size);
    s->shortcut_block_size = member_int(bs, "shortcut1x1", s->shortcut_block_size);
    if (json_object_has_member(sg, "diff_eps"))
      s->diff_eps = (float)json_object_get_double_member(sg, "diff_eps");
    if (json_object_has_member(sg, "downsample_threshold"))
      s->pyramid_threshold = (float)json_object_get_double_member(sg, "downsample_threshold");
    JsonObject *mk = i == 2 ? dm : um;
    s->mask_dilate_radius = member_int(um, "dilate_radius", s->mask_dilate_radius);
    int mr[2];
    if (member_pair(mk, "downsample_min_res", mr)) s->pyramid_min_h = mr[0], s->pyramid_min_w = mr[1];
    s->pyramid_dilation = member_int(mk, "downsample_dilation", s->pyramid_dilation);
  }
  c->enc.attention_block_size = c->dec.attention_block_size =
      member_int(bs, "transformer/attention", c->enc.attention_block_size);
  if (c->inpaint) c->unet.sparse.pyramid_dilation = 1; /* "min_res=8, dilation=1" */
  return TRUE;
}

/* ---- what the runs produce, compared as they come --------------------- */
typedef struct {
  checker *ck;
  const char *tag;     /* per-step name suffix: "dense", "init" / "orig", "sparse" */
  const char *tol;     /* the final latent's and picture's tolerance */
  gboolean inpaint;
} observer;

static void compare_batch(checker *ck, const char *name, const sige_tensor *const e[2]) {
  GError *error = NULL;
  if (!e[0]) {
    report_error(ck, name, g_error_new(SIGE_ERROR, SIGE_ERROR_INVALID, "no uncond branch"));
    return;
  }
  const int64_t shape[4] = {2, SIGE_C(e[1]), SIGE_H(e[1]), SIGE_W(e[1])};
  g_autoptr(sige_tensor) both = sige_tensor_new(4, shape, &error);
  if (!both) {
    report_error(ck, name, error);
    return;
  }
  memcpy(both->data, e[0]->data, e[0]->numel * sizeof(float));
  memcpy(both->data + e[0]->numel, e[1]->data, e[1]->numel * sizeof(float));
  compare(ck, name, both, "full_vs_dense");
}

static void on_event(const sige_sd_step_info *info, void *data) {
  observer *o = data;
  checker *ck = o->ck;
  const gboolean dense = !strcmp(o->tag, "dense");
  const gboolean full = !strcmp(o->tag, "init") || !strcmp(o->tag, "orig");
  if (info->event == SIGE_SD_ENCODED) {
    if (o->inpaint) { /* the posterior mean is large here: its own tolerance */
      if (!info->moments) return; /* a sparse run starts from the snapshot's latent */
      compare(ck, "enc_moments", info->moments, "encoder_vs_reference");
      compare(ck, "init_latent", info->latent, "encoder_vs_reference");
      return;
    }
    if (dense) {
      compare(ck, "enc_moments_dense_edit", info->moments, "full_vs_dense");
      compare(ck, "edited_latent_dense", info->latent, "full_vs_dense");
      compare(ck, "z_enc_edit_dense", info->x, "full_vs_dense");
    } else if (full) {
      compare(ck, "enc_moments_full_orig", info->moments, "full_vs_dense");
      compare(ck, "init_latent", info->latent, "full_vs_dense");
      compare(ck, "z_enc_init", info->x, "full_vs_dense");
    } else {
      compare(ck, "enc_moments_sparse_edit", info->moments, "full_vs_dense");
      compare(ck, "edited_latent_sparse", info->latent, "full_vs_dense");
      compare(ck, "z_enc_edit_sparse", info->x, "full_vs_dense");
    }
    return;
  }
  const int k = info->step;
  g_autofree char *eps_name = g_strdup_printf(
      "steps/%d/unet_out_%s", k, dense ? "dense" : full ? (o->inpaint ? "orig_full" : "init_full")
                                                         : "sparse");
  compare_batch(ck, eps_name, info->eps);
  if (o->inpaint && full) {
    g_autofree char *n = g_strdup_printf("steps/%d/x_orig_t", k);
    compare(ck, n, info->x_in, "full_vs_dense");
    return;
  }
  if (o->inpaint && !dense) {
    g_autofree char *n = g_strdup_printf("steps/%d/x_in_sparse", k);
    compare(ck, n, info->x_in, "full_vs_dense");
  }
  g_autofree char *xn = g_strdup_printf("steps/%d/x_%s", k, o->tag);
  compare(ck, xn, info->x, "full_vs_dense");
}

/* ---- the schedule ------------------------------------------------------ */
static void check_schedule(checker *ck, const sd_case *c, const sige_sd_models *m) {
  GError *error = NULL;
  sige_sd_params all = c->prm;
  all.task = SIGE_SD_INPAINT; /* every step of the schedule */
  g_autoptr(sige_sd_pipeline) p = sige_sd_pipeline_new(m, &all, &error);
  if (!p) {
    report_error(ck, "ddim/timesteps", error);
    return;
  }
  const sige_sampler *s = sige_sd_pipeline_sampler(p);
  const int n = sige_sampler_steps(s);
  const int64_t shape[1] = {n};
  g_autoptr(sige_tensor) ts = sige_tensor_new(1, shape, NULL);
  g_autoptr(sige_tensor) a = sige_tensor_new(1, shape, NULL);
  g_autoptr(sige_tensor) ap = sige_tensor_new(1, shape, NULL);
  g_autoptr(sige_tensor) sq = sige_tensor_new(1, shape, NULL);
  for (int j = 0; j < n; j++) { /* the ldm arrays run from the smallest timestep */
    ts->data[j] = (float)sige_sampler_timestep(s, n - 1 - j);
    a->data[j] = (float)sige_sampler_alpha_bar(s, n - 1 - j);
    ap->data[j] = (float)sige_sampler_alpha_bar(s, n - j);
    sq->data[j] = (float)sqrt(1.0 - a->data[j]);
  }
  compare(ck, "ddim/timesteps", ts, "full_vs_dense");
  compare(ck, "ddim/alphas", a, "full_vs_dense");
  compare(ck, "ddim/alphas_prev", ap, "full_vs_dense");
  compare(ck, "ddim/sqrt_one_minus_alphas", sq, "full_vs_dense");
}

/* ---- the runs ---------------------------------------------------------- */
static const sige_tensor *need(checker *ck, const char *name, gboolean *ok) {
  const sige_tensor *t = sige_weights_get(ck->io, name);
  if (!t && *ok) {
    report_error(ck, name, g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING,
                                       "io.safetensors has no '%s'", name));
    *ok = FALSE;
  }
  return t;
}

/* A pipeline with the case's contexts and noises. */
static sige_sd_pipeline *case_pipeline(checker *ck, const sd_case *c, const sige_sd_models *m,
                                       GError **error) {
  sige_sd_params prm = c->prm;
  prm.n_threads = ck->threads;
  prm.device = ck->device;
  g_autoptr(sige_sd_pipeline) p = sige_sd_pipeline_new(m, &prm, error);
  if (!p) return NULL;
  gboolean ok = TRUE;
  const sige_tensor *cond = need(ck, "context_cond", &ok), *uncond = need(ck, "context_uncond", &ok);
  const sige_tensor *enc_noise = need(ck, "enc_noise", &ok);
  const sige_tensor *noise = need(ck, c->inpaint ? "x_T" : "noise", &ok);
  const int n = sige_sd_pipeline_steps(p);
  g_autofree const sige_tensor **q = g_new0(const sige_tensor *, n);
  for (int i = 0; c->inpaint && i < n; i++) {
    g_autofree char *name = g_strdup_printf("steps/%d/q_noise", i);
    q[i] = need(ck, name, &ok);
  }
  if (!ok) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING, "the case's inputs are incomplete");
    return NULL;
  }
  if (!sige_sd_pipeline_set_contexts(p, cond, uncond, error) ||
      !sige_sd_pipeline_set_noise(p, enc_noise, noise, c->inpaint ? q : NULL,
                                  c->inpaint ? n : 0, error))
    return NULL;
  return g_steal_pointer(&p);
}

/* The image-size mask of io's U8 `name`. */
static sige_mask *io_mask(checker *ck, const char *name) {
  const sige_tensor *t = sige_weights_get(ck->io, name);
  if (!t || t->ndim != 2) return NULL;
  sige_mask *m = sige_mask_new((int)t->shape[0], (int)t->shape[1]);
  for (size_t i = 0; i < t->numel; i++) m->data[i] = t->data[i] != 0;
  return m;
}

static void check_dense(checker *ck, const sd_case *c, const sige_sd_models *m) {
  GError *error = NULL;
  const char *tol = c->inpaint ? "sampled_vs_reference" : "sdedit_vs_reference";
  gboolean ok = TRUE;
  const sige_tensor *image = need(ck, c->inpaint ? "x_init" : "x_edit", &ok);
  g_autoptr(sige_mask) mask = c->inpaint ? io_mask(ck, "inpaint_mask") : NULL;
  if (c->inpaint && !mask) {
    report_error(ck, "inpaint_mask", g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING,
                                                 "io has no 2-d inpaint_mask"));
    return;
  }
  if (!ok) return;
  g_autoptr(sige_sd_pipeline) p = case_pipeline(ck, c, m, &error);
  observer o = {ck, "dense", tol, c->inpaint};
  g_autoptr(sige_tensor) latent = NULL, out = NULL;
  if (p && !c->inpaint && sige_weights_get(ck->io, "t_enc")) {
    const int64_t one[1] = {1};
    g_autoptr(sige_tensor) t_enc = sige_tensor_new(1, one, NULL);
    t_enc->data[0] = (float)sige_sd_pipeline_steps(p);
    compare(ck, "t_enc", t_enc, "full_vs_dense");
  }
  if (p) sige_sd_pipeline_set_step_observer(p, on_event, &o);
  if (!p || !sige_sd_pipeline_run_dense(p, image, mask, NULL, NULL, NULL, &latent, &out, &error)) {
    report_error(ck, c->inpaint ? "inpaint_dense" : "sdedit_dense", error);
    return;
  }
  compare(ck, "latent_dense_final", latent, tol);
  compare(ck, c->inpaint ? "inpaint_dense" : "sdedit_dense", out, tol);
}

/* The masks of the sparse task, compared exactly. */
static void check_masks(checker *ck, const sd_case *c) {
  const sige_sparse_config *us = &c->unet.sparse, *ds = &c->dec.sparse;
  g_autoptr(sige_mask) diff = NULL, ddiff = NULL;
  if (c->inpaint) {
    diff = io_mask(ck, "inpaint_mask");
  } else {
    const sige_tensor *a = sige_weights_get(ck->io, "x_orig"), *b = sige_weights_get(ck->io, "x_edit");
    if (a && b) {
      g_autoptr(sige_mask) raw = sige_mask_from_diff(a, b, c->enc.sparse.diff_eps);
      compare_mask(ck, "diff_mask_raw", raw);
      diff = sige_mask_cross_dilate(raw, c->enc.sparse.mask_dilate_radius);
      compare_mask(ck, "diff_mask", diff);
      ddiff = sige_mask_cross_dilate(diff, c->dec.decoder_extra_dilate);
      compare_mask(ck, "dec_diff_mask", ddiff);
    }
  }
  if (!diff) {
    report_error(ck, "mask", g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING, "io has no inputs"));
    return;
  }
  const int umin = c->inpaint ? c->prm.inpaint_min_res : us->pyramid_min_h;
  g_autoptr(sige_mask_pyramid) up = sige_mask_pyramid_new(diff, umin, c->inpaint ? umin : us->pyramid_min_w,
                                                          us->pyramid_dilation, us->pyramid_threshold);
  guint n;
  const char *const *names = sige_weights_names(ck->io, &n);
  for (int pass = 0; pass < 2; pass++) {
    const char *prefix = pass ? "dec_mask/" : "mask/";
    g_autoptr(sige_mask_pyramid) dp =
        pass && ddiff ? sige_mask_pyramid_new(ddiff, ds->pyramid_min_h, ds->pyramid_min_w,
                                              ds->pyramid_dilation, ds->pyramid_threshold)
                      : NULL;
    const sige_mask_pyramid *pyr = dp ? dp : up;
    for (guint i = 0; i < n; i++) {
      int h, w, used = 0;
      if (!g_str_has_prefix(names[i], prefix) ||
          sscanf(names[i] + strlen(prefix), "%dx%d%n", &h, &w, &used) != 2 ||
          names[i][strlen(prefix) + used])
        continue;
      compare_mask(ck, names[i], sige_mask_pyramid_get(pyr, h, w));
    }
    /* the inpainting decoder uses the UNet's pyramid */
    compare_active_indices_named(ck, pyr, pass ? "dec_active_indices/" : "active_indices/", "");
  }
}

/* Snapshot + regenerate.  FALSE when the SD UNet cannot record. */
static gboolean check_sparse(checker *ck, const sd_case *c, const sige_sd_models *m) {
  GError *error = NULL;
  const char *tol = c->inpaint ? "sampled_vs_reference" : "sdedit_vs_reference";
  const char *final_out = c->inpaint ? "inpaint_sparse" : "sdedit_sparse";
  gboolean ok = TRUE;
  const sige_tensor *orig = need(ck, c->inpaint ? "x_init" : "x_orig", &ok);
  const sige_tensor *edit = c->inpaint ? NULL : need(ck, "x_edit", &ok);
  g_autoptr(sige_mask) mask = c->inpaint ? io_mask(ck, "inpaint_mask") : NULL;
  if (!ok) return TRUE;
  g_autoptr(sige_sd_pipeline) p = case_pipeline(ck, c, m, &error);
  observer full = {ck, c->inpaint ? "orig" : "init", tol, c->inpaint};
  observer sp = {ck, "sparse", tol, c->inpaint};
  g_autoptr(sige_tensor) latent = NULL, out = NULL;
  if (p) sige_sd_pipeline_set_step_observer(p, on_event, &full);
  gboolean done = p && sige_sd_pipeline_snapshot(p, orig, NULL, NULL, NULL, NULL, &error);
  if (done) {
    sige_sd_pipeline_set_step_observer(p, on_event, &sp);
    done = sige_sd_pipeline_regenerate(p, edit, mask, NULL, NULL, NULL, &latent, &out, &error);
  }
  if (!done) {
    /* the SD UNet refuses recording or sparse passes until they are
     * written: say so, and count it as not checked (never passed) */
    if (error && g_error_matches(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED) &&
        strstr(error->message, "SD UNet")) {
      printf("%s, latent_sparse_final, steps/*: not checked (sparse SD UNet not available: %s)\n",
             final_out, error->message);
      g_clear_error(&error);
      ck->not_checked++;
      return FALSE;
    }
    report_error(ck, final_out, error);
    return TRUE;
  }
  compare(ck, "latent_sparse_final", latent, tol);
  compare(ck, final_out, out, tol);
  return TRUE;
}

gboolean check_sd_pipeline(checker *ck, const sige_weights *w, gboolean dense, gboolean sparse) {
  GError *error = NULL;
  sd_case c;
  g_autoptr(sige_model) unet = NULL, enc = NULL, dec = NULL;
  if (!read_case(&ck->cs, &c, &error) ||
      !(unet = sige_model_new_sd_unet(&c.unet, w, &error)) ||
      !(enc = sige_model_new_sd_vae(SIGE_MODEL_SD_VAE_ENCODER, &c.enc, w, &error)) ||
      !(dec = sige_model_new_sd_vae(SIGE_MODEL_SD_VAE_DECODER, &c.dec, w, &error))) {
    report_error(ck, "sd pipeline setup", error);
    return TRUE;
  }
  const sige_sd_models m = {unet, enc, dec};
  if (dense) {
    check_schedule(ck, &c, &m);
    check_dense(ck, &c, &m);
  }
  if (!sparse) return TRUE;
  check_masks(ck, &c);
  return check_sparse(ck, &c, &m);
}
