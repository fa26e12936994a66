/* Messages of the application layer are in the plug-in's catalogue
 * (GETTEXT_PACKAGE, set by core/app/meson.build): translated in the GIMP
 * front-ends, which bind the domain, and English in the CLI. */
#pragma once
#include <glib/gi18n-lib.h>
