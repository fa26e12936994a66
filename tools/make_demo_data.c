/* sige-make-demo-data: writes the demo files shipped in data/ (a street label
 * map, an edited copy, untrained SPADE generator weights and the Cityscapes
 * GIMP palette).  Everything comes from one fixed-seed PRNG and fixed
 * arithmetic, so two runs give byte-identical files. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sige/error.h"
#include "sige/model.h"
#include "sige/rng.h"
#include "sige/tensor.h"
#include "sige/weights.h"
#include "sige-app/palette.h"
#include "sige-app/png_io.h"

enum {
  ID_ROAD = 7, ID_SIDEWALK = 8, ID_BUILDING = 11, ID_WALL = 12, ID_FENCE = 13, ID_POLE = 17,
  ID_LIGHT = 19, ID_SIGN = 20, ID_VEGETATION = 21, ID_TERRAIN = 22, ID_SKY = 23,
  ID_PERSON = 24, ID_CAR = 26,
};

#define SCENE_W 512
#define SCENE_H 256
#define SEMANTIC_NC 36 /* 35 Cityscapes labels + the instance-edge channel */

/* ---- deterministic randomness ------------------------------------------ */

/* [lo, hi] by modulo: the draws the committed demo data were made with. */
static int rng_int(sige_rng *r, int lo, int hi) {
  return lo + (int)(sige_rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* ---- the street scene --------------------------------------------------- */

/* One-point perspective: the road's vanishing point, and the ground row
 * where things at depth t (0 far .. 1 near) stand. */
#define VP_X 256
#define VP_Y 112

typedef struct {
  int32_t id[SCENE_H][SCENE_W];
} scene;

static void fill_rect(scene *s, int x0, int y0, int x1, int y1, int id) {
  for (int y = MAX(y0, 0); y < MIN(y1, SCENE_H); y++)
    for (int x = MAX(x0, 0); x < MIN(x1, SCENE_W); x++) s->id[y][x] = id;
}

static void fill_ellipse(scene *s, double cx, double cy, double rx, double ry, int id) {
  for (int y = MAX((int)(cy - ry), 0); y <= MIN((int)(cy + ry) + 1, SCENE_H - 1); y++)
    for (int x = MAX((int)(cx - rx), 0); x <= MIN((int)(cx + rx) + 1, SCENE_W - 1); x++) {
      const double dx = (x + 0.5 - cx) / rx, dy = (y + 0.5 - cy) / ry;
      if (dx * dx + dy * dy <= 1.0) s->id[y][x] = id;
    }
}

/* Half-widths of the road and of road + sidewalk at row y (below VP_Y). */
static double road_half(int y) { return (y - VP_Y) * 2.2; }
static double walk_half(int y) { return (y - VP_Y) * 3.4; }

/* A car standing on ground row `base` centred at cx, sized by perspective. */
static void draw_car(scene *s, double cx, int base) {
  const double scale = (base - VP_Y) / 144.0; /* 1 at the bottom row */
  const double w = 150.0 * scale, body_h = 38.0 * scale, cab_h = 26.0 * scale;
  fill_rect(s, (int)(cx - w / 2), (int)(base - body_h), (int)(cx + w / 2), base, ID_CAR);
  fill_rect(s, (int)(cx - w * 0.32), (int)(base - body_h - cab_h), (int)(cx + w * 0.3),
            (int)(base - body_h + 1), ID_CAR);
  /* wheels stick out below the body a little */
  fill_ellipse(s, cx - w * 0.3, base, w * 0.1, body_h * 0.3, ID_CAR);
  fill_ellipse(s, cx + w * 0.3, base, w * 0.1, body_h * 0.3, ID_CAR);
}

static void draw_tree(scene *s, double cx, int base, double scale) {
  fill_rect(s, (int)(cx - 3 * scale), (int)(base - 60 * scale), (int)(cx + 3 * scale + 1), base,
            ID_VEGETATION);
  fill_ellipse(s, cx, base - 75 * scale, 30 * scale, 34 * scale, ID_VEGETATION);
  fill_ellipse(s, cx - 18 * scale, base - 60 * scale, 18 * scale, 16 * scale, ID_VEGETATION);
}

static void draw_pole(scene *s, double cx, int base, double scale, int top_id) {
  const int top = (int)(base - 120 * scale);
  fill_rect(s, (int)(cx - 1.5 * scale), top, (int)(cx + 1.5 * scale + 1), base, ID_POLE);
  if (top_id == ID_SIGN)
    fill_rect(s, (int)(cx - 8 * scale), top, (int)(cx + 8 * scale), (int)(top + 14 * scale),
              ID_SIGN);
  else if (top_id == ID_LIGHT)
    fill_rect(s, (int)(cx - 4 * scale), top, (int)(cx + 4 * scale + 1), (int)(top + 22 * scale),
              ID_LIGHT);
}

static void draw_person(scene *s, double cx, int base, double scale) {
  const double h = 95 * scale;
  fill_ellipse(s, cx, base - h + 6 * scale, 5.5 * scale, 6.5 * scale, ID_PERSON);
  fill_rect(s, (int)(cx - 9 * scale), (int)(base - h + 12 * scale), (int)(cx + 9 * scale),
            (int)(base - h * 0.45), ID_PERSON);
  fill_rect(s, (int)(cx - 8 * scale), (int)(base - h * 0.46), (int)(cx - 1 * scale), base,
            ID_PERSON);
  fill_rect(s, (int)(cx + 1 * scale), (int)(base - h * 0.46), (int)(cx + 8 * scale),
            (int)(base - 3 * scale), ID_PERSON);
}

static void draw_street(scene *s, sige_rng *r) {
  fill_rect(s, 0, 0, SCENE_W, SCENE_H, ID_SKY);
  /* building blocks: taller near the image edges (closer to the camera) */
  for (int side = 0; side < 2; side++) {
    int x = 0;
    while (x < SCENE_W / 2) {
      const int bw = rng_int(r, 24, 70);
      const double closeness = 1.0 - (double)x / (SCENE_W / 2);
      const int top = (int)(VP_Y - 25 - closeness * rng_int(r, 50, 95));
      const int x0 = side == 0 ? x : SCENE_W - x - bw, x1 = x0 + bw;
      fill_rect(s, x0, MAX(top, 2), x1, VP_Y + 1, rng_int(r, 0, 6) == 0 ? ID_WALL : ID_BUILDING);
      x += bw;
    }
  }
  /* far end of the street: low buildings around the vanishing point */
  fill_rect(s, VP_X - 40, VP_Y - 18, VP_X + 40, VP_Y + 1, ID_BUILDING);
  /* ground: facades continue down to the kerb line, then sidewalk and road */
  for (int y = VP_Y + 1; y < SCENE_H; y++)
    for (int x = 0; x < SCENE_W; x++) {
      const double d = fabs(x + 0.5 - VP_X);
      s->id[y][x] = d < road_half(y) ? ID_ROAD : d < walk_half(y) ? ID_SIDEWALK : ID_BUILDING;
    }
  /* a strip of grass and a fence on the right sidewalk's outer edge */
  for (int y = VP_Y + 20; y < SCENE_H; y++) {
    const int xo = (int)(VP_X + walk_half(y));
    fill_rect(s, xo - (int)((y - VP_Y) * 0.5), y, xo, y + 1, ID_TERRAIN);
  }
  for (int x = 360; x < 420; x++) { /* a fence standing on the kerb line */
    const int kerb = VP_Y + (int)((x - VP_X) / 3.4);
    fill_rect(s, x, kerb - (kerb - VP_Y) / 3, x + 1, kerb, ID_FENCE);
  }
  /* trees along the left sidewalk, growing towards the camera */
  for (int i = 0; i < 4; i++) {
    const int base = 130 + i * 28;
    const double scale = (base - VP_Y) / 100.0;
    draw_tree(s, VP_X - walk_half(base) * 0.88 + rng_int(r, -4, 4), base, scale);
  }
  draw_tree(s, VP_X + walk_half(140) * 0.8, 140, 0.3);
  /* poles with a sign and a traffic light, and a plain one */
  draw_pole(s, VP_X + walk_half(150) * 0.75, 150, 0.38, ID_SIGN);
  draw_pole(s, VP_X + walk_half(200) * 0.78, 200, 0.88, ID_LIGHT);
  draw_pole(s, VP_X - walk_half(172) * 0.72, 172, 0.6, 0);
  /* cars: one parked on the right, one oncoming on the left, one ahead */
  draw_car(s, VP_X + road_half(236) * 0.62, 236);
  draw_car(s, VP_X - road_half(150) * 0.45, 150);
  draw_car(s, VP_X + road_half(128) * 0.3, 128);
  /* a pedestrian on the right sidewalk */
  draw_person(s, VP_X + (road_half(176) + walk_half(176)) / 2, 176, 0.62);
}

/* The edit: one more car, oncoming in the left lane. */
static void draw_edit(scene *s) { draw_car(s, VP_X - road_half(184) * 0.5, 184); }

static gboolean write_scene(const scene *s, const char *path, GError **error) {
  g_autofree guint8 *rgb = g_new(guint8, (size_t)SCENE_W * SCENE_H * 3);
  if (!sige_labels_to_rgb(&s->id[0][0], SCENE_W, SCENE_H, rgb, error)) return FALSE;
  return sige_png_write(path, rgb, SCENE_W, SCENE_H, 3, error);
}

/* ---- untrained SPADE weights -------------------------------------------- */

/* The conv gains: chosen by rendering the demo scene so that the output is
 * colourful, region-following and mostly unsaturated (tanh not pinned). */
#define GAIN_SHARED 2.0  /* segmap -> hidden: makes label regions distinct */
#define GAIN_GAMMA 0.3   /* keeps (1 + gamma) near 1 */
#define GAIN_BETA 1.5    /* the label-driven offsets that carry the colours */
#define GAIN_MAIN 0.5    /* residual branch convs: tame growth over 7 blocks */
#define GAIN_SHORTCUT 0.7
#define GAIN_FC 0.5      /* the 8x4 latent is upsampled 64x: blocky when it dominates */
#define GAIN_IMG 4.5     /* the features end up small; this spreads them over tanh's range */

/* A conv's gain and bias deviation by the last part of its key prefix. */
static void conv_init(const char *key, double *gain, double *bias_std) {
  static const struct {
    const char *suffix;
    double gain, bias_std;
  } rules[] = {{".mlp_shared.0.", GAIN_SHARED, 0.1}, {".mlp_gamma.", GAIN_GAMMA, 0.02},
               {".mlp_beta.", GAIN_BETA, 0.05},      {".conv_0.", GAIN_MAIN, 0.02},
               {".conv_1.", GAIN_MAIN, 0.02},        {".conv_s.", GAIN_SHORTCUT, 0.0},
               {"fc.", GAIN_FC, 0.05},               {"conv_img.", GAIN_IMG, 0.05}};
  for (size_t i = 0; i < G_N_ELEMENTS(rules); i++)
    if (strstr(key, rules[i].suffix)) {
      *gain = rules[i].gain;
      *bias_std = rules[i].bias_std;
      return;
    }
  g_error("make_demo_data: no gain for '%s'", key);
}

/* The generator's own parameter list, walked in its order: convs He-normal
 * with an explicit gain (std = gain / sqrt(fan_in)), BatchNorm statistics
 * at identity. */
static gboolean write_weights(const char *path, int nf, GError **error) {
  sige_spade_config cfg;
  sige_spade_config_init(&cfg);
  cfg.ngf = nf;
  cfg.label_nc = SEMANTIC_NC - 1;
  cfg.contain_instance = TRUE;
  g_autoptr(sige_param_list) l = sige_model_kind_params(SIGE_MODEL_SPADE, &cfg, error);
  if (!l) return FALSE;
  g_autoptr(sige_weights) w = sige_weights_new();
  sige_rng rng;
  sige_rng_init(&rng, 0x5eed5bade0000001ull);
  for (guint i = 0; i < sige_param_list_length(l); i++) {
    const sige_param *p = sige_param_list_get(l, i);
    sige_tensor *t = sige_tensor_new(p->ndim, p->shape, error);
    if (!t) return FALSE;
    double gain = 0.0, bias_std = 0.0;
    if (p->role == SIGE_PARAM_WEIGHT || p->role == SIGE_PARAM_BIAS)
      conv_init(p->key, &gain, &bias_std);
    const double std = p->role == SIGE_PARAM_WEIGHT ? gain / sqrt((double)p->fan_in)
                       : p->role == SIGE_PARAM_BIAS ? bias_std
                                                    : 0.0;
    const float value = p->role == SIGE_PARAM_RUNNING_VAR ? 1.0f : 0.0f;
    for (size_t k = 0; k < t->numel; k++)
      t->data[k] = std > 0.0 ? (float)(std * sige_rng_normal(&rng)) : value;
    sige_weights_insert(w, p->key, t);
  }
  g_autoptr(GHashTable) meta = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(meta, "sige.model", "spade-generator");
  g_hash_table_insert(meta, "sige.note", "untrained demo weights: abstract images");
  return sige_weights_save_safetensors(w, path, SIGE_DTYPE_F16, meta, error);
}

/* ---- main --------------------------------------------------------------- */

static gboolean write_text(const char *path, const char *text, GError **error) {
  GError *e = NULL;
  if (!g_file_set_contents(path, text, -1, &e)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s", e->message);
    g_error_free(e);
    return FALSE;
  }
  return TRUE;
}

static gboolean make_dirs(const char *out, GError **error) {
  static const char *const sub[] = {"examples", "models", "palettes"};
  for (size_t i = 0; i < G_N_ELEMENTS(sub); i++) {
    g_autofree char *d = g_build_filename(out, sub[i], NULL);
    if (g_mkdir_with_parents(d, 0755) != 0) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot create folder", d);
      return FALSE;
    }
  }
  return TRUE;
}

int main(int argc, char **argv) {
  int ngf = 16;
  GOptionEntry entries[] = {
      {"ngf", 0, 0, G_OPTION_ARG_INT, &ngf, "Generator base width (default 16)", "N"},
      {NULL, 0, 0, 0, NULL, NULL, NULL}};
  g_autoptr(GOptionContext) ctx = g_option_context_new("[OUTPUT-DIR]");
  g_option_context_set_summary(ctx,
                               "Writes the demo data (label maps, untrained SPADE weights, "
                               "Cityscapes palette) under OUTPUT-DIR (default: data).");
  g_option_context_add_main_entries(ctx, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc > 2 || ngf < 1 || ngf > 64) {
    fprintf(stderr, "sige-make-demo-data: %s\n",
            error ? error->message : "usage: sige-make-demo-data [--ngf N] [OUTPUT-DIR]");
    g_clear_error(&error);
    return 2;
  }
  const char *out = argc == 2 ? argv[1] : "data";
  g_autofree char *p_labels = g_build_filename(out, "examples", "street_labels.png", NULL);
  g_autofree char *p_edit = g_build_filename(out, "examples", "street_labels_edit.png", NULL);
  g_autofree char *p_model = g_build_filename(out, "models", "gaugan-demo.safetensors", NULL);
  g_autofree char *p_gpl = g_build_filename(out, "palettes", "Cityscapes.gpl", NULL);
  g_autofree char *gpl = sige_palette_to_gpl(sige_palette_cityscapes());

  scene *s = g_new0(scene, 1);
  sige_rng rng;
  sige_rng_init(&rng, 0x5eed5bade0000000ull);
  draw_street(s, &rng);
  gboolean ok = make_dirs(out, &error) && write_scene(s, p_labels, &error);
  if (ok) {
    draw_edit(s);
    ok = write_scene(s, p_edit, &error) && write_weights(p_model, ngf, &error) &&
         write_text(p_gpl, gpl, &error);
  }
  g_free(s);
  if (!ok) {
    fprintf(stderr, "sige-make-demo-data: %s\n", error->message);
    g_error_free(error);
    return 1;
  }
  printf("wrote %s, %s, %s, %s\n", p_labels, p_edit, p_model, p_gpl);
  return 0;
}
