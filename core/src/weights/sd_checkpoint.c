/* Stable Diffusion 1.x checkpoints: a single file or a diffusers folder,
 * split into the UNet, VAE and text encoder in single-file names
 * (sige/sd_checkpoint.h). */
#include "sige/sd_checkpoint.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "sd_internal.h"
#include "sige/error.h"

#define LIST_FEW 5

static const struct {
  const char *name;    /* sige_sd_part_name */
  const char *prefix;  /* single-file prefix */
  const char *folder;  /* diffusers subfolder */
  const char *what;    /* for messages */
  const char *const files[4]; /* diffusers weight files, in the order tried */
} parts[SIGE_SD_N_PARTS] = {
  [SIGE_SD_PART_UNET] = {"unet", "model.diffusion_model.", "unet", "UNet",
                         {"diffusion_pytorch_model.safetensors",
                          "diffusion_pytorch_model.fp16.safetensors",
                          "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin"}},
  [SIGE_SD_PART_VAE] = {"vae", "first_stage_model.", "vae", "VAE",
                        {"diffusion_pytorch_model.safetensors",
                         "diffusion_pytorch_model.fp16.safetensors",
                         "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin"}},
  [SIGE_SD_PART_TEXT_ENCODER] = {"text-encoder", "cond_stage_model.transformer.text_model.",
                                 "text_encoder", "text encoder",
                                 {"model.safetensors", "model.fp16.safetensors",
                                  "pytorch_model.bin", "pytorch_model.fp16.bin"}},
};

#define EMA_UNET "model_ema.diffusion_model"

/* Metadata the models read, carried from a single file into its parts. */
static const char *const part_meta[] = {"heads", "latent_h", "latent_w", "image_size",
                                        "scale_factor"};

/* The pipelines whose folders hold an SD 1.x UNet, VAE and CLIP text
 * encoder (model_index.json "_class_name"). */
static const char *const pipelines[] = {"StableDiffusionPipeline",
                                        "StableDiffusionImg2ImgPipeline",
                                        "StableDiffusionInpaintPipeline"};

typedef struct {
  char *path;     /* the file the part is read from; NULL when absent */
  char *missing;  /* why it is absent (folder), for the error of _part */
  int ints[G_N_ELEMENTS(part_meta)]; /* from config.json, 0 when not given */
  gboolean linear_projection;        /* unet/config.json use_linear_projection */
} part_info;

struct sige_sd_checkpoint {
  char *path;
  gboolean folder;
  sige_weights *file; /* a single file's index */
  part_info part[SIGE_SD_N_PARTS];
  gboolean ema;
  char *vocab, *merges;
  sige_sd_schedule schedule;
};

const char *sige_sd_part_name(sige_sd_part p) {
  return (unsigned)p < SIGE_SD_N_PARTS ? parts[p].name : "?";
}

const char *sige_sd_part_prefix(sige_sd_part p) {
  return (unsigned)p < SIGE_SD_N_PARTS ? parts[p].prefix : "";
}

gboolean sige_sd_part_from_name(const char *name, sige_sd_part *out) {
  for (int p = 0; p < SIGE_SD_N_PARTS; p++)
    if (!g_ascii_strcasecmp(name, parts[p].name)) return *out = (sige_sd_part)p, TRUE;
  if (!g_ascii_strcasecmp(name, "text_encoder") || !g_ascii_strcasecmp(name, "clip"))
    return *out = SIGE_SD_PART_TEXT_ENCODER, TRUE;
  return FALSE;
}

void sige_sd_schedule_init(sige_sd_schedule *s) {
  *s = (sige_sd_schedule){.num_train_timesteps = 1000, .beta_start = 0.00085, .beta_end = 0.012,
                          .schedule = SIGE_SD_BETAS_SCALED_LINEAR, .steps_offset = 1};
}

/* numpy.linspace: start + i * step, the last point exactly stop */
static double linspace(double a, double b, int n, int i) {
  if (n == 1) return a;
  if (i == n - 1) return b;
  return a + i * ((b - a) / (n - 1));
}

