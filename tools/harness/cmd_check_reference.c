/* sige check-reference: recompute a reference case and compare.
 *
 * Prints one line per output: name, error in the tolerance's metric, the
 * tolerance, PASS or FAIL; the last line is "N passed, M failed".  Exit
 * status 0 only when nothing failed; 3 when the case's model kind is not
 * supported by this build. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "case_config.h"
#include "check_reference.h"
#include "commands.h"
#include "sige-app/clip_tokenizer.h"
#include "sige-app/names.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/sampler.h"
#include "sige/session.h"
#include "sige/sparse.h"
#include "sige/weights.h"

static void report(checker *ck, const char *name, const char *metric, double err,
                   const char *tol_text, gboolean pass) {
  printf("%-44s %-8s %-10.3e tol %-14s %s\n", name, metric, err, tol_text, pass ? "PASS" : "FAIL");
  if (pass)
    ck->passed++;
  else
    ck->failed++;
  fflush(stdout);
}

void report_error(checker *ck, const char *name, GError *error) {
  printf("%-44s ERROR    %s  FAIL\n", name, error ? error->message : "?");
  ck->failed++;
  g_clear_error(&error);
}

void compare(checker *ck, const char *name, const sige_tensor *ours, const char *tol_name) {
  GError *error = NULL;
  gboolean rms_rel;
  double tol;
  const sige_tensor *ref = sige_weights_get(ck->io, name);
  if (!ref) {
    g_set_error(&error, SIGE_ERROR, SIGE_ERROR_MISSING, "io.safetensors has no '%s'", name);
    report_error(ck, name, error);
    return;
  }
  if (!sige_case_tolerance(&ck->cs, tol_name, &rms_rel, &tol, &error)) {
    report_error(ck, name, error);
    return;
  }
  if (ref->numel != ours->numel) {
    char a[64], b[64];
    g_set_error(&error, SIGE_ERROR, SIGE_ERROR_SHAPE, "shape %s, reference %s",
                sige_tensor_shape_str(ours, a, sizeof a), sige_tensor_shape_str(ref, b, sizeof b));
    report_error(ck, name, error);
    return;
  }
  double max_abs = 0, sd = 0, sr = 0;
  gboolean finite = TRUE;
  for (size_t i = 0; i < ref->numel; i++) {
    double d = (double)ours->data[i] - ref->data[i];
    if (!isfinite(d)) finite = FALSE;
    max_abs = fmax(max_abs, fabs(d));
    sd += d * d;
    sr += (double)ref->data[i] * ref->data[i];
  }
  double err = rms_rel ? sqrt(sd / fmax(sr, 1e-30)) : max_abs;
  char tol_text[48];
  g_snprintf(tol_text, sizeof tol_text, "%s %.1e", rms_rel ? "rms_rel" : "abs", tol);
  report(ck, name, rms_rel ? "rms_rel" : "abs", finite ? err : INFINITY, tol_text,
         finite && err <= tol);
}

void compare_mask(checker *ck, const char *name, const sige_mask *m) {
  const sige_tensor *ref = sige_weights_get(ck->io, name);
  if (!ref) {
    GError *e = g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING, "io.safetensors has no '%s'", name);
    report_error(ck, name, e);
    return;
  }
  int64_t bad = 0;
  if (!m || ref->numel != (size_t)m->h * m->w || ref->shape[0] != m->h) {
    bad = (int64_t)ref->numel;
  } else {
    for (size_t i = 0; i < ref->numel; i++) bad += (m->data[i] != 0) != (ref->data[i] != 0);
  }
  report(ck, name, "mismatch", (double)bad, "exact", bad == 0);
}

/* The <prefix>HxW/bBxB/sSxS/oOxO[/k] entries for edit `suffix`. */
void compare_active_indices_named(checker *ck, const sige_mask_pyramid *pyr, const char *prefix,
                                  const char *suffix) {
  guint n;
  const char *const *names = sige_weights_names(ck->io, &n);
  for (guint i = 0; i < n; i++) {
    int h, w, b, b2, s, s2, o, o2, consumed = 0;
    if (!g_str_has_prefix(names[i], prefix) ||
        sscanf(names[i] + strlen(prefix), "%dx%d/b%dx%d/s%dx%d/o%dx%d%n", &h, &w, &b, &b2, &s,
               &s2, &o, &o2, &consumed) != 8)
      continue;
    consumed += (int)strlen(prefix);
    if (strcmp(names[i] + consumed, suffix) != 0) continue;
    const sige_tensor *ref = sige_weights_get(ck->io, names[i]);
    const sige_mask *m = sige_mask_pyramid_get(pyr, h, w);
    /* the geometry only matters through block, block stride and offset */
    sige_block_geometry g = {.kernel = b, .stride = 1, .offset = o, .block = b,
                             .block_stride = s, .out_block = s};
    int64_t bad = -1;
    if (m) {
      g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
      if ((size_t)ab->n * 2 == ref->numel) {
        bad = 0;
        for (int j = 0; j < 2 * ab->n; j++) bad += ab->corners[j] != (int)ref->data[j];
      } else {
        bad = llabs((int64_t)ab->n - (int64_t)ref->numel / 2);
      }
    }
    report(ck, names[i], "mismatch", bad < 0 ? INFINITY : (double)bad, "exact", bad == 0);
  }
}

