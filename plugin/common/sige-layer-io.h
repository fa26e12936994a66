/* What the plug-ins add to the app layer's conversions (sige-app/pixels.h):
 * whether a session can go on with new settings, and the rectangle a layer
 * changed in.  No GIMP here. */
#pragma once
#include <glib.h>
#include <stdint.h>
#include "sige-app/edit_params.h"
#include "sige-app/input_kind.h"
#include "sige-app/pixels.h"
#include "sige/model.h"
#include "sige/sampler.h"
#include "sige/session.h"
#include "sige/tensor.h"

G_BEGIN_DECLS

/* Whether a session made with `old` can go on with `now`: NULL if so, else
 * the translated names of the settings the caches depend on that changed
 * ("steps, seed"); g_free it. */
char *sige_plugin_options_change(const sige_session_options *old,
                                 const sige_session_options *now);

/* Bounding rectangle of the pixels that differ between a and b (same size);
 * width 0 when equal. */
sige_rect sige_pixels_diff_rect(const sige_pixels *a, const sige_pixels *b);

/* Untouched pixels stay untouched (SDEdit).  A DDPM edit after a snapshot
 * leaves the sampler's trace (a few levels) on every pixel, also far from
 * the stroke; the plug-in keeps the snapshot's pixels wherever the edit
 * does not reach.  The reach: every pixel of src that differs from the
 * snapshot's source base_src, grown by `margin` pixels (a square: a pixel
 * more than `margin` away horizontally or vertically from every changed
 * pixel is outside).  Outside it out takes base_out (the snapshot's output);
 * returns how many pixels it took.  All buffers src->width * height * bpp. */
gint64 sige_pixels_keep_untouched(const sige_pixels *src, const guint8 *base_src,
                                  const guint8 *base_out, guint8 *out, int margin);
/* The margin for a picture of this size: 1/16 of its smaller side, at least
 * 4 (16 pixels on the 256 x 256 church model).  Why: docs/USER-GUIDE.md. */
int sige_edit_margin(int width, int height);

G_END_DECLS
