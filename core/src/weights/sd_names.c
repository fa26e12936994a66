/* diffusers names of the SD 1.x UNet (UNet2DConditionModel), VAE
 * (AutoencoderKL) and text encoder (transformers CLIPTextModel), mapped to
 * the CompVis single-file names our models read: the reverse of the
 * renaming in diffusers' convert_original_stable_diffusion_to_diffusers.py,
 * written from its rules.
 *
 * UNet.  input_blocks.0.0 is conv_in; input block k >= 1 is down block
 * (k - 1) / (R + 1), slot (k - 1) % (R + 1) with R res blocks per level:
 * slots < R hold resnets.<slot> (.0) and attentions.<slot> (.1), slot R the
 * downsamplers.0.conv (.0.op).  Output block k is up block k / (R + 1),
 * slot k % (R + 1): resnets (.0), attentions (.1) and, in slot R of every up
 * block but the last, upsamplers.0.conv (.1.conv, or .2.conv after an
 * attention).  up_blocks count from the lowest resolution, as
 * output_blocks do.  The middle block is resnets.0, attentions.0,
 * resnets.1.  Inside a resnet: norm1 <- in_layers.0, conv1 <- in_layers.2,
 * time_emb_proj <- emb_layers.1, norm2 <- out_layers.0, conv2 <-
 * out_layers.3, conv_shortcut <- skip_connection; a transformer's names
 * are the same in both.
 *
 * VAE.  {encoder,decoder}.conv_in/conv_out as they are, conv_norm_out <-
 * norm_out, down_blocks.i.resnets.j <- down.i.block.j,
 * down_blocks.i.downsamplers.0.conv <- down.i.downsample.conv,
 * up_blocks.i <- up.(L - 1 - i) (up.0 is the full resolution),
 * mid_block.resnets.{0,1} <- mid.block_{1,2}, mid_block.attentions.0 <-
 * mid.attn_1 with group_norm <- norm and to_q/to_k/to_v/to_out.0 (older
 * diffusers: query/key/value/proj_attn) <- q/k/v/proj_out, which diffusers
 * keeps as Linear [C, C] where the original has 1x1 convolutions
 * [C, C, 1, 1]; resnets: conv_shortcut <- nin_shortcut.
 *
 * Text encoder: "text_model.*" keeps its names under the single-file
 * prefix. */
#include <string.h>

#include "sd_internal.h"

static gboolean parse_int(const char *s, int *out) {
  guint64 v;
  if (!g_ascii_string_to_unsigned(s, 10, 0, 1000, &v, NULL)) return FALSE;
  *out = (int)v;
  return TRUE;
}

static gboolean is_param(const char *p) { return !strcmp(p, "weight") || !strcmp(p, "bias"); }