static void compare_active_indices(checker *ck, const sige_mask_pyramid *pyr, const char *suffix) {
  compare_active_indices_named(ck, pyr, "active_indices/", suffix);
}

static void compare_pyramid(checker *ck, const sige_mask *diff, int min_h, int min_w,
                            int dilation, float threshold, const char *prefix,
                            const char *ai_suffix) {
  g_autoptr(sige_mask_pyramid) pyr = sige_mask_pyramid_new(diff, min_h, min_w, dilation, threshold);
  guint n;
  const char *const *names = sige_weights_names(ck->io, &n);
  for (guint i = 0; i < n; i++) {
    int h, w, consumed = 0;
    if (!g_str_has_prefix(names[i], prefix)) continue;
    if (sscanf(names[i] + strlen(prefix), "%dx%d%n", &h, &w, &consumed) != 2 ||
        names[i][strlen(prefix) + consumed] != '\0')
      continue;
    compare_mask(ck, names[i], sige_mask_pyramid_get(pyr, h, w));
  }
  compare_active_indices(ck, pyr, ai_suffix);
}

static sige_tensor *semantic(checker *ck, const sige_spade_config *cfg, int k, GError **error) {
  g_autofree char *ln = g_strdup_printf("label/%d", k);
  g_autofree char *in = g_strdup_printf("instance/%d", k);
  const sige_tensor *label = sige_weights_require(ck->io, ln, 2, NULL, error);
  if (!label) return NULL;
  const sige_tensor *inst = cfg->contain_instance ? sige_weights_require(ck->io, in, 2, NULL, error)
                                                  : NULL;
  if (cfg->contain_instance && !inst) return NULL;
  const int h = (int)label->shape[0], w = (int)label->shape[1];
  g_autofree int32_t *l = g_new(int32_t, label->numel);
  g_autofree int32_t *ins = inst ? g_new(int32_t, inst->numel) : NULL;
  for (size_t i = 0; i < label->numel; i++) l[i] = (int32_t)label->data[i];
  for (size_t i = 0; inst && i < inst->numel; i++) ins[i] = (int32_t)inst->data[i];
  return sige_semantic_input(l, ins, h, w, cfg->label_nc, error);
}

static int count_edits(checker *ck) {
  int k = 0;
  for (;; k++) {
    g_autofree char *ln = g_strdup_printf("label/%d", k);
    if (!sige_weights_contains(ck->io, ln)) break;
  }
  return k;
}

