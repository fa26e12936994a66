/* Key layouts of published checkpoints, mapped onto our canonical names
 * (those of the safetensors files: NVlabs SPADE, ermongroup/ddim DDPM).
 *
 * diffusers' UNet2DModel holds the same DDPM UNet under other names: resnets
 * and attentions instead of block and attn, up_blocks numbered from the
 * lowest resolution, and attention projections as Linear layers ([C, C]),
 * which are the 1x1 convolutions of the original ([C, C, 1, 1]).
 *
 * SIGE's fused models (lmxyy/sige) concatenate parallel layers along their
 * output channels; splitting the rows back is exact:
 *   DDPM FusedUNet: temb.dense.2 holds every resnet block's temb_proj in
 *     forward order (down levels, mid.block_1, mid.block_2, up levels from the
 *     deepest), and attention has one qkv 1x1 conv (q | k | v).
 *   FusedSPADEGenerator: each block's mlp_shared.0 holds the mlp_shared.0 of
 *     norm_0 | norm_1 (| norm_s), and each norm's mlp_gamma_beta holds
 *     mlp_gamma | mlp_beta. */
#include <string.h>

#include "sige/error.h"
#include "weights_internal.h"

#define MAX_LEVELS 16
#define LIST_FEW 5

static const char *const copied_metadata[] = {
  "sige.contain_instance", "sige.crop_size", "sige.aspect_ratio", "sige.num_upsampling_layers",
  "sige.image_size", "sige.model", "sige.note", "sige.source.format", "sige.source.dict",
};

static gboolean parse_index(const char *s, int *out) {
  guint64 v;
  if (!g_ascii_string_to_unsigned(s, 10, 0, MAX_LEVELS * 4, &v, NULL)) return FALSE;
  *out = (int)v;
  return TRUE;
}

