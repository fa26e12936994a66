/* Cityscapes palette: the colours are the ones of cityscapesScripts'
 * labels.py so that label maps drawn for the official tools work here. */
#include "sige-app/palette.h"

#include "sige/error.h"

static const sige_palette_entry cityscapes_entries[SIGE_CITYSCAPES_NUM_IDS] = {
    {"unlabeled", {0, 0, 0}},
    {"ego vehicle", {0, 0, 0}},
    {"rectification border", {0, 0, 0}},
    {"out of roi", {0, 0, 0}},
    {"static", {0, 0, 0}},
    {"dynamic", {111, 74, 0}},
    {"ground", {81, 0, 81}},
    {"road", {128, 64, 128}},
    {"sidewalk", {244, 35, 232}},
    {"parking", {250, 170, 160}},
    {"rail track", {230, 150, 140}},
    {"building", {70, 70, 70}},
    {"wall", {102, 102, 156}},
    {"fence", {190, 153, 153}},
    {"guard rail", {180, 165, 180}},
    {"bridge", {150, 100, 100}},
    {"tunnel", {150, 120, 90}},
    {"pole", {153, 153, 153}},
    {"polegroup", {153, 153, 153}},
    {"traffic light", {250, 170, 30}},
    {"traffic sign", {220, 220, 0}},
    {"vegetation", {107, 142, 35}},
    {"terrain", {152, 251, 152}},
    {"sky", {70, 130, 180}},
    {"person", {220, 20, 60}},
    {"rider", {255, 0, 0}},
    {"car", {0, 0, 142}},
    {"truck", {0, 0, 70}},
    {"bus", {0, 60, 100}},
    {"caravan", {0, 0, 90}},
    {"trailer", {0, 0, 110}},
    {"train", {0, 80, 100}},
    {"motorcycle", {0, 0, 230}},
    {"bicycle", {119, 11, 32}},
};

static const sige_palette cityscapes = {"Cityscapes", SIGE_CITYSCAPES_NUM_IDS, cityscapes_entries};

const sige_palette *sige_palette_cityscapes(void) { return &cityscapes; }

int sige_palette_lookup_exact(const guint8 rgb[3]) {
  /* ascending scan: the first match is the lowest id of a shared colour */
  for (int i = 0; i < SIGE_CITYSCAPES_NUM_IDS; i++) {
    const guint8 *c = cityscapes_entries[i].rgb;
    if (c[0] == rgb[0] && c[1] == rgb[1] && c[2] == rgb[2]) return i;
  }
  return -1;
}

int sige_palette_lookup_nearest(const guint8 rgb[3]) {
  int best = 0;
  int best_d = G_MAXINT;
  for (int i = 0; i < SIGE_CITYSCAPES_NUM_IDS; i++) {
    const guint8 *c = cityscapes_entries[i].rgb;
    int d = 0;
    for (int k = 0; k < 3; k++) d += ((int)rgb[k] - c[k]) * ((int)rgb[k] - c[k]);
    if (d < best_d) { /* strict: ties keep the lower id */
      best_d = d;
      best = i;
    }
  }
  return best;
}

void sige_labels_from_rgb(const guint8 *rgb, int w, int h, int32_t *labels, int64_t *n_nearest) {
  const size_t n = (size_t)w * (size_t)h;
  int64_t nearest = 0;
  /* label maps are mostly large flat regions: remember the last colour */
  guint8 last[3] = {0, 0, 0};
  int last_id = 0;
  gboolean last_nearest = FALSE;
  for (size_t i = 0; i < n; i++) {
    const guint8 *p = rgb + 3 * i;
    if (i > 0 && p[0] == last[0] && p[1] == last[1] && p[2] == last[2]) {
      labels[i] = last_id;
      nearest += last_nearest;
      continue;
    }
    int id = sige_palette_lookup_exact(p);
    last_nearest = id < 0;
    if (id < 0) {
      id = sige_palette_lookup_nearest(p);
      nearest++;
    }
    labels[i] = id;
    last[0] = p[0];
    last[1] = p[1];
    last[2] = p[2];
    last_id = id;
  }
  if (n_nearest) *n_nearest = nearest;
}

gboolean sige_labels_from_index(const guint8 *index, int w, int h, int32_t *labels,
                                const char *what, GError **error) {
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      const size_t i = (size_t)y * (size_t)w + (size_t)x;
      if (index[i] >= SIGE_CITYSCAPES_NUM_IDS) {
        g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                    "%s%spixel (%d, %d) has class index %d; Cityscapes ids are 0..%d",
                    what ? what : "", what ? ": " : "", x, y, index[i],
                    SIGE_CITYSCAPES_NUM_IDS - 1);
        return FALSE;
      }
      labels[i] = index[i];
    }
  }
  return TRUE;
}

gboolean sige_labels_to_rgb(const int32_t *labels, int w, int h, guint8 *rgb, GError **error) {
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      const size_t i = (size_t)y * (size_t)w + (size_t)x;
      const int32_t id = labels[i];
      if (id < 0 || id >= SIGE_CITYSCAPES_NUM_IDS) {
        g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                    "pixel (%d, %d) has label %d; Cityscapes ids are 0..%d", x, y, (int)id,
                    SIGE_CITYSCAPES_NUM_IDS - 1);
        return FALSE;
      }
      const guint8 *c = cityscapes_entries[id].rgb;
      rgb[3 * i] = c[0];
      rgb[3 * i + 1] = c[1];
      rgb[3 * i + 2] = c[2];
    }
  }
  return TRUE;
}

char *sige_palette_to_gpl(const sige_palette *p) {
  GString *s = g_string_new("GIMP Palette\n");
  g_string_append_printf(s, "Name: %s\nColumns: 8\n#\n", p->name);
  for (int i = 0; i < p->n; i++) {
    const sige_palette_entry *e = &p->entries[i];
    g_string_append_printf(s, "%3d %3d %3d\t%d %s\n", e->rgb[0], e->rgb[1], e->rgb[2], i, e->name);
  }
  return g_string_free(s, FALSE);
}
