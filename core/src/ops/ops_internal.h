/* Helpers shared by the dense operators; not part of the public API. */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "../device/dev_ops.h"
#include "sige/error.h"
#include "sige/ops.h"
#include "sige/tensor.h"

/* Beyond this many floats an im2col / score buffer is tiled: larger buffers stop
 * fitting anywhere near cache and only cost page faults on first use. */
#define SIGE_OPS_SCRATCH_LIMIT ((size_t)16 << 20) /* 64 MiB of floats */

/* A 4-D tensor is addressed as planes of H*W floats; only where the planes sit
 * depends on the layout, so every per-(n, c) op works on both layouts through
 * these two strides. */
static inline size_t sige_ops_chan_stride(const sige_tensor *t) {
  size_t hw = (size_t)t->shape[2] * (size_t)t->shape[3];
  return t->layout == SIGE_LAYOUT_CNHW ? hw * (size_t)t->shape[0] : hw;
}

static inline size_t sige_ops_img_stride(const sige_tensor *t) {
  size_t hw = (size_t)t->shape[2] * (size_t)t->shape[3];
  return t->layout == SIGE_LAYOUT_CNHW ? hw : hw * (size_t)t->shape[1];
}

static inline float *sige_ops_plane(const sige_tensor *t, int n, int c) {
  return t->data + (size_t)n * sige_ops_img_stride(t) + (size_t)c * sige_ops_chan_stride(t);
}

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

/* Applies act to n contiguous floats in place (dispatching once, not per element,
 * so that the loops vectorise). */

/* y = x * s + b then act, over n contiguous floats; y may equal x. */
G_GNUC_INTERNAL void sige_ops_affine_act(const float *x, float *y, size_t n, float s, float b,
                                         sige_act act);