void sige_sd_schedule_betas(const sige_sd_schedule *s, double *betas) {
  const int n = s->num_train_timesteps;
  for (int i = 0; i < n; i++) {
    if (s->schedule == SIGE_SD_BETAS_SCALED_LINEAR) {
      const double r = linspace(sqrt(s->beta_start), sqrt(s->beta_end), n, i);
      betas[i] = r * r;
    } else {
      betas[i] = linspace(s->beta_start, s->beta_end, n, i);
    }
  }
}

gboolean sige_sd_path_is_folder(const char *path) {
  return g_file_test(path, G_FILE_TEST_IS_DIR);
}

void sige_sd_checkpoint_free(sige_sd_checkpoint *ck) {
  if (!ck) return;
  for (int p = 0; p < SIGE_SD_N_PARTS; p++) {
    g_free(ck->part[p].path);
    g_free(ck->part[p].missing);
  }
  sige_weights_free(ck->file);
  g_free(ck->vocab);
  g_free(ck->merges);
  g_free(ck->path);
  g_free(ck);
}

/* ---- where a part lies in one table ------------------------------------ */

typedef enum { NAMES_NONE, NAMES_LDM, NAMES_DIFFUSERS } naming;

typedef struct {
  naming names;
  const char *src_prefix; /* NAMES_LDM: the prefix in the table */
} part_source;

static gboolean has_prefix_key(const sige_weights *w, const char *prefix) {
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  const gsize len = strlen(prefix);
  /* names are sorted: binary search for the first name >= prefix */
  guint lo = 0, hi = n;
  while (lo < hi) {
    const guint mid = lo + (hi - lo) / 2;
    if (strcmp(names[mid], prefix) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && !strncmp(names[lo], prefix, len);
}

/* The part's keys in w: a single file's prefix, the part saved alone
 * (CompVis names without the prefix), or diffusers names. */
static part_source find_part(const sige_weights *w, sige_sd_part part) {
  part_source s = {NAMES_NONE, NULL};
#define HAS(k) sige_weights_contains(w, k)
  switch (part) {
  case SIGE_SD_PART_UNET:
    if (HAS("model.diffusion_model.time_embed.0.weight"))
      s = (part_source){NAMES_LDM, "model.diffusion_model."};
    else if (HAS("time_embed.0.weight") && HAS("input_blocks.0.0.weight"))
      s = (part_source){NAMES_LDM, ""};
    else if (HAS("time_embedding.linear_1.weight") &&
             HAS("mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"))
      s = (part_source){NAMES_DIFFUSERS, NULL};
    break;
  case SIGE_SD_PART_VAE:
    if (HAS("first_stage_model.decoder.conv_in.weight") ||
        HAS("first_stage_model.encoder.conv_in.weight"))
      s = (part_source){NAMES_LDM, "first_stage_model."};
    else if (HAS("post_quant_conv.weight") && HAS("decoder.up.0.block.0.conv1.weight"))
      s = (part_source){NAMES_LDM, ""};
    else if (HAS("post_quant_conv.weight") && HAS("decoder.up_blocks.0.resnets.0.conv1.weight"))
      s = (part_source){NAMES_DIFFUSERS, NULL};
    break;
  case SIGE_SD_PART_TEXT_ENCODER:
    if (HAS("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"))
      s = (part_source){NAMES_LDM, "cond_stage_model.transformer.text_model."};
    else if (HAS("cond_stage_model.transformer.embeddings.token_embedding.weight"))
      s = (part_source){NAMES_LDM, "cond_stage_model.transformer."}; /* older transformers */
    else if (HAS("text_model.embeddings.token_embedding.weight"))
      s = (part_source){NAMES_LDM, "text_model."}; /* diffusers / transformers */
    break;
  default:
    break;
  }
#undef HAS
  return s;
}

/* ---- building a part's table ------------------------------------------- */

static char *display(const char *path) { return g_filename_display_name(path); }

static void append_few(GString *s, GPtrArray *names) {
  for (guint i = 0; i < names->len && i < LIST_FEW; i++)
    g_string_append_printf(s, "%s'%s'", i ? ", " : "", (const char *)names->pdata[i]);
  if (names->len > LIST_FEW) g_string_append_printf(s, " and %u more", names->len - LIST_FEW);
}

/* "model.diffusion_model.input_blocks.0.0.weight" -> its EMA copy's name
 * "model_ema.diffusion_modelinput_blocks00weight" */
static char *ema_name(const char *rest) {
  GString *s = g_string_new(EMA_UNET);
  for (const char *p = rest; *p; p++)
    if (*p != '.') g_string_append_c(s, *p);
  return g_string_free(s, FALSE);
}

static gboolean same_shape(const sige_weights *w, const char *a, const char *b) {
  int na, nb;
  int64_t sa[SIGE_MAX_DIMS], sb[SIGE_MAX_DIMS];
  return sige_weights_shape(w, a, &na, sa) && sige_weights_shape(w, b, &nb, sb) && na == nb &&
         !memcmp(sa, sb, sizeof sa);
}

static gboolean copy_ldm(const sige_weights *w, sige_weights *out, sige_sd_part part,
                         const char *src_prefix, gboolean ema, const char *file,
                         GError **error) {
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  const gsize plen = strlen(src_prefix);
  for (guint i = 0; i < n; i++) {
    if (strncmp(names[i], src_prefix, plen) != 0) continue;
    const char *rest = names[i] + plen;
    g_autofree char *dst = g_strconcat(parts[part].prefix, rest, NULL);
    const char *src = names[i];
    g_autofree char *e = NULL;
    if (ema) {
      e = ema_name(rest);
      if (!sige_weights_contains(w, e)) {
        g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                    "%s: the EMA UNet was asked for, but '%s' has no EMA copy '%s'", file,
                    names[i], e);
        return FALSE;
      }
      if (!same_shape(w, names[i], e)) {
        g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                    "%s: EMA tensor '%s' and '%s' differ in shape", file, e, names[i]);
        return FALSE;
      }
      src = e;
    }
    if (!sige_weights_copy_entry(out, dst, w, src, 0, NULL, error)) return FALSE;
  }
  return TRUE;
}