/* resnets.{j}.<part> -> <part'> */
static const char *resnet_part(const char *p) {
  static const char *const map[][2] = {
    {"norm1", "norm1"}, {"conv1", "conv1"}, {"time_emb_proj", "temb_proj"},
    {"norm2", "norm2"}, {"conv2", "conv2"}, {"conv_shortcut", "nin_shortcut"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(map); i++)
    if (!strcmp(p, map[i][0])) return map[i][1];
  return NULL;
}

/* attentions.{j}.<part> (one or two name parts) -> <part'>; *linear marks
 * the projections stored as Linear weights */
static const char *attention_part(char **parts, int n, int *used, gboolean *linear) {
  static const char *const map[][2] = {
    {"group_norm", "norm"}, {"query", "q"}, {"key", "k"}, {"value", "v"},
    {"proj_attn", "proj_out"}, {"to_q", "q"}, {"to_k", "k"}, {"to_v", "v"},
  };
  *used = 1;
  *linear = TRUE;
  if (n >= 2 && !strcmp(parts[0], "to_out") && !strcmp(parts[1], "0")) {
    *used = 2;
    return "proj_out";
  }
  for (guint i = 0; i < G_N_ELEMENTS(map); i++) {
    if (!strcmp(parts[0], map[i][0])) {
      *linear = i > 0;
      return map[i][1];
    }
  }
  return NULL;
}

/* The inner part of a block: resnets / attentions / down- and upsamplers.
 * parts[0..n) ends with the parameter name (weight, bias). */
static gboolean map_block(char **parts, int n, const char *level, gboolean mid, GString *out,
                          gboolean *linear) {
  int j;
  if (n < 3 || !parse_index(parts[1], &j)) return FALSE;
  const char *param = parts[n - 1];
  if (!strcmp(parts[0], "resnets") && n == 4) {
    const char *p = resnet_part(parts[2]);
    if (!p || (mid && j > 1)) return FALSE;
    if (mid)
      g_string_printf(out, "mid.block_%d.%s.%s", j + 1, p, param);
    else
      g_string_printf(out, "%s.block.%d.%s.%s", level, j, p, param);
    return TRUE;
  }
  if (!strcmp(parts[0], "attentions")) {
    int used;
    const char *p = attention_part(parts + 2, n - 3, &used, linear);
    if (!p || 3 + used != n || (mid && j > 0)) return FALSE;
    if (mid)
      g_string_printf(out, "mid.attn_1.%s.%s", p, param);
    else
      g_string_printf(out, "%s.attn.%d.%s.%s", level, j, p, param);
    return TRUE;
  }
  if (!mid && j == 0 && n == 4 && !strcmp(parts[2], "conv") &&
      (!strcmp(parts[0], "downsamplers") || !strcmp(parts[0], "upsamplers"))) {
    g_string_printf(out, "%s.%s.conv.%s", level,
                    parts[0][0] == 'd' ? "downsample" : "upsample", param);
    return TRUE;
  }
  return FALSE;
}

static gboolean map_diffusers(const char *key, int levels, GString *out, gboolean *linear) {
  g_auto(GStrv) parts = g_strsplit(key, ".", 12);
  int n = (int)g_strv_length(parts);
  *linear = FALSE;
  if (n < 2) return FALSE;
  const char *param = parts[n - 1];
  if (strcmp(param, "weight") != 0 && strcmp(param, "bias") != 0) return FALSE;
  if (n == 2) {
    if (!strcmp(parts[0], "conv_in") || !strcmp(parts[0], "conv_out")) {
      g_string_assign(out, key);
      return TRUE;
    }
    if (!strcmp(parts[0], "conv_norm_out")) {
      g_string_printf(out, "norm_out.%s", param);
      return TRUE;
    }
    return FALSE;
  }
  if (n == 3 && !strcmp(parts[0], "time_embedding")) {
    if (!strcmp(parts[1], "linear_1") || !strcmp(parts[1], "linear_2")) {
      g_string_printf(out, "temb.dense.%c.%s", parts[1][7] == '1' ? '0' : '1', param);
      return TRUE;
    }
    return FALSE;
  }
  if (!strcmp(parts[0], "mid_block")) return map_block(parts + 1, n - 1, NULL, TRUE, out, linear);
  int i;
  gboolean down = !strcmp(parts[0], "down_blocks");
  if ((!down && strcmp(parts[0], "up_blocks") != 0) || !parse_index(parts[1], &i) || i >= levels)
    return FALSE;
  g_autofree char *level = g_strdup_printf("%s.%d", down ? "down" : "up",
                                           down ? i : levels - 1 - i);
  /* a down level has no upsampler and the reverse */
  if (n > 2 && !strcmp(parts[2], down ? "upsamplers" : "downsamplers")) return FALSE;
  return map_block(parts + 2, n - 2, level, FALSE, out, linear);
}

static int count_levels(const char *const *names, guint n, const char *prefix) {
  int levels = 0;
  gsize plen = strlen(prefix);
  for (guint i = 0; i < n; i++) {
    int idx;
    if (strncmp(names[i], prefix, plen) != 0) continue;
    g_autofree char *num = g_strndup(names[i] + plen, strcspn(names[i] + plen, "."));
    if (parse_index(num, &idx) && idx + 1 > levels) levels = idx + 1;
  }
  return levels;
}

static void append_few(GString *s, GPtrArray *names) {
  for (guint i = 0; i < names->len && i < LIST_FEW; i++)
    g_string_append_printf(s, "%s'%s'", i ? ", " : "", (const char *)names->pdata[i]);
  if (names->len > LIST_FEW) g_string_append_printf(s, " and %u more", names->len - LIST_FEW);
}

/* The file name for messages; a table built in memory has none. */
static char *layout_file(const sige_weights *w) {
  const char *path = sige_weights_path(w);
  return sige_weights_display_name(path ? path : "(memory)");
}

/* Carries w's provenance metadata over to its replacement out, then puts
 * out in w's place (*wp). */
static void replace_weights(sige_weights **wp, sige_weights *out) {
  for (guint i = 0; i < G_N_ELEMENTS(copied_metadata); i++) {
    const char *v = sige_weights_metadata(*wp, copied_metadata[i]);
    if (v) sige_weights_set_metadata(out, copied_metadata[i], v);
  }
  sige_weights_free(*wp);
  *wp = out;
}

static gboolean fail_unknown(const sige_weights *w, GError **error) {
  static const char *const markers[] = {
    "fc.weight", "conv_img.weight",                  /* SPADE */
    "conv_in.weight", "temb.dense.0.weight",         /* DDPM (ermongroup/ddim) */
    "time_embedding.linear_1.weight",                /* diffusers UNet2DModel */
    "text_model.embeddings.token_embedding.weight",  /* CLIP text (diffusers) */
  };
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  g_autoptr(GPtrArray) missing = g_ptr_array_new();
  for (guint i = 0; i < G_N_ELEMENTS(markers); i++)
    if (!sige_weights_contains(w, markers[i])) g_ptr_array_add(missing, (gpointer)markers[i]);
  g_autoptr(GPtrArray) unexpected = g_ptr_array_new();
  for (guint i = 0; i < n; i++) g_ptr_array_add(unexpected, (gpointer)names[i]);
  g_autoptr(GString) s = g_string_new(NULL);
  g_autofree char *file = layout_file(w);
  g_string_printf(s, "%s: unknown key layout (not SPADE/NVlabs, DDPM/ermongroup, "
                     "diffusers UNet2DModel or CLIP text): missing ", file);
  append_few(s, missing);
  g_string_append(s, "; unexpected ");
  if (n)
    append_few(s, unexpected);
  else
    g_string_append(s, "nothing: the file holds no tensors");
  g_set_error_literal(error, SIGE_ERROR, SIGE_ERROR_MISSING, s->str);
  return FALSE;
}

static gboolean rename_diffusers(sige_weights **wp, GError **error) {
  sige_weights *w = *wp;
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  g_autofree char *file = layout_file(w);
  int levels = count_levels(names, n, "down_blocks.");
  int up_levels = count_levels(names, n, "up_blocks.");
  if (levels == 0 || levels != up_levels) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: diffusers layout with %d down_blocks but %d up_blocks", file, levels,
                up_levels);
    return FALSE;
  }
  g_autoptr(sige_weights) out = sige_weights_new();
  if (sige_weights_path(w)) sige_weights_set_path(out, sige_weights_path(w));
  g_autoptr(GPtrArray) unexpected = g_ptr_array_new();
  g_autoptr(GString) name = g_string_new(NULL);
  for (guint i = 0; i < n; i++) {
    gboolean linear;
    if (!map_diffusers(names[i], levels, name, &linear)) {
      g_ptr_array_add(unexpected, (gpointer)names[i]);
      continue;
    }
    if (sige_weights_contains(out, name->str)) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s: '%s' and another key both map to '%s'", file, names[i], name->str);
      return FALSE;
    }
    /* renamed, not copied: the entry keeps pointing at the file's bytes */
    int ndim;
    int64_t shape[SIGE_MAX_DIMS];
    sige_weights_shape(w, names[i], &ndim, shape);
    if (linear && ndim == 2 && g_str_has_suffix(names[i], ".weight")) {
      /* a Linear weight [C_out, C_in] is a 1x1 convolution */
      shape[2] = shape[3] = 1;
      if (!sige_weights_copy_entry(out, name->str, w, names[i], 4, shape, error)) return FALSE;
    } else if (!sige_weights_copy_entry(out, name->str, w, names[i], 0, NULL, error)) {
      return FALSE;
    }
  }
  if (unexpected->len) {
    g_autoptr(GString) s = g_string_new(NULL);
    g_string_printf(s, "%s: diffusers UNet2DModel layout with keys we cannot map: ", file);
    append_few(s, unexpected);
    g_set_error_literal(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED, s->str);
    return FALSE;
  }
  replace_weights(wp, g_steal_pointer(&out));
  return TRUE;
}

