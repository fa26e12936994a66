#include "case_config.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "sige/error.h"
#include "sige/json_bounds.h"

/* Bounds of a case description (the published ones are 2-5 KiB and nest 4
 * levels): far above any real case, far below what breaks the parser. */
#define CASE_JSON_MAX (16 << 20)
#define CASE_JSON_MAX_DEPTH 64

gboolean sige_case_open(sige_case *c, const char *dir, GError **error) {
  memset(c, 0, sizeof *c);
  c->dir = g_strdup(dir);
  g_autofree char *path = g_build_filename(dir, "case.json", NULL);
  /* A case.json is a few KiB: read it whole (bounded), and bound its
   * nesting before json-glib parses it recursively */
  g_autofree char *text = NULL;
  gsize len = 0;
  GStatBuf st;
  if (g_stat(path, &st) == 0 && st.st_size > CASE_JSON_MAX) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: %" G_GINT64_FORMAT " bytes, more than "
                "the %d MiB a case description may have", path, (gint64)st.st_size,
                CASE_JSON_MAX >> 20);
    return FALSE;
  }
  if (!g_file_get_contents(path, &text, &len, error)) return FALSE;
  gsize at = 0;
  if (sige_json_check_bounds(text, len, CASE_JSON_MAX_DEPTH, 0, &at) != SIGE_JSON_OK) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: JSON nested deeper than %d levels (at byte %" G_GSIZE_FORMAT ")", path,
                CASE_JSON_MAX_DEPTH, at);
    return FALSE;
  }
  c->parser = json_parser_new();
  if (!json_parser_load_from_data(c->parser, text, (gssize)len, error)) {
    g_prefix_error(error, "%s: ", path);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root(c->parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: expected a JSON object", path);
    return FALSE;
  }
  c->root = json_node_get_object(root);
  if (!json_object_has_member(c->root, "model")) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: no \"model\" field", path);
    return FALSE;
  }
  JsonNode *model = json_object_get_member(c->root, "model");
  if (JSON_NODE_HOLDS_VALUE(model) && json_node_get_value_type(model) == G_TYPE_STRING)
    c->kind = g_strdup(json_node_get_string(model));
  if (!c->kind) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: \"model\" must be a string", path);
    return FALSE;
  }
  return TRUE;
}

void sige_case_close(sige_case *c) {
  g_clear_object(&c->parser);
  g_free(c->dir);
  g_free(c->kind);
  memset(c, 0, sizeof *c);
}

static JsonObject *section(const sige_case *c, const char *name, GError **error) {
  JsonNode *n = json_object_get_member(c->root, name);
  if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s/case.json: no \"%s\" object", c->dir,
                name);
    return NULL;
  }
  return json_node_get_object(n);
}

/* Members are read through a reader that checks their JSON type and
 * range: json-glib's typed getters only complain on stderr (a GLib
 * critical) and return 0 for a member of another type, and a double too
 * large for a float is undefined behaviour in the conversion.  The first bad
 * member fails the reader, naming it; later reads are skipped.  Optional
 * members (absent, or null) keep the default. */
typedef struct {
  const sige_case *c;
  GError **error;
  gboolean failed;
} reader;

static gboolean bad_member(reader *r, const char *k, const char *expected) {
  if (!r->failed)
    g_set_error(r->error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s/case.json: \"%s\": expected %s",
                r->c->dir, k, expected);
  r->failed = TRUE;
  return FALSE;
}

/* The member's value node, or NULL when absent, null or after a failure. */
static JsonNode *value_of(reader *r, JsonObject *o, const char *k) {
  if (r->failed) return NULL;
  JsonNode *n = json_object_get_member(o, k);
  return n && !JSON_NODE_HOLDS_NULL(n) ? n : NULL;
}

static gboolean node_int(reader *r, JsonNode *n, const char *k, int *v) {
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
    return bad_member(r, k, "an integer");
  const gint64 x = json_node_get_int(n);
  if (x < G_MININT || x > G_MAXINT) return bad_member(r, k, "an integer of at most 31 bits");
  *v = (int)x;
  return TRUE;
}