static void check_spade(checker *ck, const sige_model *model, const sige_spade_config *cfg,
                        gboolean dense, gboolean sparse) {
  GError *error = NULL;
  const int n = count_edits(ck);
  if (n == 0) {
    report_error(ck, "label/0", g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING, "no label/0 in io"));
    return;
  }
  sige_tensor **sem = g_new0(sige_tensor *, n);
  for (int k = 0; k < n; k++) {
    g_autofree char *name = g_strdup_printf("label/%d", k);
    if (!(sem[k] = semantic(ck, cfg, k, &error))) {
      report_error(ck, name, error);
      goto out;
    }
  }
  for (int k = 0; dense && k < n; k++) {
    g_autofree char *name = g_strdup_printf("out_dense/%d", k);
    g_autoptr(sige_tensor) out = NULL;
    if (!sige_model_forward_dense(model, ck->ctx, sem[k], 0, &out, &error))
      report_error(ck, name, error);
    else
      compare(ck, name, out, "full_vs_dense");
  }
  if (!sparse) goto out;
  /* masks and active blocks of each edit (diffed against the previous one) */
  for (int k = 1; k < n; k++) {
    g_autoptr(sige_mask) raw = sige_mask_from_diff(sem[k - 1], sem[k], cfg->sparse.diff_eps);
    g_autoptr(sige_mask) diff = sige_mask_cross_dilate(raw, cfg->sparse.mask_dilate_radius);
    g_autofree char *dn = g_strdup_printf("diff_mask/%d", k);
    g_autofree char *prefix = g_strdup_printf("mask/%d/", k);
    g_autofree char *suffix = g_strdup_printf("/%d", k);
    compare_mask(ck, dn, diff);
    const sige_sparse_config *sp = &cfg->sparse;
    int min_w = sp->pyramid_min_w ? sp->pyramid_min_w : cfg->crop_size >> cfg->num_upsampling_layers;
    int min_h = sp->pyramid_min_h ? sp->pyramid_min_h : (int)(min_w / cfg->aspect_ratio + 0.5);
    compare_pyramid(ck, diff, min_h, min_w, sp->pyramid_dilation, sp->pyramid_threshold, prefix,
                    suffix);
  }
  {
    sige_session_options opts;
    sige_session_options_init(&opts);
    opts.n_threads = ck->threads;
    opts.device = ck->device;
    opts.full_pass_above = 2.0; /* always sparse: this is what the reference computed */
    g_autoptr(sige_session) s = sige_session_new(model, &opts, &error);
    if (!s || !sige_session_snapshot(s, sem[0], NULL, &error)) {
      report_error(ck, "out_sparse (snapshot)", error);
      goto out;
    }
    for (int k = 1; k < n; k++) {
      g_autofree char *name = g_strdup_printf("out_sparse/%d", k);
      g_autoptr(sige_tensor) out = NULL;
      if (!sige_session_regenerate(s, sem[k], NULL, NULL, NULL, &out, NULL, &error)) {
        report_error(ck, name, error);
        goto out;
      }
      compare(ck, name, out, "sparse_vs_reference");
    }
  }
out:
  for (int k = 0; k < n; k++) sige_tensor_free(sem[k]);
  g_free(sem);
}

/* What a diffusion UNet case names its tensors and how its mask is made. */
typedef struct {
  const char *time_key;       /* "t" (DDPM timestep) or "logsnr" (PD) */
  const char *noisy[2];       /* the model inputs: original, edited */
  float diff_eps;
  int dilate_radius, min_res, dilation;
  float threshold;
} unet_case;

/* One UNet forward: dense on both noisy inputs, the mask of the clean images
 * (and its pyramid and active blocks), then a full pass on the original and
 * a sparse pass on the edit with that mask. */
static void check_unet(checker *ck, const sige_model *model, const unet_case *uc,
                       gboolean dense, gboolean sparse) {
  GError *error = NULL;
  const sige_tensor *t = sige_weights_get(ck->io, uc->time_key);
  const char *outs[2] = {"out_dense_orig", "out_dense_edit"};
  for (int i = 0; dense && i < 2; i++) {
    const sige_tensor *x = sige_weights_require(ck->io, uc->noisy[i], 4, NULL, &error);
    g_autoptr(sige_tensor) out = NULL;
    if (!x || !t || !sige_model_forward_dense(model, ck->ctx, x, t->data[0], &out, &error)) {
      if (!t && !error)
        error = g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING, "io has no '%s'", uc->time_key);
      report_error(ck, outs[i], error);
      continue;
    }
    compare(ck, outs[i], out, "full_vs_dense");
  }
  if (!sparse) return;
  const sige_tensor *a = sige_weights_get(ck->io, "x0_orig");
  const sige_tensor *b = sige_weights_get(ck->io, "x0_edit");
  if (!a || !b) {
    report_error(ck, "diff_mask", g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING, "no x0_orig/x0_edit"));
    return;
  }
  g_autoptr(sige_mask) raw = sige_mask_from_diff(a, b, uc->diff_eps);
  g_autoptr(sige_mask) diff = sige_mask_cross_dilate(raw, uc->dilate_radius);
  compare_mask(ck, "diff_mask", diff);
  compare_pyramid(ck, diff, uc->min_res, uc->min_res, uc->dilation, uc->threshold, "mask/", "");
  const sige_tensor *xo = sige_weights_get(ck->io, uc->noisy[0]);
  const sige_tensor *xe = sige_weights_get(ck->io, uc->noisy[1]);
  if (!xo || !xe || !t) {
    report_error(ck, "out_sparse_edit",
                 g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING, "io has no %s, %s or %s",
                             uc->noisy[0], uc->noisy[1], uc->time_key));
    return;
  }
  sige_session_options opts;
  sige_session_options_init(&opts);
  opts.n_threads = ck->threads;
  opts.device = ck->device;
  opts.timestep = t->data[0];
  opts.full_pass_above = 2.0;
  g_autoptr(sige_session) s = sige_session_new(model, &opts, &error);
  g_autoptr(sige_tensor) out = NULL;
  if (!s || !sige_session_snapshot(s, xo, NULL, &error) ||
      !sige_session_regenerate_masked(s, xe, diff, NULL, NULL, NULL, &out, NULL, &error)) {
    report_error(ck, "out_sparse_edit", error);
    return;
  }
  compare(ck, "out_sparse_edit", out, "sparse_vs_reference");
}

