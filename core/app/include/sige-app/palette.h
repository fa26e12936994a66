/* The Cityscapes label palette (ids 0..33 of cityscapesScripts' labels.py)
 * and conversions between label-map colours and class ids. */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define SIGE_CITYSCAPES_NUM_IDS 34

typedef struct {
  const char *name; /* "road", "traffic light", ... */
  guint8 rgb[3];
} sige_palette_entry;

typedef struct {
  const char *name; /* "Cityscapes" */
  int n;            /* entries[i] is the colour of id i */
  const sige_palette_entry *entries;
} sige_palette;

const sige_palette *sige_palette_cityscapes(void);

/* The id whose colour is exactly rgb, or -1.  Several ids share a colour
 * (0..4 are black, 17/18 grey): the lowest id wins, so black maps to 0. */
int sige_palette_lookup_exact(const guint8 rgb[3]);

/* Nearest palette colour by squared RGB distance (ties: lowest id). */
int sige_palette_lookup_nearest(const guint8 rgb[3]);

/* rgb: w*h*3 bytes -> labels: w*h ids.  Colours not in the palette take the
 * nearest id; their count goes to *n_nearest (may be NULL). */
void sige_labels_from_rgb(const guint8 *rgb, int w, int h, int32_t *labels, int64_t *n_nearest);

/* A class-index image (1 byte per pixel) -> labels; a value above 33 is an
 * error (SIGE_ERROR_FORMAT) naming the first such pixel.  `what` names the
 * source in the message (a file name), may be NULL. */
gboolean sige_labels_from_index(const guint8 *index, int w, int h, int32_t *labels,
                                const char *what, GError **error);

/* labels -> rgb (w*h*3 bytes); an id outside 0..33 is an error
 * (SIGE_ERROR_INVALID) naming the pixel. */
gboolean sige_labels_to_rgb(const int32_t *labels, int w, int h, guint8 *rgb, GError **error);

/* The palette in GIMP's .gpl format ("R G B\t<id> <name>" per id); free
 * with g_free. */
char *sige_palette_to_gpl(const sige_palette *p);

G_END_DECLS