static gboolean node_number(reader *r, JsonNode *n, const char *k, double *v) {
  if (!JSON_NODE_HOLDS_VALUE(n)) return bad_member(r, k, "a number");
  const GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64)
    *v = (double)json_node_get_int(n);
  else if (t == G_TYPE_DOUBLE)
    *v = json_node_get_double(n);
  else
    return bad_member(r, k, "a number");
  return TRUE;
}

static void get_int(reader *r, JsonObject *o, const char *k, int *v) {
  JsonNode *n = value_of(r, o, k);
  if (n) node_int(r, n, k, v);
}
static void get_double(reader *r, JsonObject *o, const char *k, double *v) {
  JsonNode *n = value_of(r, o, k);
  double x;
  if (n && node_number(r, n, k, &x)) {
    if (!isfinite(x)) bad_member(r, k, "a finite number");
    else *v = x;
  }
}
static void get_float(reader *r, JsonObject *o, const char *k, float *v) {
  double x = *v;
  get_double(r, o, k, &x);
  if (r->failed) return;
  if (fabs(x) > G_MAXFLOAT) bad_member(r, k, "a number in the range of a float");
  else *v = (float)x;
}
static void get_bool(reader *r, JsonObject *o, const char *k, gboolean *v) {
  JsonNode *n = value_of(r, o, k);
  if (!n) return;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
    bad_member(r, k, "true or false");
  else
    *v = json_node_get_boolean(n);
}
/* A string member, or NULL (absent, null, or not a string: then failed). */
static const char *get_string(reader *r, JsonObject *o, const char *k) {
  JsonNode *n = value_of(r, o, k);
  if (!n) return NULL;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
    bad_member(r, k, "a string");
    return NULL;
  }
  return json_node_get_string(n);
}
/* An integer or a list of integers (at most max are kept); -1 when absent. */
static int get_int_list(reader *r, JsonObject *o, const char *k, int *v, int max) {
  JsonNode *n = value_of(r, o, k);
  if (!n) return -1;
  if (JSON_NODE_HOLDS_VALUE(n)) return node_int(r, n, k, &v[0]) ? 1 : -1;
  if (!JSON_NODE_HOLDS_ARRAY(n)) {
    bad_member(r, k, "an integer or a list of integers");
    return -1;
  }
  JsonArray *a = json_node_get_array(n);
  int len = MIN((int)json_array_get_length(a), max);
  for (int i = 0; i < len; i++)
    if (!node_int(r, json_array_get_element(a, i), k, &v[i])) return -1;
  return len;
}

gboolean sige_case_spade_config(const sige_case *c, sige_spade_config *cfg, GError **error) {
  sige_spade_config_init(cfg);
  reader r = {c, error, FALSE};
  JsonObject *m = section(c, "config", error);
  if (!m) return FALSE;
  get_int(&r, m, "ngf", &cfg->ngf);
  get_int(&r, m, "label_nc", &cfg->label_nc);
  get_bool(&r, m, "contain_instance", &cfg->contain_instance);
  get_int(&r, m, "crop_size", &cfg->crop_size);
  get_double(&r, m, "aspect_ratio", &cfg->aspect_ratio);
  get_float(&r, m, "batchnorm_eps", &cfg->batchnorm_eps);
  const char *ups = get_string(&r, m, "num_upsampling_layers");
  if (r.failed) return FALSE;
  if (ups) {
    const char *s = ups;
    if (!g_strcmp0(s, "normal")) cfg->num_upsampling_layers = 5;
    else if (!g_strcmp0(s, "more")) cfg->num_upsampling_layers = 6;
    else if (!g_strcmp0(s, "most")) cfg->num_upsampling_layers = 7;
    else {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s/case.json: num_upsampling_layers \"%s\": expected normal, more or most",
                  c->dir, s ? s : "");
      return FALSE;
    }
  }
  JsonObject *s = section(c, "sige", error);
  if (!s) return FALSE;
  get_int(&r, s, "main_block_size", &cfg->sparse.block_size);
  get_int(&r, s, "shortcut_block_size", &cfg->sparse.shortcut_block_size);
  get_int(&r, s, "num_sparse_layers", &cfg->num_sparse_layers);
  get_float(&r, s, "diff_eps", &cfg->sparse.diff_eps);
  get_int(&r, s, "mask_dilate_radius", &cfg->sparse.mask_dilate_radius);
  get_int(&r, s, "downsample_dilation", &cfg->sparse.pyramid_dilation);
  get_float(&r, s, "downsample_threshold", &cfg->sparse.pyramid_threshold);
  int mr[2];
  int n = get_int_list(&r, s, "downsample_min_res", mr, 2);
  if (n == 1) cfg->sparse.pyramid_min_h = cfg->sparse.pyramid_min_w = mr[0];
  if (n == 2) {
    cfg->sparse.pyramid_min_h = mr[0];
    cfg->sparse.pyramid_min_w = mr[1];
  }
  return !r.failed;
}

