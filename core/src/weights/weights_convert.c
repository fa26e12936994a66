/* File dtypes to float32: the one conversion every reader and the index use,
 * so that a tensor reads the same from safetensors and from PyTorch files. */
#include <string.h>

#include "weights_internal.h"

/* Source bytes are little-endian and, with an arbitrary header length, not
 * aligned: every element is read through memcpy.  One loop per dtype keeps
 * the switch out of the inner loop. */
#define CONVERT_LOOP(utype, from_le, expr)           \
  for (guint64 i = 0; i < n; i++) {                   \
    utype u;                                          \
    memcpy(&u, src + sizeof(utype) * i, sizeof u);    \
    u = from_le(u);                                   \
    dst[i] = (expr);                                  \
  }

static float bits_to_f32(guint32 u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static float bits_to_f64(guint64 u) {
  double d;
  memcpy(&d, &u, sizeof d);
  return (float)d;
}

#define IDENTITY(x) (x)

void sige_weights_convert(float *dst, const guint8 *src, guint64 n, sige_dtype dtype) {
  switch (dtype) {
    case SIGE_DTYPE_F32: CONVERT_LOOP(guint32, GUINT32_FROM_LE, bits_to_f32(u)) break;
    case SIGE_DTYPE_F16: CONVERT_LOOP(guint16, GUINT16_FROM_LE, sige_f16_to_f32(u)) break;
    case SIGE_DTYPE_BF16: CONVERT_LOOP(guint16, GUINT16_FROM_LE, sige_bf16_to_f32(u)) break;
    case SIGE_DTYPE_F64: CONVERT_LOOP(guint64, GUINT64_FROM_LE, bits_to_f64(u)) break;
    case SIGE_DTYPE_I64: CONVERT_LOOP(guint64, GUINT64_FROM_LE, (float)(gint64)u) break;
    case SIGE_DTYPE_I32: CONVERT_LOOP(guint32, GUINT32_FROM_LE, (float)(gint32)u) break;
    case SIGE_DTYPE_I16: CONVERT_LOOP(guint16, GUINT16_FROM_LE, (float)(gint16)u) break;
    case SIGE_DTYPE_I8: CONVERT_LOOP(guint8, IDENTITY, (float)(gint8)u) break;
    case SIGE_DTYPE_U8: CONVERT_LOOP(guint8, IDENTITY, (float)u) break;
    case SIGE_DTYPE_BOOL: CONVERT_LOOP(guint8, IDENTITY, u ? 1.0f : 0.0f) break;
  }
}
