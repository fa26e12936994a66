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

G_END_DECLS
