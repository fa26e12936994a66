/* Names both front-ends give GIMP: the procedures keep them in GIMP 2.10
 * and GIMP 3 so that scripts work in either, and the parasites so that an
 * XCF saved by one is understood by the other. */
#pragma once

#define SIGE_RUN_PROC "plug-in-sparse-regenerate"
/* SIGE_RUN_PROC's arguments and the Stable Diffusion ones after them
 * (GIMP 2.10's Script-Fu refuses a call with fewer arguments than the
 * procedure has, so the old procedure keeps its seven). */
#define SIGE_RUN_SD_PROC "plug-in-sparse-regenerate-sd"
#define SIGE_RESET_PROC "plug-in-sparse-regenerate-reset"
#define SIGE_LIVE_PROC "plug-in-sparse-regenerate-live"
#define SIGE_EXTENSION_PROC "extension-sparse-regenerate"
#define SIGE_MENU_PATH "<Image>/Filters/Generative"
/* The help domain: help/<language>/gimp-help.xml beside the binary maps the
 * procedures' names (their help ids) to the user guide's pages. */
#define SIGE_HELP_DOMAIN "sparse-regenerate"
/* On the source layer: its session (sige_regen_tag_format). */
#define SIGE_PARASITE "sparse-regenerate-session"
/* On the output layer: the id of the source layer it shows. */
#define SIGE_OUTPUT_PARASITE "sparse-regenerate-output"