/* ---- SIGE fused layouts: split concatenated layers along dim 0 ---- */

typedef struct {
  sige_weights *in, *out;
  GHashTable *consumed; /* names of `in` already split into `out` */
  char *file; /* for messages */
} splitter;

/* Splits in[src] along its first dimension into dst[0..n) of sizes[0..n)
 * rows (sizes[i] == 0: an equal share).  The parts are views of the fused
 * tensor's bytes: nothing is converted here. */
static gboolean split_rows(splitter *s, const char *src, const char *const *dst,
                           const int64_t *sizes, int n, GError **error) {
  int ndim;
  int64_t shape[SIGE_MAX_DIMS];
  if (!sige_weights_shape(s->in, src, &ndim, shape)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING, "%s: fused layout without '%s'", s->file,
                src);
    return FALSE;
  }
  int64_t rows = ndim >= 1 ? shape[0] : 0, total = 0;
  for (int i = 0; i < n; i++) total += sizes[i] ? sizes[i] : (rows / n);
  if (ndim < 1 || rows != total || (rows % n && !sizes[0])) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "%s: '%s' has %" G_GINT64_FORMAT " rows, but the %d layers it fuses need %"
                G_GINT64_FORMAT, s->file, src, rows, n, total);
    return FALSE;
  }
  int64_t r0 = 0;
  for (int i = 0; i < n; i++) {
    int64_t r = sizes[i] ? sizes[i] : rows / n;
    if (sige_weights_contains(s->out, dst[i]) || sige_weights_contains(s->in, dst[i])) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s: '%s' is both in the file and a part of fused '%s'", s->file, dst[i], src);
      return FALSE;
    }
    if (!sige_weights_copy_rows(s->out, dst[i], s->in, src, r0, r, error)) return FALSE;
    r0 += r;
  }
  g_hash_table_add(s->consumed, g_strdup(src));
  return TRUE;
}