/* The number of <prefix><i>. indices (max + 1). */
static int count_index(const sige_weights *w, const char *prefix) {
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  const gsize plen = strlen(prefix);
  int count = 0;
  for (guint i = 0; i < n; i++) {
    if (strncmp(names[i], prefix, plen) != 0) continue;
    guint64 v;
    g_autofree char *num = g_strndup(names[i] + plen, strcspn(names[i] + plen, "."));
    if (g_ascii_string_to_unsigned(num, 10, 0, 1000, &v, NULL) && (int)v + 1 > count)
      count = (int)v + 1;
  }
  return count;
}

static gboolean rename_diffusers(const sige_weights *w, sige_weights *out, sige_sd_part part,
                                 const char *file, GError **error) {
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  const int res_blocks = count_index(w, "down_blocks.0.resnets.");
  const int levels = count_index(w, "encoder.down_blocks.");
  g_autoptr(GPtrArray) unknown = g_ptr_array_new();
  g_autoptr(GString) name = g_string_new(NULL);
  for (guint i = 0; i < n; i++) {
    gboolean linear = FALSE;
    const gboolean ok = part == SIGE_SD_PART_UNET
                            ? sige_sd_unet_name(w, names[i], res_blocks, name, &linear)
                            : sige_sd_vae_name(names[i], levels, name, &linear);
    if (!ok) {
      g_ptr_array_add(unknown, (gpointer)names[i]);
      continue;
    }
    g_autofree char *dst = g_strconcat(parts[part].prefix, name->str, NULL);
    if (sige_weights_contains(out, dst)) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s: '%s' and another key both map to '%s'", file, names[i], dst);
      return FALSE;
    }
    /* the file's own name, for messages about this tensor */
    g_autofree char *src_key = g_strconcat(SIGE_SD_SOURCE_NAME, dst, NULL);
    sige_weights_set_metadata(out, src_key, names[i]);
    int ndim;
    int64_t shape[SIGE_MAX_DIMS];
    sige_weights_shape(w, names[i], &ndim, shape);
    if (linear && ndim == 2 && g_str_has_suffix(names[i], ".weight")) {
      /* a Linear [C_out, C_in] is the original's 1x1 convolution */
      shape[2] = shape[3] = 1;
      if (!sige_weights_copy_entry(out, dst, w, names[i], 4, shape, error)) return FALSE;
    } else if (!sige_weights_copy_entry(out, dst, w, names[i], 0, NULL, error)) {
      return FALSE;
    }
  }
  if (unknown->len) {
    g_autoptr(GString) s = g_string_new(NULL);
    g_string_printf(s, "%s: diffusers %s keys that are not Stable Diffusion 1.x's (an SD 2.x, "
                       "SDXL or ControlNet file?): ", file, parts[part].what);
    append_few(s, unknown);
    g_set_error_literal(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED, s->str);
    return FALSE;
  }
  return TRUE;
}

