/* How a run talks to GIMP: messages, and the run's own progress window with
 * a Cancel that stops the pass (GIMP's status-bar progress is never used:
 * its Cancel closes the whole resident plug-in).  Compiled into both
 * front-ends: the libgimp and GTK calls it makes are the same in GIMP 2.10
 * (GTK 2) and GIMP 3 (GTK 3) but for the few marked. */
#pragma once
#include "sige-regen.h"

/* Around a whole procedure call (after its dialog, which GIMP must still
 * place over the image window): prepares the progress window where GIMP
 * has a display and redirects the plug-in's GIMP progress into it; _end
 * takes both down and closes the window on screen at once.  The window
 * shows only while a model loads or a pass runs. */
void sige_gimp_host_begin(void);
void sige_gimp_host_end(void);

sige_regen_host sige_gimp_host(gboolean interactive);