gboolean sige_case_gancomp_config(const sige_case *c, sige_gancomp_config *cfg, GError **error) {
  sige_gancomp_config_init(cfg);
  if (!sige_case_spade_config(c, &cfg->base, error)) return FALSE;
  reader r = {c, error, FALSE};
  JsonObject *m = section(c, "config", error);
  if (!m) return FALSE;
  get_float(&r, m, "instancenorm_eps", &cfg->instancenorm_eps);
  const char *norm = get_string(&r, m, "separable_conv_norm");
  const char *cs = get_string(&r, m, "config_str");
  if (r.failed) return FALSE;
  if (!norm) norm = "instance";
  if (g_strcmp0(norm, "instance")) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s/case.json: separable_conv_norm \"%s\": only instance is supported", c->dir,
                norm ? norm : "");
    return FALSE;
  }
  if (cs && !sige_gancomp_parse_channels(cs, cfg->channels, error)) {
    g_prefix_error(error, "%s/case.json: ", c->dir);
    return FALSE;
  }
  return TRUE;
}

/* The "sige" section of a UNet case: the DDPM and PD cases share its keys. */
static gboolean unet_sige_section(const sige_case *c, sige_sparse_config *sp, int *threshold,
                                  GError **error) {
  reader r = {c, error, FALSE};
  JsonObject *s = section(c, "sige", error);
  if (!s) return FALSE;
  get_int(&r, s, "block_size_normal", &sp->block_size);
  get_int(&r, s, "block_size_instance", &sp->shortcut_block_size);
  get_int(&r, s, "sparse_resolution_threshold", threshold);
  get_float(&r, s, "diff_eps", &sp->diff_eps);
  get_int(&r, s, "mask_dilate_radius", &sp->mask_dilate_radius);
  get_int(&r, s, "downsample_dilation", &sp->pyramid_dilation);
  get_float(&r, s, "downsample_threshold", &sp->pyramid_threshold);
  get_int(&r, s, "downsample_min_res", &sp->pyramid_min_h);
  sp->pyramid_min_w = sp->pyramid_min_h;
  return !r.failed;
}

gboolean sige_case_ddpm_config(const sige_case *c, sige_ddpm_config *cfg, GError **error) {
  sige_ddpm_config_init(cfg);
  reader r = {c, error, FALSE};
  JsonObject *m = section(c, "config", error);
  if (!m) return FALSE;
  get_int(&r, m, "ch", &cfg->ch);
  int n = get_int_list(&r, m, "ch_mult", cfg->ch_mult, 8);
  if (n > 0) cfg->n_ch_mult = n;
  get_int(&r, m, "num_res_blocks", &cfg->num_res_blocks);
  n = get_int_list(&r, m, "attn_resolutions", cfg->attn_resolutions, 8);
  if (n >= 0) cfg->n_attn_resolutions = n;
  get_int(&r, m, "in_ch", &cfg->in_ch);
  get_int(&r, m, "out_ch", &cfg->out_ch);
  get_int(&r, m, "image_size", &cfg->image_size);
  get_bool(&r, m, "resamp_with_conv", &cfg->resamp_with_conv);
  get_int(&r, m, "groupnorm_groups", &cfg->groupnorm_groups);
  get_float(&r, m, "groupnorm_eps", &cfg->groupnorm_eps);
  if (r.failed) return FALSE;
  return unet_sige_section(c, &cfg->sparse, &cfg->sparse_resolution_threshold, error);
}

