/* Translation macros of the plug-in (gettext domain "sparse-regenerate"). */
#pragma once
#include <glib/gi18n-lib.h>