/* The part of table w (read from `path`) in single-file names. */
static sige_weights *part_of_table(const sige_weights *w, const char *path, sige_sd_part part,
                                   guint flags, gboolean has_ema, GError **error) {
  g_autofree char *file = display(path);
  const part_source src = find_part(w, part);
  if (src.names == NAMES_NONE) {
    if (part == SIGE_SD_PART_UNET && has_ema) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                  "%s: the UNet is here only as EMA weights ('" EMA_UNET "*', names without "
                  "dots) and no 'model.diffusion_model.*' copy; such a file cannot be read",
                  file);
      return NULL;
    }
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                "%s: no Stable Diffusion %s: expected '%stime_embed.0.weight' (UNet), "
                "'%sdecoder.conv_in.weight' (VAE) or '%sembeddings.token_embedding.weight' (text "
                "encoder) or their diffusers names",
                file, parts[part].what, parts[SIGE_SD_PART_UNET].prefix,
                parts[SIGE_SD_PART_VAE].prefix, parts[SIGE_SD_PART_TEXT_ENCODER].prefix);
    return NULL;
  }
  const gboolean ema = part == SIGE_SD_PART_UNET && (flags & SIGE_SD_LOAD_EMA);
  if (ema && (!has_ema || src.names != NAMES_LDM || strcmp(src.src_prefix, parts[part].prefix))) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                "%s: EMA weights were asked for, but the file has no '" EMA_UNET "*' keys",
                file);
    return NULL;
  }
  g_autoptr(sige_weights) out = sige_weights_new();
  sige_weights_set_path(out, path);
  if (src.names == NAMES_LDM ? !copy_ldm(w, out, part, src.src_prefix, ema, file, error)
                             : !rename_diffusers(w, out, part, file, error))
    return NULL;
  const char *fmt = sige_weights_metadata(w, "sige.source.format");
  if (fmt) sige_weights_set_metadata(out, "sige.source.format", fmt);
  const char *layout = "sd-diffusers";
  if (src.names == NAMES_LDM && !strcmp(src.src_prefix, parts[part].prefix))
    layout = "sd-single-file";
  else if (src.names == NAMES_LDM && !strcmp(src.src_prefix, "text_model."))
    layout = "hf-clip-text";
  else if (src.names == NAMES_LDM)
    layout = *src.src_prefix ? "sd-single-file-old" : "ldm-part-alone";
  sige_weights_set_metadata(out, "sige.source.layout", layout);
  sige_weights_set_metadata(out, "sige.sd.part", parts[part].name);
  if (ema) sige_weights_set_metadata(out, "sige.sd.ema", "1");
  for (guint i = 0; i < G_N_ELEMENTS(part_meta); i++) {
    g_autofree char *plain = g_strconcat("sige.", part_meta[i], NULL);
    g_autofree char *own = g_strdup_printf("sige.%s.%s", parts[part].name, part_meta[i]);
    const char *v = sige_weights_metadata(w, own);
    if (!v) v = sige_weights_metadata(w, plain);
    if (v) sige_weights_set_metadata(out, plain, v);
  }
  return g_steal_pointer(&out);
}

/* ---- opening ------------------------------------------------------------ */

static JsonObject *read_json_object(const char *path, JsonParser *parser, GError **error) {
  GError *e = NULL;
  g_autofree char *file = display(path);
  if (!json_parser_load_from_file(parser, path, &e)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: %s", file, e->message);
    g_error_free(e);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: expected a JSON object", file);
    return NULL;
  }
  return json_node_get_object(root);
}

