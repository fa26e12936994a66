/* How a run talks to GIMP: messages, the progress bar and, in interactive
 * runs, a Cancel button while the pass works.  Compiled into both
 * front-ends: the libgimp and GTK calls it makes are the same in GIMP 2.10
 * (GTK 2) and GIMP 3 (GTK 3). */
#pragma once
#include "sige-regen.h"

sige_regen_host sige_gimp_host(gboolean interactive);
