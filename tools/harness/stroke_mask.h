/* Synthetic edit masks: a few thick brush strokes, as a user would paint. */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* An h x w mask (0 / 1 bytes, g_malloc'ed) of seeded random-walk strokes that
 * covers `fraction` of the image to within ~10% relative (strokes grow one
 * brush stamp at a time, and a stamp is a few percent of the target).
 * *covered receives the fraction actually covered. */
guint8 *sige_stroke_mask(int h, int w, double fraction, uint64_t seed, double *covered,
                         GError **error);

/* 8-bit gray PNG, 255 where mask != 0. */
gboolean sige_mask_save_png(const char *path, const guint8 *mask, int h, int w, GError **error);
/* Any PNG; a pixel > 127 (gray) is in the mask.  The size must be h x w, else
 * an error naming the file and the expected size. */
guint8 *sige_mask_load_png(const char *path, int h, int w, GError **error);

G_END_DECLS