#define UNET_CASE(cfg, key, orig, edit)                                                    \
  ((unet_case){key, {orig, edit}, (cfg)->sparse.diff_eps, (cfg)->sparse.mask_dilate_radius,  \
               (cfg)->sparse.pyramid_min_h ? (cfg)->sparse.pyramid_min_h                     \
                                           : (cfg)->image_size >> ((cfg)->n_ch_mult - 1),    \
               (cfg)->sparse.pyramid_dilation, (cfg)->sparse.pyramid_threshold})

static void check_ddpm(checker *ck, const sige_model *model, const sige_ddpm_config *cfg,
                       gboolean dense, gboolean sparse) {
  const unet_case uc = UNET_CASE(cfg, "t", "xt_orig", "xt_edit");
  check_unet(ck, model, &uc, dense, sparse);
}

/* The PD UNet takes its log-SNR as the time input. */
static void check_pd(checker *ck, const sige_model *model, const sige_pd_config *cfg,
                     gboolean dense, gboolean sparse) {
  const unet_case uc = UNET_CASE(cfg, "logsnr", "z_orig", "z_edit");
  check_unet(ck, model, &uc, dense, sparse);
}

/* The SD UNet: dense on both noisy latents with the case's context. */
static void check_sd_unet(checker *ck, const sige_model *model) {
  const char *ins[2] = {"xt_orig", "xt_edit"}, *outs[2] = {"out_dense_orig", "out_dense_edit"};
  for (int i = 0; i < 2; i++) {
    GError *error = NULL;
    const sige_tensor *t = sige_weights_get(ck->io, "t");
    const sige_tensor *cond = sige_weights_get(ck->io, "context");
    const sige_tensor *x = sige_weights_require(ck->io, ins[i], 4, NULL, &error);
    g_autoptr(sige_tensor) out = NULL;
    if (x && (!t || !cond))
      error = g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING, "io has no 't' or 'context'");
    if (error || !sige_model_forward_dense_cond(model, ck->ctx, x, t->data[0], cond, &out, &error)) {
      report_error(ck, outs[i], error);
      continue;
    }
    compare(ck, outs[i], out, "full_vs_dense");
  }
}

/* The SD UNet's sparse pass: the case gives the image-space difference mask
 * (it has no images, only latents), so `diff_mask` is an input here; the
 * pyramid (mask/HxW) and the active blocks of every geometry are computed
 * from it and must match exactly.  Then a recording pass on xt_orig (its
 * output must be the dense one) and a sparse pass on xt_edit. */