/* A member that must be a number when present. */
static gboolean json_number(JsonObject *o, const char *key, const char *file, double *out,
                            gboolean *present, GError **error) {
  *present = FALSE;
  JsonNode *n = json_object_get_member(o, key);
  if (!n || JSON_NODE_HOLDS_NULL(n)) return TRUE;
  const GType t = JSON_NODE_HOLDS_VALUE(n) ? json_node_get_value_type(n) : G_TYPE_INVALID;
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: \"%s\" is not a number", file, key);
    return FALSE;
  }
  *out = t == G_TYPE_INT64 ? (double)json_node_get_int(n) : json_node_get_double(n);
  *present = TRUE;
  return TRUE;
}

static const char *json_string(JsonObject *o, const char *key) {
  JsonNode *n = json_object_get_member(o, key);
  return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
             ? json_node_get_string(n)
             : NULL;
}

static gboolean read_schedule(const char *path, sige_sd_schedule *s, GError **error) {
  g_autoptr(JsonParser) parser = json_parser_new();
  JsonObject *o = read_json_object(path, parser, error);
  if (!o) return FALSE;
  g_autofree char *file = display(path);
  const char *sched = json_string(o, "beta_schedule");
  if (!sched) sched = "linear"; /* diffusers' default */
  if (!strcmp(sched, "scaled_linear")) {
    s->schedule = SIGE_SD_BETAS_SCALED_LINEAR;
  } else if (!strcmp(sched, "linear")) {
    s->schedule = SIGE_SD_BETAS_LINEAR;
  } else {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: beta_schedule \"%s\" is not supported (expected \"scaled_linear\", as SD "
                "1.x, or \"linear\")", file, sched);
    return FALSE;
  }
  JsonNode *tb = json_object_get_member(o, "trained_betas");
  if (tb && !JSON_NODE_HOLDS_NULL(tb)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: trained_betas (a schedule given as a list) is not supported", file);
    return FALSE;
  }
  const char *pred = json_string(o, "prediction_type");
  if (pred && strcmp(pred, "epsilon") != 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: prediction_type \"%s\" is not supported (SD 1.x predicts \"epsilon\"; "
                "\"v_prediction\" is SD 2.x's)", file, pred);
    return FALSE;
  }
  double v;
  gboolean present;
  if (!json_number(o, "num_train_timesteps", file, &v, &present, error)) return FALSE;
  if (present) {
    if (!(v >= 2 && v <= 100000 && v == floor(v))) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s: num_train_timesteps %g: expected an integer from 2 to 100000", file, v);
      return FALSE;
    }
    s->num_train_timesteps = (int)v;
  }
  if (!json_number(o, "beta_start", file, &s->beta_start, &present, error) ||
      !json_number(o, "beta_end", file, &s->beta_end, &present, error))
    return FALSE;
  if (!(s->beta_start > 0 && s->beta_start <= s->beta_end && s->beta_end < 1)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: beta_start %g, beta_end %g: expected 0 < beta_start <= beta_end < 1", file,
                s->beta_start, s->beta_end);
    return FALSE;
  }
  if (!json_number(o, "steps_offset", file, &v, &present, error)) return FALSE;
  s->steps_offset = present ? (int)v : 0;
  s->from_file = TRUE;
  return TRUE;
}

/* unet/config.json, text_encoder/config.json: the sizes the tensors do not
 * hold. */
static gboolean read_part_config(const char *path, sige_sd_part part, part_info *pi,
                                 GError **error) {
  g_autoptr(JsonParser) parser = json_parser_new();
  JsonObject *o = read_json_object(path, parser, error);
  if (!o) return FALSE;
  g_autofree char *file = display(path);
  double v;
  gboolean present;
  if (part == SIGE_SD_PART_UNET) {
    /* SD 1.x's attention_head_dim is the number of heads (8), as diffusers
     * itself reads it; SD 2.x gives a list of head widths */
    JsonNode *h = json_object_get_member(o, "attention_head_dim");
    if (h && JSON_NODE_HOLDS_VALUE(h) && json_node_get_value_type(h) == G_TYPE_INT64)
      pi->ints[0] = (int)json_node_get_int(h);
    if (!json_number(o, "sample_size", file, &v, &present, error)) return FALSE;
    if (present && v >= 1 && v <= 4096) pi->ints[1] = pi->ints[2] = (int)v;
    JsonNode *lp = json_object_get_member(o, "use_linear_projection");
    pi->linear_projection = lp && JSON_NODE_HOLDS_VALUE(lp) &&
                            json_node_get_value_type(lp) == G_TYPE_BOOLEAN &&
                            json_node_get_boolean(lp);
  } else if (part == SIGE_SD_PART_TEXT_ENCODER) {
    if (!json_number(o, "num_attention_heads", file, &v, &present, error)) return FALSE;
    if (present && v >= 1 && v <= 1024) pi->ints[0] = (int)v;
  }
  return TRUE;
}

