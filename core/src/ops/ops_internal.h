/* Helpers shared by the public dense operators, which check their
 * arguments and hand them to the backend their tensor lives on
 * (sige_tensor_iface); not part of the public API. */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "../backend/backend_impl.h"
#include "sige/error.h"
#include "sige/ops.h"
#include "sige/tensor.h"

static inline gboolean sige_ops_is4(const sige_tensor *t) { return t && t->ndim == 4; }

/* The dense ops compute in float32 only: a tensor with F16 storage (an fp16
 * activation cache) reaching one is a caller bug, refused rather than read as
 * floats.  NULL passes (optional arguments). */
static inline gboolean sige_ops_f32(const sige_tensor *t) {
  return !t || t->storage == SIGE_STORAGE_F32;
}

/* SIGE_ERROR_INVALID naming the op when one of a..d (may be NULL) is F16. */
G_GNUC_INTERNAL gboolean sige_ops_check_f32(GError **error, const char *op, const sige_tensor *a,
                                            const sige_tensor *b, const sige_tensor *c,
                                            const sige_tensor *d);

/* SIGE_ERROR_SHAPE with the op's name, a free-form reason and up to three
 * tensors' shapes (NULL entries are skipped). */
G_GNUC_INTERNAL void sige_ops_shape_error(GError **error, const char *op, const char *reason,
                                          const sige_tensor *a, const char *a_name,
                                          const sige_tensor *b, const char *b_name,
                                          const sige_tensor *c, const char *c_name);