/* Splits <prefix>.<fused>.{weight,bias} into <prefix>.<part_i>.{weight,bias}. */
static gboolean split_layer(splitter *s, const char *prefix, const char *fused,
                            const char *const *parts, const int64_t *sizes, int n,
                            GError **error) {
  static const char *const params[] = {"weight", "bias"};
  for (guint p = 0; p < G_N_ELEMENTS(params); p++) {
    g_autofree char *src = g_strdup_printf("%s%s%s.%s", prefix, *prefix ? "." : "", fused,
                                           params[p]);
    if (p == 1 && !sige_weights_contains(s->in, src)) continue; /* a layer without bias */
    g_autoptr(GPtrArray) dst = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < n; i++)
      g_ptr_array_add(dst, g_strdup_printf("%s%s%s.%s", prefix, *prefix ? "." : "", parts[i],
                                           params[p]));
    if (!split_rows(s, src, (const char *const *)dst->pdata, sizes, n, error)) return FALSE;
  }
  return TRUE;
}

/* Replaces *wp by s->out plus every tensor of *wp that was not split. */
static gboolean finish_split(splitter *s, sige_weights **wp, const char *layout, GError **error) {
  guint n;
  const char *const *names = sige_weights_names(s->in, &n);
  for (guint i = 0; i < n; i++) {
    if (g_hash_table_contains(s->consumed, names[i])) continue;
    if (sige_weights_contains(s->out, names[i])) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: '%s' is given twice", s->file,
                  names[i]);
      return FALSE;
    }
    if (!sige_weights_copy_entry(s->out, names[i], s->in, names[i], 0, NULL, error)) return FALSE;
  }
  replace_weights(wp, g_steal_pointer(&s->out));
  sige_weights_set_metadata(*wp, "sige.source.layout", layout);
  return TRUE;
}

static void splitter_clear(splitter *s) {
  if (s->out) sige_weights_free(s->out);
  g_hash_table_unref(s->consumed);
  g_free(s->file);
}

static splitter splitter_init(sige_weights *w) {
  splitter s = {w, sige_weights_new(),
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL), layout_file(w)};
  if (sige_weights_path(w)) sige_weights_set_path(s.out, sige_weights_path(w));
  return s;
}