static gboolean open_folder(sige_sd_checkpoint *ck, GError **error) {
  g_autofree char *disp = display(ck->path);
  g_autofree char *index = g_build_filename(ck->path, "model_index.json", NULL);
  if (g_file_test(index, G_FILE_TEST_EXISTS)) {
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *o = read_json_object(index, parser, error);
    if (!o) return FALSE;
    const char *cls = json_string(o, "_class_name");
    gboolean known = FALSE;
    for (guint i = 0; cls && i < G_N_ELEMENTS(pipelines); i++)
      if (!strcmp(cls, pipelines[i])) known = TRUE;
    if (!known) {
      g_autofree char *f = display(index);
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                  "%s: pipeline \"%s\" is not a Stable Diffusion 1.x pipeline (expected "
                  "StableDiffusionPipeline, StableDiffusionImg2ImgPipeline or "
                  "StableDiffusionInpaintPipeline)", f, cls ? cls : "(no _class_name)");
      return FALSE;
    }
  }
  gboolean any = FALSE;
  for (int p = 0; p < SIGE_SD_N_PARTS; p++) {
    part_info *pi = &ck->part[p];
    g_autofree char *dir = g_build_filename(ck->path, parts[p].folder, NULL);
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
      pi->missing = g_strdup_printf("%s: no %s/ folder (the %s of a diffusers folder)", disp,
                                    parts[p].folder, parts[p].what);
      continue;
    }
    for (guint f = 0; f < G_N_ELEMENTS(parts[p].files) && !pi->path; f++) {
      g_autofree char *file = g_build_filename(dir, parts[p].files[f], NULL);
      if (g_file_test(file, G_FILE_TEST_IS_REGULAR)) pi->path = g_steal_pointer(&file);
    }
    if (!pi->path) {
      pi->missing = g_strdup_printf("%s/%s: none of %s, %s, %s, %s", disp, parts[p].folder,
                                    parts[p].files[0], parts[p].files[1], parts[p].files[2],
                                    parts[p].files[3]);
      continue;
    }
    any = TRUE;
    g_autofree char *config = g_build_filename(dir, "config.json", NULL);
    if (g_file_test(config, G_FILE_TEST_EXISTS) &&
        !read_part_config(config, (sige_sd_part)p, pi, error))
      return FALSE;
  }
  if (!any) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                "%s: not a diffusers Stable Diffusion folder: no unet/, vae/ or text_encoder/ "
                "weights", disp);
    return FALSE;
  }
  g_autofree char *sched = g_build_filename(ck->path, "scheduler", "scheduler_config.json", NULL);
  if (g_file_test(sched, G_FILE_TEST_EXISTS) && !read_schedule(sched, &ck->schedule, error))
    return FALSE;
  g_autofree char *vocab = g_build_filename(ck->path, "tokenizer", "vocab.json", NULL);
  g_autofree char *merges = g_build_filename(ck->path, "tokenizer", "merges.txt", NULL);
  if (g_file_test(vocab, G_FILE_TEST_IS_REGULAR) && g_file_test(merges, G_FILE_TEST_IS_REGULAR)) {
    ck->vocab = g_steal_pointer(&vocab);
    ck->merges = g_steal_pointer(&merges);
  }
  return TRUE;
}

