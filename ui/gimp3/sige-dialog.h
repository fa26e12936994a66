/* The Sparse Regenerate dialog (GIMP 3): a GimpProcedureDialog on the
 * procedure's config. */
#pragma once
#include <libgimp/gimp.h>

/* Shows the dialog; TRUE on OK, with the config updated and *instance set
 * to the chosen instance layer (or NULL). */
gboolean sige_gimp3_dialog_run(GimpProcedure *procedure, GimpProcedureConfig *config,
                               GimpImage *image, GimpDrawable *drawable,
                               GimpLayer **instance);
