/* The Sparse Regenerate dialog (GIMP 2.10, GTK 2). */
#pragma once
#include "sige-plugin.h"

/* Shows the dialog for running on `drawable`; fills *s and returns TRUE on
 * OK.  Initialises GTK on first use (the extension stays GTK-free in batch
 * mode). */
gboolean sige_dialog_run(gint32 image, gint32 drawable, SigeSettings *s);