/* Output channels of the resnet block <prefix> (its conv1), or 0 when absent. */
static int64_t block_channels(const sige_weights *w, const char *prefix) {
  g_autofree char *k = g_strdup_printf("%s.conv1.weight", prefix);
  int ndim;
  int64_t shape[SIGE_MAX_DIMS];
  return sige_weights_shape(w, k, &ndim, shape) && ndim == 4 ? shape[0] : 0;
}

/* Adds block b's share of the fused temb projection; FALSE when w has no
 * block b. Takes b. */
static gboolean add_block(const sige_weights *w, char *b, GPtrArray *blocks, GArray *sizes) {
  int64_t c = block_channels(w, b);
  if (c) {
    g_ptr_array_add(blocks, g_strdup_printf("%s.temb_proj", b));
    g_array_append_val(sizes, c);
  }
  g_free(b);
  return c != 0;
}

static void add_level_blocks(const sige_weights *w, const char *level, int i, GPtrArray *blocks,
                             GArray *sizes) {
  for (int j = 0; j < MAX_LEVELS * 4; j++)
    if (!add_block(w, g_strdup_printf("%s.%d.block.%d", level, i, j), blocks, sizes)) break;
}

static gboolean split_ddpm_fused(sige_weights **wp, GError **error) {
  sige_weights *w = *wp;
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  int levels = count_levels(names, n, "down.");
  splitter s = splitter_init(w);
  g_autoptr(GPtrArray) blocks = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GArray) sizes = g_array_new(FALSE, FALSE, sizeof(int64_t));
  for (int i = 0; i < levels; i++) add_level_blocks(w, "down", i, blocks, sizes);
  for (int m = 1; m <= 2; m++) add_block(w, g_strdup_printf("mid.block_%d", m), blocks, sizes);
  for (int i = levels - 1; i >= 0; i--) add_level_blocks(w, "up", i, blocks, sizes);
  gboolean ok = blocks->len > 0 &&
                split_layer(&s, "", "temb.dense.2", (const char *const *)blocks->pdata,
                            (const int64_t *)(void *)sizes->data, (int)blocks->len, error);
  if (!blocks->len)
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING,
                "%s: fused DDPM layout (temb.dense.2) without resnet blocks", s.file);
  static const char *const qkv[] = {"q", "k", "v"};
  static const int64_t thirds[] = {0, 0, 0};
  for (guint i = 0; ok && i < n; i++) {
    if (!g_str_has_suffix(names[i], ".qkv.weight")) continue;
    g_autofree char *prefix = g_strndup(names[i], strlen(names[i]) - strlen(".qkv.weight"));
    ok = split_layer(&s, prefix, "qkv", qkv, thirds, 3, error);
  }
  ok = ok && finish_split(&s, wp, "ddpm-sige-fused", error);
  splitter_clear(&s);
  return ok;
}

static gboolean split_spade_fused(sige_weights **wp, GError **error) {
  sige_weights *w = *wp;
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  splitter s = splitter_init(w);
  static const char *const norms[] = {"norm_0", "norm_1", "norm_s"};
  static const char *const gamma_beta[] = {"mlp_gamma", "mlp_beta"};
  static const int64_t equal[] = {0, 0, 0};
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < n; i++) {
    g_auto(GStrv) parts = g_strsplit(names[i], ".", 6);
    if (g_strv_length(parts) != 4 || strcmp(parts[3], "weight") != 0) continue;
    if (!strcmp(parts[1], "mlp_shared") && !strcmp(parts[2], "0")) {
      /* norm_s exists in blocks with a learned shortcut (conv_s) */
      g_autofree char *ns = g_strdup_printf("%s.norm_s.mlp_gamma_beta.weight", parts[0]);
      int k = sige_weights_contains(w, ns) ? 3 : 2;
      g_autofree char *prefix = g_strdup(parts[0]);
      g_autoptr(GPtrArray) dst = g_ptr_array_new_with_free_func(g_free);
      for (int j = 0; j < k; j++)
        g_ptr_array_add(dst, g_strdup_printf("%s.mlp_shared.0", norms[j]));
      ok = split_layer(&s, prefix, "mlp_shared.0", (const char *const *)dst->pdata, equal, k,
                       error);
      continue;
    }
    if (g_str_has_prefix(parts[1], "norm_") && !strcmp(parts[2], "mlp_gamma_beta")) {
      g_autofree char *prefix = g_strdup_printf("%s.%s", parts[0], parts[1]);
      ok = split_layer(&s, prefix, "mlp_gamma_beta", gamma_beta, equal, 2, error);
    }
  }
  ok = ok && finish_split(&s, wp, "spade-sige-fused", error);
  splitter_clear(&s);
  return ok;
}