static void check_sd_unet_sparse(checker *ck, const sige_model *model,
                                 const sige_sd_unet_config *cfg) {
  GError *error = NULL;
  const sige_tensor *t = sige_weights_get(ck->io, "t");
  const sige_tensor *cond = sige_weights_get(ck->io, "context");
  const sige_tensor *xo = sige_weights_require(ck->io, "xt_orig", 4, NULL, &error);
  const sige_tensor *xe = xo ? sige_weights_require(ck->io, "xt_edit", 4, NULL, &error) : NULL;
  const sige_tensor *dm = xe ? sige_weights_require(ck->io, "diff_mask", 2, NULL, &error) : NULL;
  if (dm && (!t || !cond))
    error = g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING, "io has no 't' or 'context'");
  if (dm && !error && (dm->shape[0] % SIGE_H(xo) || dm->shape[1] % SIGE_W(xo)))
    error = g_error_new(SIGE_ERROR, SIGE_ERROR_SHAPE,
                        "diff_mask is %dx%d; expected a multiple of the latent's %dx%d "
                        "(image space)", (int)dm->shape[0], (int)dm->shape[1],
                        (int)SIGE_H(xo), (int)SIGE_W(xo));
  if (error) {
    report_error(ck, "out_sparse_edit", error);
    return;
  }
  g_autoptr(sige_mask) diff = sige_mask_new((int)dm->shape[0], (int)dm->shape[1]);
  for (size_t i = 0; i < dm->numel; i++) diff->data[i] = dm->data[i] != 0;
  const sige_sparse_config *sp = &cfg->sparse;
  compare_pyramid(ck, diff, sp->pyramid_min_h, sp->pyramid_min_w, sp->pyramid_dilation,
                  sp->pyramid_threshold, "mask/", "");
  g_autoptr(sige_tensor) full = NULL, out = NULL;
  if (!sige_model_forward_sparse_once(model, ck->ctx, xo, xe, t->data[0], cond, diff, FALSE,
                                      &full, &out, &error)) {
    report_error(ck, "out_sparse_edit", error);
    return;
  }
  /* the recording pass is the dense forward on xt_orig */
  compare(ck, "out_dense_orig", full, "full_vs_dense");
  compare(ck, "out_sparse_edit", out, "sparse_vs_reference");
}

/* case.json "sampler" -> sampler configuration. */
static gboolean case_sampler(checker *ck, sige_sampler_config *c, GError **error) {
  JsonNode *n = json_object_get_member(ck->cs.root, "sampler");
  if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING, "%s/case.json: no \"sampler\" object",
                ck->cs.dir);
    return FALSE;
  }
  JsonObject *o = json_node_get_object(n);
  const char *name = json_object_has_member(o, "kind") ? json_object_get_string_member(o, "kind") : "";
  g_autofree char *field = g_strdup_printf("%s/case.json sampler.kind", ck->cs.dir);
  sige_sampler_kind kind;
  if (!sige_sampler_kind_parse(field, name, &kind, error)) return FALSE;
  sige_sampler_config_init(c, kind);
  if (json_object_has_member(o, "beta_schedule") &&
      g_strcmp0(json_object_get_string_member(o, "beta_schedule"), "linear")) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s/case.json: only the linear beta schedule is supported", ck->cs.dir);
    return FALSE;
  }
#define GET_INT(k, f) if (json_object_has_member(o, k)) c->f = (int)json_object_get_int_member(o, k)
#define GET_DBL(k, f) if (json_object_has_member(o, k)) c->f = json_object_get_double_member(o, k)
  GET_INT("total_steps", total_steps);
  GET_INT("noise_level", noise_level);
  GET_INT("sample_steps", sample_steps);
  GET_INT("order", order);
  GET_DBL("beta_start", beta_start);
  GET_DBL("beta_end", beta_end);
  GET_DBL("logsnr_min", logsnr_min);
  GET_DBL("logsnr_max", logsnr_max);
  if (json_object_has_member(o, "lower_order_final"))
    c->lower_order_final = json_object_get_boolean_member(o, "lower_order_final");
#undef GET_INT
#undef GET_DBL
  if (json_object_has_member(o, "first_step_index")) {
    /* the timestep the published runner starts from: ours must agree */
    const int want = (int)json_object_get_int_member(o, "first_step_index");
    g_autoptr(sige_sampler) smp = sige_sampler_new(c, error);
    if (!smp) return FALSE;
    if (sige_sampler_timestep(smp, 0) != want) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  "%s/case.json: first_step_index %d, but the schedule starts at timestep %d",
                  ck->cs.dir, want, sige_sampler_timestep(smp, 0));
      return FALSE;
    }
  }
  return TRUE;
}