static gboolean open_file(sige_sd_checkpoint *ck, GError **error) {
  ck->file = sige_weights_load_file(ck->path, error);
  if (!ck->file) return FALSE;
  ck->ema = has_prefix_key(ck->file, EMA_UNET);
  gboolean any = FALSE;
  for (int p = 0; p < SIGE_SD_N_PARTS; p++) {
    if (find_part(ck->file, (sige_sd_part)p).names != NAMES_NONE) {
      ck->part[p].path = g_strdup(ck->path);
      any = TRUE;
    }
  }
  if (!any && !ck->ema) {
    g_autofree char *disp = display(ck->path);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                "%s: no Stable Diffusion part: expected '%stime_embed.0.weight' (UNet), "
                "'%sdecoder.conv_in.weight' (VAE) or '%sembeddings.token_embedding.weight' "
                "(text encoder), or the same parts in diffusers names",
                disp, parts[SIGE_SD_PART_UNET].prefix, parts[SIGE_SD_PART_VAE].prefix,
                parts[SIGE_SD_PART_TEXT_ENCODER].prefix);
    return FALSE;
  }
  return TRUE;
}

sige_sd_checkpoint *sige_sd_checkpoint_open(const char *path, GError **error) {
  g_return_val_if_fail(path != NULL, NULL);
  g_autoptr(sige_sd_checkpoint) ck = g_new0(sige_sd_checkpoint, 1);
  ck->path = g_strdup(path);
  ck->folder = sige_sd_path_is_folder(path);
  sige_sd_schedule_init(&ck->schedule);
  if (!(ck->folder ? open_folder(ck, error) : open_file(ck, error))) return NULL;
  return g_steal_pointer(&ck);
}

const char *sige_sd_checkpoint_format(const sige_sd_checkpoint *ck) {
  return ck->folder ? "diffusers" : "single-file";
}

gboolean sige_sd_checkpoint_has_part(const sige_sd_checkpoint *ck, sige_sd_part part) {
  return (unsigned)part < SIGE_SD_N_PARTS && ck->part[part].path != NULL;
}

gboolean sige_sd_checkpoint_has_ema(const sige_sd_checkpoint *ck) { return ck->ema; }

const char *sige_sd_checkpoint_part_path(const sige_sd_checkpoint *ck, sige_sd_part part) {
  return (unsigned)part < SIGE_SD_N_PARTS ? ck->part[part].path : NULL;
}

const char *sige_sd_checkpoint_vocab_json(const sige_sd_checkpoint *ck) { return ck->vocab; }
const char *sige_sd_checkpoint_merges_txt(const sige_sd_checkpoint *ck) { return ck->merges; }
const sige_sd_schedule *sige_sd_checkpoint_schedule(const sige_sd_checkpoint *ck) {
  return &ck->schedule;
}

sige_weights *sige_sd_checkpoint_part(const sige_sd_checkpoint *ck, sige_sd_part part,
                                      guint flags, GError **error) {
  g_return_val_if_fail(ck != NULL && (unsigned)part < SIGE_SD_N_PARTS, NULL);
  const part_info *pi = &ck->part[part];
  if (!ck->folder) return part_of_table(ck->file, ck->path, part, flags, ck->ema, error);
  if (!pi->path) {
    g_set_error_literal(error, SIGE_ERROR, SIGE_ERROR_MISSING, pi->missing);
    return NULL;
  }
  if (part == SIGE_SD_PART_UNET && pi->linear_projection) {
    g_autofree char *disp = display(ck->path);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s/unet/config.json: use_linear_projection is SD 2.x's; only SD 1.x UNets "
                "are supported", disp);
    return NULL;
  }
  g_autoptr(sige_weights) w = sige_weights_load_file(pi->path, error);
  if (!w) return NULL;
  if (flags & SIGE_SD_LOAD_EMA && part == SIGE_SD_PART_UNET) {
    g_autofree char *disp = display(ck->path);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                "%s: EMA weights were asked for, but a diffusers folder holds one UNet", disp);
    return NULL;
  }
  sige_weights *out = part_of_table(w, pi->path, part, 0, FALSE, error);
  if (!out) return NULL;
  for (guint i = 0; i < G_N_ELEMENTS(part_meta); i++) {
    if (!pi->ints[i]) continue;
    g_autofree char *key = g_strconcat("sige.", part_meta[i], NULL);
    g_autofree char *v = g_strdup_printf("%d", pi->ints[i]);
    sige_weights_set_metadata(out, key, v);
  }
  return out;
}
