#include "sige/error.h"

G_DEFINE_QUARK(sige-error-quark, sige_error)
