/* Error domain of libsige: every recoverable failure is reported through GError. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

#define SIGE_ERROR (sige_error_quark())
GQuark sige_error_quark(void);

typedef enum {
  SIGE_ERROR_IO,          /* a file could not be opened, read or written */
  SIGE_ERROR_FORMAT,      /* a file is corrupt or not in the expected format */
  SIGE_ERROR_SHAPE,       /* a tensor has an unexpected shape */
  SIGE_ERROR_MISSING,     /* a required tensor or field is absent */
  SIGE_ERROR_NOMEM,       /* an allocation failed */
  SIGE_ERROR_UNSUPPORTED, /* a model kind, dtype or layer type we do not handle */
  SIGE_ERROR_CANCELLED,   /* the caller asked to stop */
  SIGE_ERROR_INVALID,     /* an argument is out of range */
  SIGE_ERROR_DEVICE,      /* no usable compute device, or the device failed */
  /* the caller's memory budget refuses it (sige_session_options.memory_budget);
   * no allocation failed, and the message says what would fit */
  SIGE_ERROR_OVER_BUDGET,
} sige_error_code;

G_END_DECLS