/* SDEdit through the session: snapshot x0_orig, regenerate x0_edit (DDPM:
 * sdedit_sparse; PD: sampled_sparse). */
static void check_sdedit(checker *ck, const sige_model *model) {
  GError *error = NULL;
  const char *name = sige_weights_contains(ck->io, "sdedit_sparse")     ? "sdedit_sparse"
                     : sige_weights_contains(ck->io, "sampled_sparse") ? "sampled_sparse"
                                                                         : NULL;
  if (!name) return;
  const char *tol = !strcmp(name, "sdedit_sparse") ? "sdedit_vs_reference" : "sampled_vs_reference";
  sige_session_options opts;
  sige_session_options_init(&opts);
  opts.n_threads = ck->threads;
  opts.device = ck->device;
  opts.full_pass_above = 2.0;
  opts.sdedit = TRUE;
  const sige_tensor *a = sige_weights_get(ck->io, "x0_orig");
  const sige_tensor *b = sige_weights_get(ck->io, "x0_edit");
  const sige_tensor *noise = sige_weights_get(ck->io, "noise");
  g_autoptr(sige_session) s = NULL;
  g_autoptr(sige_tensor) out = NULL;
  if (!a || !b || !noise)
    error = g_error_new(SIGE_ERROR, SIGE_ERROR_MISSING, "io has no x0_orig, x0_edit or noise");
  if (!error && case_sampler(ck, &opts.sampler, &error) &&
      (s = sige_session_new(model, &opts, &error)) && sige_session_set_noise(s, noise, &error) &&
      sige_session_snapshot(s, a, NULL, &error) &&
      sige_session_regenerate(s, b, NULL, NULL, NULL, &out, NULL, &error))
    compare(ck, name, out, tol);
  else
    report_error(ck, name, error);
}

/* The vocabulary: --vocab, else the installed file, else the source tree's
 * (a run from the build tree before `meson install`). */
static char *clip_vocab_path(const char *option) {
  if (option) return g_strdup(option);
  if (g_file_test(SIGE_CLIP_VOCAB_INSTALLED, G_FILE_TEST_EXISTS))
    return g_strdup(SIGE_CLIP_VOCAB_INSTALLED);
  return g_strdup(SIGE_CLIP_VOCAB_SOURCE);
}

/* The CLIP text encoder: the tokenizer's ids for the case's prompts must
 * equal `tokens`; the embeddings, every layer's output (hidden_states/i)
 * and last_hidden_state are compared under full_vs_dense. */
static void check_clip_text(checker *ck, const sige_weights *w, const char *vocab_option) {
  GError *error = NULL;
  sige_clip_text_config cfg;
  g_auto(GStrv) prompts = NULL;
  g_autofree char *vocab = clip_vocab_path(vocab_option);
  g_autoptr(sige_clip_tokenizer) tok = NULL;
  if (!sige_case_clip_text_config(&ck->cs, &cfg, &error) ||
      !(prompts = sige_case_prompts(&ck->cs, &error)) ||
      !(tok = sige_clip_tokenizer_new_bpe(vocab, &error))) {
    report_error(ck, "clip-text setup", error);
    return;
  }
  /* the case's weights are the SD single-file names unless they are the
   * diffusers text_encoder's */
  cfg.sd_single_file = !sige_weights_contains(w, "text_model.embeddings.token_embedding.weight");
  const int n = (int)g_strv_length(prompts), len = cfg.context_length;
  g_autofree int32_t *ids = g_new(int32_t, (size_t)n * len);
  for (int i = 0; i < n; i++)
    if (!sige_clip_tokenize(tok, prompts[i], len, ids + (size_t)i * len, &error)) {
      report_error(ck, "tokens", error);
      return;
    }
  const sige_tensor *ref = sige_weights_get(ck->io, "tokens");
  if (!ref || ref->numel != (size_t)n * len) {
    g_set_error(&error, SIGE_ERROR, SIGE_ERROR_MISSING,
                "io.safetensors has no 'tokens' of %d x %d ids", n, len);
    report_error(ck, "tokens", error);
  } else {
    size_t wrong = 0, first = 0;
    for (size_t i = 0; i < ref->numel; i++)
      if ((double)ids[i] != (double)ref->data[i] && !wrong++) first = i;
    char tol[48];
    g_snprintf(tol, sizeof tol, "exact");
    if (wrong)
      printf("tokens: first difference at prompt %zu token %zu: ours %d, reference %.0f\n",
             first / len, first % len, ids[first], (double)ref->data[first]);
    report(ck, "tokens", "wrong", (double)wrong, tol, wrong == 0);
  }
  g_autoptr(sige_model) model = sige_model_new_clip_text(&cfg, w, &error);
  if (!model) {
    report_error(ck, "clip-text model", error);
    return;
  }
  g_autoptr(GPtrArray) hidden = g_ptr_array_new_with_free_func((GDestroyNotify)sige_tensor_free);
  g_autoptr(sige_tensor) last = NULL;
  if (!sige_clip_text_encode(model, ck->ctx, ids, n, &last, hidden, &error)) {
    report_error(ck, "last_hidden_state", error);
    return;
  }
  for (guint i = 0; i < hidden->len; i++) {
    g_autofree char *name = g_strdup_printf("hidden_states/%u", i);
    compare(ck, name, g_ptr_array_index(hidden, i), "full_vs_dense");
  }
  compare(ck, "last_hidden_state", last, "full_vs_dense");
}