static gboolean has_suffix_key(const sige_weights *w, const char *suffix) {
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  for (guint i = 0; i < n; i++)
    if (g_str_has_suffix(names[i], suffix)) return TRUE;
  return FALSE;
}

gboolean sige_weights_canonicalize(sige_weights **wp, GError **error) {
  g_return_val_if_fail(wp && *wp, FALSE);
  sige_weights *w = *wp;
  if (sige_weights_contains(w, "fc.weight") && sige_weights_contains(w, "conv_img.weight")) {
    if (has_suffix_key(w, ".mlp_gamma_beta.weight") ||
        sige_weights_contains(w, "head_0.mlp_shared.0.weight"))
      return split_spade_fused(wp, error);
    sige_weights_set_metadata(w, "sige.source.layout", "spade-nvlabs");
    return TRUE;
  }
  if (sige_weights_contains(w, "conv_in.weight") && sige_weights_contains(w, "temb.dense.0.weight")) {
    if (sige_weights_contains(w, "temb.dense.2.weight")) return split_ddpm_fused(wp, error);
    sige_weights_set_metadata(w, "sige.source.layout", "ddpm-ermongroup");
    return TRUE;
  }
  if (sige_weights_contains(w, "conv_in.weight") &&
      sige_weights_contains(w, "time_embedding.linear_1.weight")) {
    if (!rename_diffusers(wp, error)) return FALSE;
    sige_weights_set_metadata(*wp, "sige.source.layout", "diffusers-unet2d");
    return TRUE;
  }
  /* an SD 1.x single file (UNet, and maybe VAE and text encoder) keeps its
   * names: the models read "model.diffusion_model.*" and the others */
  if (sige_weights_contains(w, "model.diffusion_model.time_embed.0.weight")) {
    sige_weights_set_metadata(w, "sige.source.layout", "sd-single-file");
    return TRUE;
  }
  /* the same UNet saved alone, without the prefix */
  if (sige_weights_contains(w, "time_embed.0.weight") &&
      sige_weights_contains(w, "input_blocks.0.0.weight")) {
    sige_weights_set_metadata(w, "sige.source.layout", "ldm-unet");
    return TRUE;
  }
  /* the CLIP text encoder keeps its own names (the model reads either
   * prefix): an SD 1.x single file's or a diffusers text_encoder's */
  if (sige_weights_contains(
          w, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight")) {
    sige_weights_set_metadata(w, "sige.source.layout", "sd-clip-text");
    return TRUE;
  }
  if (sige_weights_contains(w, "text_model.embeddings.token_embedding.weight")) {
    sige_weights_set_metadata(w, "sige.source.layout", "hf-clip-text");
    return TRUE;
  }
  /* Stable Diffusion's VAE alone: with the single file's prefix, or as a
   * bare VAE file (encoder.*, decoder.*, quant_conv, post_quant_conv) */
  if (sige_weights_contains(w, "first_stage_model.encoder.conv_in.weight") ||
      sige_weights_contains(w, "first_stage_model.decoder.conv_in.weight")) {
    sige_weights_set_metadata(w, "sige.source.layout", "sd-vae");
    return TRUE;
  }
  if ((sige_weights_contains(w, "encoder.conv_in.weight") &&
       sige_weights_contains(w, "quant_conv.weight")) ||
      (sige_weights_contains(w, "decoder.conv_in.weight") &&
       sige_weights_contains(w, "post_quant_conv.weight"))) {
    sige_weights_set_metadata(w, "sige.source.layout", "ldm-vae");
    return TRUE;
  }
  return fail_unknown(w, error);
}
