/* Key layouts of published checkpoints, mapped onto our canonical names
 * (those of the safetensors files: NVlabs SPADE, ermongroup/ddim DDPM).
 *
 * diffusers' UNet2DModel holds the same DDPM UNet under other names: resnets
 * and attentions instead of block and attn, up_blocks numbered from the
 * lowest resolution, and attention projections as Linear layers ([C, C]),
 * which are the 1x1 convolutions of the original ([C, C, 1, 1]). */
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

static gboolean fail_unknown(const sige_weights *w, GError **error) {
  static const char *const markers[] = {
    "fc.weight", "conv_img.weight",                  /* SPADE */
    "conv_in.weight", "temb.dense.0.weight",         /* DDPM (ermongroup/ddim) */
    "time_embedding.linear_1.weight",                /* diffusers UNet2DModel */
  };
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  g_autoptr(GPtrArray) missing = g_ptr_array_new();
  for (guint i = 0; i < G_N_ELEMENTS(markers); i++)
    if (!sige_weights_contains(w, markers[i])) g_ptr_array_add(missing, (gpointer)markers[i]);
  g_autoptr(GPtrArray) unexpected = g_ptr_array_new();
  for (guint i = 0; i < n; i++) g_ptr_array_add(unexpected, (gpointer)names[i]);
  g_autoptr(GString) s = g_string_new(NULL);
  g_autofree char *file = sige_weights_display_name(sige_weights_path(w) ? sige_weights_path(w) : "(memory)");
  g_string_printf(s, "%s: unknown key layout (not SPADE/NVlabs, DDPM/ermongroup or "
                     "diffusers UNet2DModel): missing ", file);
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
  const char *path = sige_weights_path(w);
  g_autofree char *file = sige_weights_display_name(path ? path : "(memory)");
  int levels = count_levels(names, n, "down_blocks.");
  int up_levels = count_levels(names, n, "up_blocks.");
  if (levels == 0 || levels != up_levels) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: diffusers layout with %d down_blocks but %d up_blocks", file, levels,
                up_levels);
    return FALSE;
  }
  g_autoptr(sige_weights) out = sige_weights_new();
  if (path) sige_weights_set_path(out, path);
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
    sige_tensor *t = sige_tensor_dup(sige_weights_get(w, names[i]), error);
    if (!t) return FALSE;
    if (linear && t->ndim == 2 && g_str_has_suffix(names[i], ".weight")) {
      t->ndim = 4; /* a Linear weight [C_out, C_in] is a 1x1 convolution */
      t->shape[2] = t->shape[3] = 1;
    }
    sige_weights_insert_with_dtype(out, name->str, t, sige_weights_dtype(w, names[i]));
  }
  if (unexpected->len) {
    g_autoptr(GString) s = g_string_new(NULL);
    g_string_printf(s, "%s: diffusers UNet2DModel layout with keys we cannot map: ", file);
    append_few(s, unexpected);
    g_set_error_literal(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED, s->str);
    return FALSE;
  }
  for (guint i = 0; i < G_N_ELEMENTS(copied_metadata); i++) {
    const char *v = sige_weights_metadata(w, copied_metadata[i]);
    if (v) sige_weights_set_metadata(out, copied_metadata[i], v);
  }
  sige_weights_free(*wp);
  *wp = g_steal_pointer(&out);
  return TRUE;
}

gboolean sige_weights_canonicalize(sige_weights **wp, GError **error) {
  g_return_val_if_fail(wp && *wp, FALSE);
  sige_weights *w = *wp;
  if (sige_weights_contains(w, "fc.weight") && sige_weights_contains(w, "conv_img.weight")) {
    sige_weights_set_metadata(w, "sige.source.layout", "spade-nvlabs");
    return TRUE;
  }
  if (sige_weights_contains(w, "conv_in.weight") && sige_weights_contains(w, "temb.dense.0.weight")) {
    sige_weights_set_metadata(w, "sige.source.layout", "ddpm-ermongroup");
    return TRUE;
  }
  if (sige_weights_contains(w, "conv_in.weight") &&
      sige_weights_contains(w, "time_embedding.linear_1.weight")) {
    if (!rename_diffusers(wp, error)) return FALSE;
    sige_weights_set_metadata(*wp, "sige.source.layout", "diffusers-unet2d");
    return TRUE;
  }
  return fail_unknown(w, error);
}