int sige_cmd_check_reference(int argc, char **argv) {
  g_autofree char *mode = NULL, *weights_file = NULL, *device_name = NULL, *vocab = NULL;
  int threads = 0;
  GOptionEntry entries[] = {
      {"mode", 'm', 0, G_OPTION_ARG_STRING, &mode, "dense, sparse, sampler or all (default)", "MODE"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "threads (default: SIGE_NUM_THREADS or all cores)", "N"},
      {"weights", 'w', 0, G_OPTION_ARG_FILENAME, &weights_file,
       "use these weights (safetensors or PyTorch checkpoint, any known key layout) instead of "
       "the case's weights.safetensors", "FILE"},
      {"device", 'd', 0, G_OPTION_ARG_STRING, &device_name, SIGE_CLI_DEVICE_HELP, "DEVICE"},
      {"vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab,
       "CLIP BPE vocabulary for clip-text cases (default: the installed "
       "bpe_simple_vocab_16e6.txt.gz)", "FILE"},
      {NULL}};
  g_autoptr(GOptionContext) oc = g_option_context_new("CASE_DIR");
  g_option_context_set_summary(oc, "Recompute a reference case (case.json, weights.safetensors, "
                                   "io.safetensors) and compare every output it can.");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &error)) return sige_cli_fail(error);
  if (argc != 2) {
    fprintf(stderr, "sige check-reference: expected one CASE_DIR\n");
    return 2;
  }
  if (!mode) mode = g_strdup("all");
  const gboolean all = !strcmp(mode, "all");
  const gboolean dense = all || !strcmp(mode, "dense");
  const gboolean sparse = all || !strcmp(mode, "sparse");
  const gboolean sampler = all || !strcmp(mode, "sampler");
  if (!dense && !sparse && !sampler) {
    fprintf(stderr, "sige check-reference: --mode %s: expected dense, sparse, sampler or all\n", mode);
    return 2;
  }
  checker ck = {0};
  ck.threads = threads;
  if (!sige_device_from_option("--device", device_name, &ck.device, &error)) return sige_cli_fail(error);
  if (!sige_case_open(&ck.cs, argv[1], &error)) {
    sige_case_close(&ck.cs);
    return sige_cli_fail(error);
  }
  const gboolean is_spade = !strcmp(ck.cs.kind, "spade-generator");
  const gboolean is_ddpm = !strcmp(ck.cs.kind, "ddpm-unet");
  const gboolean is_pd = !strcmp(ck.cs.kind, "pd-unet");
  const gboolean is_gancomp = !strcmp(ck.cs.kind, "sub-mobile-spade-generator");
  const gboolean is_clip = !strcmp(ck.cs.kind, "clip-text");
  const gboolean is_sd_unet = !strcmp(ck.cs.kind, "sd-unet");
  const gboolean is_sd_vae = !strcmp(ck.cs.kind, "sd-vae");
  const gboolean is_sd_task = !strcmp(ck.cs.kind, "sd-img2img") || !strcmp(ck.cs.kind, "sd-inpainting");
  gboolean sparse_unavailable = FALSE;
  if (!is_spade && !is_ddpm && !is_pd && !is_gancomp && !is_clip && !is_sd_unet && !is_sd_vae &&
      !is_sd_task) {
    printf("UNSUPPORTED %s\n", ck.cs.kind);
    sige_case_close(&ck.cs);
    return 3;
  }
  /* SPADE kinds have no sampler; the text encoder has only a dense pass */
  if ((sampler && !dense && !sparse && !is_ddpm && !is_pd) || (is_clip && !dense)) {
    printf("UNSUPPORTED %s --mode %s\n", ck.cs.kind, mode);
    sige_case_close(&ck.cs);
    return 3;
  }
  int status = 1;
  g_autofree char *wpath =
      weights_file ? g_strdup(weights_file) : g_build_filename(argv[1], "weights.safetensors", NULL);
  g_autofree char *iopath = g_build_filename(argv[1], "io.safetensors", NULL);
  g_autoptr(sige_weights) w = sige_weights_load_any(wpath, &error);
  g_autoptr(sige_model) model = NULL;
  if (w) ck.io = sige_weights_load_safetensors(iopath, &error);
  if (ck.io) {
    /* the device every check of this case runs on (sessions make their
     * own context on the same device) */
    if ((ck.ctx = sige_ctx_new_device(threads, ck.device, &error))) {
      printf("device: %s\n", sige_ctx_device_info(ck.ctx));
      ck.device = sige_ctx_device(ck.ctx); /* auto resolved once for every check */
    }
  }
  if (ck.ctx) {
    if (is_sd_task) {
      /* the pipelines: --mode dense, sparse or all (the task is the sampler) */
      sparse_unavailable = !check_sd_pipeline(&ck, w, dense || (sampler && !sparse), sparse);
    } else if (is_sd_vae) {
      check_sd_vae(&ck, w, dense, sparse);
    } else if (is_clip) {
      check_clip_text(&ck, w, vocab);
    } else if (is_sd_unet) {
      sige_sd_unet_config cfg;
      if (sige_case_sd_unet_config(&ck.cs, &cfg, &error) &&
          (model = sige_model_new_sd_unet(&cfg, w, &error))) {
        if (dense) check_sd_unet(&ck, model);
        if (sparse) check_sd_unet_sparse(&ck, model, &cfg);
      }
    } else if (is_spade) {
      sige_spade_config cfg;
      if (sige_case_spade_config(&ck.cs, &cfg, &error) &&
          (model = sige_model_new_spade(&cfg, w, &error))) {
        check_spade(&ck, model, &cfg, dense, sparse);
      }
    } else if (is_pd) {
      sige_pd_config cfg;
      if (sige_case_pd_config(&ck.cs, &cfg, &error) &&
          (model = sige_model_new_pd(&cfg, w, &error))) {
        check_pd(&ck, model, &cfg, dense, sparse);
        if (sampler) check_sdedit(&ck, model);
      }
    } else if (is_gancomp) {
      /* the SPADE checks (dense outputs, masks, active blocks, sequential
       * sparse edits) with the generator's SPADE settings */
      sige_gancomp_config cfg;
      if (sige_case_gancomp_config(&ck.cs, &cfg, &error) &&
          (model = sige_model_new_gancomp(&cfg, w, &error))) {
        check_spade(&ck, model, &cfg.base, dense, sparse);
      }
    } else {
      sige_ddpm_config cfg;
      gboolean ok = sige_case_ddpm_config(&ck.cs, &cfg, &error);
      /* the reference vectors come from the published code, bug included */
      cfg.published_attention_quirk = TRUE;
      if (ok && (model = sige_model_new_ddpm(&cfg, w, &error))) {
        check_ddpm(&ck, model, &cfg, dense, sparse);
        if (sampler) check_sdedit(&ck, model);
      }
    }
  }
  if (error) {
    status = sige_cli_fail(error);
  } else {
    if (ck.not_checked) printf("%d not checked (not counted as passed)\n", ck.not_checked);
    printf("%d passed, %d failed\n", ck.passed, ck.failed);
    status = ck.failed == 0 && ck.passed > 0 ? 0 : 1;
    /* a check this build cannot run yet: UNSUPPORTED, never passed */
    if (status == 0 && sparse_unavailable) status = 3;
  }
  sige_weights_free(ck.io);
  sige_ctx_free(ck.ctx);
  sige_case_close(&ck.cs);
  return status;
}