/* resnets.<j>.<part>.<param> inside a UNet block: parts[0] is the part */
static const char *unet_resnet_part(const char *p) {
  static const char *const map[][2] = {
    {"norm1", "in_layers.0"},          {"conv1", "in_layers.2"},
    {"time_emb_proj", "emb_layers.1"}, {"norm2", "out_layers.0"},
    {"conv2", "out_layers.3"},         {"conv_shortcut", "skip_connection"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(map); i++)
    if (!strcmp(p, map[i][0])) return map[i][1];
  return NULL;
}

/* parts[from..n) joined with dots */
static char *join_from(char **parts, int from) { return g_strjoinv(".", parts + from); }

/* The transformer's inner names are the same in both layouts; proj_in and
 * proj_out may be Linear (use_linear_projection) where SD 1.x has 1x1
 * convolutions. */
static gboolean unet_transformer(char **parts, int n, int from, GString *out, const char *ldm,
                                 gboolean *linear) {
  if (n - from < 2 || !is_param(parts[n - 1])) return FALSE;
  g_autofree char *rest = join_from(parts, from);
  *linear = n - from == 2 && (!strcmp(parts[from], "proj_in") || !strcmp(parts[from], "proj_out"));
  g_string_printf(out, "%s.%s", ldm, rest);
  return TRUE;
}

static gboolean unet_resnet(char **parts, int n, int from, GString *out, const char *ldm) {
  if (n - from != 2 || !is_param(parts[n - 1])) return FALSE;
  const char *p = unet_resnet_part(parts[from]);
  if (!p) return FALSE;
  g_string_printf(out, "%s.%s.%s", ldm, p, parts[n - 1]);
  return TRUE;
}

/* A down or up block's slot j ("resnets" or "attentions" at parts[2]):
 * the ldm block b's layer 0 or 1. */
static gboolean unet_block_slot(char **parts, int n, GString *out, const char *b,
                                gboolean *linear) {
  if (!strcmp(parts[2], "resnets")) {
    g_autofree char *ldm = g_strconcat(b, ".0", NULL);
    return unet_resnet(parts, n, 4, out, ldm);
  }
  if (!strcmp(parts[2], "attentions")) {
    g_autofree char *ldm = g_strconcat(b, ".1", NULL);
    return unet_transformer(parts, n, 4, out, ldm, linear);
  }
  return FALSE;
}

gboolean sige_sd_unet_name(const sige_weights *w, const char *key, int res_blocks, GString *out,
                           gboolean *linear) {
  g_auto(GStrv) parts = g_strsplit(key, ".", 16);
  const int n = (int)g_strv_length(parts);
  *linear = FALSE;
  if (n < 2 || !is_param(parts[n - 1])) return FALSE;
  const char *param = parts[n - 1];
  if (n == 2) {
    static const char *const top[][2] = {
      {"conv_in", "input_blocks.0.0"}, {"conv_norm_out", "out.0"}, {"conv_out", "out.2"}};
    for (guint i = 0; i < G_N_ELEMENTS(top); i++)
      if (!strcmp(parts[0], top[i][0])) {
        g_string_printf(out, "%s.%s", top[i][1], param);
        return TRUE;
      }
    return FALSE;
  }
  if (n == 3 && !strcmp(parts[0], "time_embedding")) {
    if (strcmp(parts[1], "linear_1") != 0 && strcmp(parts[1], "linear_2") != 0) return FALSE;
    g_string_printf(out, "time_embed.%c.%s", parts[1][7] == '1' ? '0' : '2', param);
    return TRUE;
  }
  int i, j;
  if (!strcmp(parts[0], "mid_block")) {
    if (n < 4 || !parse_int(parts[2], &j)) return FALSE;
    if (!strcmp(parts[1], "resnets") && j <= 1) {
      g_autofree char *ldm = g_strdup_printf("middle_block.%d", 2 * j);
      return unet_resnet(parts, n, 3, out, ldm);
    }
    if (!strcmp(parts[1], "attentions") && j == 0)
      return unet_transformer(parts, n, 3, out, "middle_block.1", linear);
    return FALSE;
  }
  const gboolean down = !strcmp(parts[0], "down_blocks");
  if ((!down && strcmp(parts[0], "up_blocks") != 0) || n < 5 || !parse_int(parts[1], &i) ||
      !parse_int(parts[3], &j))
    return FALSE;
  const int R = res_blocks;
  if (down) {
    if (!strcmp(parts[2], "downsamplers")) {
      if (j != 0 || n != 6 || strcmp(parts[4], "conv") != 0) return FALSE;
      g_string_printf(out, "input_blocks.%d.0.op.%s", 1 + i * (R + 1) + R, param);
      return TRUE;
    }
    if (j >= R) return FALSE;
    g_autofree char *b = g_strdup_printf("input_blocks.%d", 1 + i * (R + 1) + j);
    return unet_block_slot(parts, n, out, b, linear);
  }
  const int k0 = i * (R + 1);
  if (!strcmp(parts[2], "upsamplers")) {
    if (j != 0 || n != 6 || strcmp(parts[4], "conv") != 0) return FALSE;
    /* after the attention of the block's last slot when it has one */
    g_autofree char *tr = g_strdup_printf("up_blocks.%d.attentions.%d.proj_in.weight", i, R);
    g_string_printf(out, "output_blocks.%d.%d.conv.%s", k0 + R,
                    sige_weights_contains(w, tr) ? 2 : 1, param);
    return TRUE;
  }
  if (j > R) return FALSE;
  g_autofree char *b = g_strdup_printf("output_blocks.%d", k0 + j);
  return unet_block_slot(parts, n, out, b, linear);
}

/* A VAE resnet: the same names but conv_shortcut */
static gboolean vae_resnet(char **parts, int n, int from, GString *out, const char *ldm) {
  static const char *const names[] = {"norm1", "conv1", "norm2", "conv2"};
  if (n - from != 2 || !is_param(parts[n - 1])) return FALSE;
  const char *p = NULL;
  if (!strcmp(parts[from], "conv_shortcut")) p = "nin_shortcut";
  for (guint i = 0; !p && i < G_N_ELEMENTS(names); i++)
    if (!strcmp(parts[from], names[i])) p = names[i];
  if (!p) return FALSE;
  g_string_printf(out, "%s.%s.%s", ldm, p, parts[n - 1]);
  return TRUE;
}

static gboolean vae_attention(char **parts, int n, int from, GString *out, const char *ldm,
                              gboolean *linear) {
  static const char *const map[][2] = {
    {"group_norm", "norm"}, {"to_q", "q"},   {"to_k", "k"},   {"to_v", "v"},
    {"query", "q"},         {"key", "k"},    {"value", "v"},  {"proj_attn", "proj_out"},
  };
  const char *param = parts[n - 1];
  if (!is_param(param)) return FALSE;
  if (n - from == 3 && !strcmp(parts[from], "to_out") && !strcmp(parts[from + 1], "0")) {
    *linear = TRUE;
    g_string_printf(out, "%s.proj_out.%s", ldm, param);
    return TRUE;
  }
  if (n - from != 2) return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS(map); i++)
    if (!strcmp(parts[from], map[i][0])) {
      *linear = i > 0;
      g_string_printf(out, "%s.%s.%s", ldm, map[i][1], param);
      return TRUE;
    }
  return FALSE;
}