gboolean sige_case_pd_config(const sige_case *c, sige_pd_config *cfg, GError **error) {
  sige_pd_config_init(cfg);
  reader r = {c, error, FALSE};
  JsonObject *m = section(c, "config", error);
  if (!m) return FALSE;
  get_int(&r, m, "ch", &cfg->ch);
  int n = get_int_list(&r, m, "ch_mult", cfg->ch_mult, 8);
  if (n > 0) cfg->n_ch_mult = n;
  get_int(&r, m, "num_res_blocks", &cfg->num_res_blocks);
  n = get_int_list(&r, m, "attn_resolutions", cfg->attn_resolutions, 8);
  if (n >= 0) cfg->n_attn_resolutions = n;
  if (json_object_has_member(m, "head_dim") || json_object_has_member(m, "num_heads")) {
    cfg->head_dim = cfg->num_heads = 0;
    get_int(&r, m, "head_dim", &cfg->head_dim);   /* null: 0, use the other */
    get_int(&r, m, "num_heads", &cfg->num_heads);
  }
  get_int(&r, m, "temb_ch", &cfg->temb_ch);
  get_int(&r, m, "in_ch", &cfg->in_ch);
  get_int(&r, m, "out_ch", &cfg->out_ch);
  get_int(&r, m, "image_size", &cfg->image_size);
  get_int(&r, m, "groupnorm_groups", &cfg->groupnorm_groups);
  get_float(&r, m, "groupnorm_eps", &cfg->groupnorm_eps);
  const char *logsnr = get_string(&r, m, "logsnr_input_type");
  if (r.failed) return FALSE;
  if (logsnr && strcmp(logsnr, "inv_cos")) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s/case.json: logsnr_input_type \"%s\": only inv_cos is supported", c->dir,
                logsnr);
    return FALSE;
  }
  return unet_sige_section(c, &cfg->sparse, &cfg->sparse_resolution_threshold, error);
}

gboolean sige_case_sd_unet_config(const sige_case *c, sige_sd_unet_config *cfg, GError **error) {
  sige_sd_unet_config_init(cfg);
  reader r = {c, error, FALSE};
  JsonObject *m = section(c, "config", error);
  if (!m) return FALSE;
  gboolean spatial = TRUE, legacy = FALSE;
  get_bool(&r, m, "use_spatial_transformer", &spatial);
  get_bool(&r, m, "legacy", &legacy);
  if (r.failed) return FALSE;
  if (!spatial || legacy) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s/case.json: only the SD 1.x UNet (use_spatial_transformer true, legacy "
                "false) is supported", c->dir);
    return FALSE;
  }
  get_int(&r, m, "model_channels", &cfg->model_channels);
  int n = get_int_list(&r, m, "channel_mult", cfg->channel_mult, 8);
  if (n > 0) cfg->n_channel_mult = n;
  get_int(&r, m, "num_res_blocks", &cfg->num_res_blocks);
  n = get_int_list(&r, m, "attention_resolutions", cfg->attention_resolutions, 8);
  if (n >= 0) cfg->n_attention_resolutions = n;
  get_int(&r, m, "num_heads", &cfg->num_heads);
  get_int(&r, m, "transformer_depth", &cfg->transformer_depth);
  get_int(&r, m, "context_dim", &cfg->context_dim);
  get_int(&r, m, "in_channels", &cfg->in_channels);
  get_int(&r, m, "out_channels", &cfg->out_channels);
  int size[2];
  if (get_int_list(&r, m, "latent_size", size, 2) == 2) cfg->latent_h = size[0], cfg->latent_w = size[1];
  get_int(&r, m, "groupnorm_groups", &cfg->groupnorm_groups);
  get_float(&r, m, "groupnorm_eps", &cfg->groupnorm_eps);
  get_float(&r, m, "transformer_norm_groupnorm_eps", &cfg->transformer_norm_eps);
  get_float(&r, m, "transformer_layernorm_eps", &cfg->layernorm_eps);
  /* the sparse settings (optional: SD's published defaults otherwise) */
  JsonNode *sn = json_object_get_member(c->root, "sige");
  if (sn && JSON_NODE_HOLDS_OBJECT(sn)) {
    JsonObject *s = json_node_get_object(sn);
    sige_sparse_config *sp = &cfg->sparse;
    get_int(&r, s, "block_size_normal", &sp->block_size);
    get_int(&r, s, "block_size_shortcut", &sp->shortcut_block_size);
    get_int(&r, s, "block_size_transformer", &cfg->transformer_block_size);
    get_float(&r, s, "diff_eps", &sp->diff_eps);
    get_int(&r, s, "mask_dilate_radius", &sp->mask_dilate_radius);
    get_int(&r, s, "downsample_dilation", &sp->pyramid_dilation);
    get_float(&r, s, "downsample_threshold", &sp->pyramid_threshold);
    int mr[2];
    const int k = get_int_list(&r, s, "downsample_min_res", mr, 2);
    if (k >= 1) sp->pyramid_min_h = sp->pyramid_min_w = mr[0];
    if (k == 2) sp->pyramid_min_w = mr[1];
  }
  return !r.failed;
}