gboolean sige_sd_vae_name(const char *key, int levels, GString *out, gboolean *linear) {
  g_auto(GStrv) parts = g_strsplit(key, ".", 16);
  const int n = (int)g_strv_length(parts);
  *linear = FALSE;
  if (n < 2 || !is_param(parts[n - 1])) return FALSE;
  const char *param = parts[n - 1];
  if (n == 2) {
    if (!strcmp(parts[0], "quant_conv") || !strcmp(parts[0], "post_quant_conv")) {
      g_string_assign(out, key);
      return TRUE;
    }
    return FALSE;
  }
  const gboolean enc = !strcmp(parts[0], "encoder");
  if (!enc && strcmp(parts[0], "decoder") != 0) return FALSE;
  const char *half = parts[0];
  if (n == 3) {
    if (!strcmp(parts[1], "conv_in") || !strcmp(parts[1], "conv_out")) {
      g_string_assign(out, key);
      return TRUE;
    }
    if (!strcmp(parts[1], "conv_norm_out")) {
      g_string_printf(out, "%s.norm_out.%s", half, param);
      return TRUE;
    }
    return FALSE;
  }
  int i, j;
  if (!strcmp(parts[1], "mid_block")) {
    if (n < 5 || !parse_int(parts[3], &j)) return FALSE;
    if (!strcmp(parts[2], "resnets") && j <= 1) {
      g_autofree char *ldm = g_strdup_printf("%s.mid.block_%d", half, j + 1);
      return vae_resnet(parts, n, 4, out, ldm);
    }
    if (!strcmp(parts[2], "attentions") && j == 0) {
      g_autofree char *ldm = g_strdup_printf("%s.mid.attn_1", half);
      return vae_attention(parts, n, 4, out, ldm, linear);
    }
    return FALSE;
  }
  const char *blocks = enc ? "down_blocks" : "up_blocks";
  if (strcmp(parts[1], blocks) != 0 || n < 6 || !parse_int(parts[2], &i) ||
      !parse_int(parts[4], &j) || i >= levels)
    return FALSE;
  const int lv = enc ? i : levels - 1 - i;
  const char *level = enc ? "down" : "up";
  if (!strcmp(parts[3], enc ? "downsamplers" : "upsamplers")) {
    if (j != 0 || n != 7 || strcmp(parts[5], "conv") != 0) return FALSE;
    g_string_printf(out, "%s.%s.%d.%s.conv.%s", half, level, lv,
                    enc ? "downsample" : "upsample", param);
    return TRUE;
  }
  if (strcmp(parts[3], "resnets") != 0) return FALSE;
  g_autofree char *ldm = g_strdup_printf("%s.%s.%d.block.%d", half, level, lv, j);
  return vae_resnet(parts, n, 5, out, ldm);
}