gboolean sige_case_clip_text_config(const sige_case *c, sige_clip_text_config *cfg,
                                    GError **error) {
  sige_clip_text_config_init(cfg);
  reader r = {c, error, FALSE};
  JsonObject *m = section(c, "config", error);
  if (!m) return FALSE;
  get_int(&r, m, "vocab_size", &cfg->vocab_size);
  get_int(&r, m, "context_length", &cfg->context_length);
  get_int(&r, m, "width", &cfg->width);
  get_int(&r, m, "layers", &cfg->layers);
  get_int(&r, m, "heads", &cfg->heads);
  int ratio = 4;
  get_int(&r, m, "mlp_ratio", &ratio);
  get_float(&r, m, "layernorm_eps", &cfg->layernorm_eps);
  if (r.failed) return FALSE;
  const gint64 mlp = (gint64)ratio * cfg->width; /* an int product could overflow */
  if (mlp < 1 || mlp > G_MAXINT) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s/case.json: mlp_ratio %d x width %d: expected a positive MLP width below 2^31",
                c->dir, ratio, cfg->width);
    return FALSE;
  }
  cfg->mlp_width = (int)mlp;
  return TRUE;
}

char **sige_case_prompts(const sige_case *c, GError **error) {
  JsonNode *n = json_object_get_member(c->root, "prompts");
  JsonArray *a = n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
  if (!a || json_array_get_length(a) == 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s/case.json: no \"prompts\" array of strings", c->dir);
    return NULL;
  }
  const guint len = json_array_get_length(a);
  char **out = g_new0(char *, len + 1);
  for (guint i = 0; i < len; i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s/case.json: prompts[%u] is not a string", c->dir, i);
      g_strfreev(out);
      return NULL;
    }
    out[i] = g_strdup(json_node_get_string(e));
  }
  return out;
}

gboolean sige_case_tolerance(const sige_case *c, const char *name, gboolean *rms_rel,
                             double *value, GError **error) {
  JsonObject *t = section(c, "tolerances", error);
  if (!t) return FALSE;
  reader r = {c, error, FALSE};
  const char *s = get_string(&r, t, name);
  if (r.failed) return FALSE;
  if (!s) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s/case.json: no tolerance \"%s\"", c->dir,
                name);
    return FALSE;
  }
  char *end = NULL;
  if (g_str_has_prefix(s, "abs ")) {
    *rms_rel = FALSE;
    *value = g_ascii_strtod(s + 4, &end);
  } else if (g_str_has_prefix(s, "rms_rel ")) {
    *rms_rel = TRUE;
    *value = g_ascii_strtod(s + 8, &end);
  }
  if (!end || end == s || *end != '\0' || !(*value > 0) || !isfinite(*value)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s/case.json: tolerance \"%s\" is \"%s\"; expected \"abs X\" or \"rms_rel X\"",
                c->dir, name, s);
    return FALSE;
  }
  return TRUE;
}
