#include "sige/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "sige/error.h"

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define SIGE_HAVE_F16C 1
#endif

void *sige_aligned_alloc(size_t bytes) {
  if (bytes == 0) bytes = SIGE_ALIGN;
  void *p = NULL;
  if (posix_memalign(&p, SIGE_ALIGN, bytes) != 0) return NULL;
  return p;
}

void sige_aligned_free(void *p) { free(p); }

static gboolean shape_numel(int ndim, const int64_t *shape, size_t *numel, GError **error) {
  if (ndim < 1 || ndim > SIGE_MAX_DIMS) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "tensor rank %d: expected 1..%d", ndim,
                SIGE_MAX_DIMS);
    return FALSE;
  }
  size_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0 || (shape[i] > 0 && n > SIZE_MAX / sizeof(float) / (size_t)shape[i])) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "tensor dimension %d (%" G_GINT64_FORMAT
                  ") is negative or too large", i, shape[i]);
      return FALSE;
    }
    n *= (size_t)shape[i];
  }
  *numel = n;
  return TRUE;
}

size_t sige_tensor_elem_size(const sige_tensor *t) {
  return t->storage == SIGE_STORAGE_F16 ? sizeof(uint16_t) : sizeof(float);
}

size_t sige_tensor_bytes(const sige_tensor *t) { return t->numel * sige_tensor_elem_size(t); }

/* A tensor header for shape, without data: owned and view tensors differ
 * only in where their data comes from. */
static sige_tensor *tensor_shell(int ndim, const int64_t *shape, GError **error) {
  size_t numel;
  if (!shape_numel(ndim, shape, &numel, error)) return NULL;
  sige_tensor *t = g_new0(sige_tensor, 1);
  t->ndim = ndim;
  for (int i = 0; i < SIGE_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
  t->numel = numel;
  return t;
}

/* be NULL: host memory. */
static sige_tensor *tensor_alloc_on(sige_backend *be, int ndim, const int64_t *shape,
                                    sige_storage storage, gboolean zero, GError **error) {
  sige_tensor *t = tensor_shell(ndim, shape, error);
  if (!t) return NULL;
  t->owned = TRUE;
  t->storage = storage;
  t->backend = be;
  t->data = sige_buffer_alloc(be, sige_tensor_bytes(t), zero, error);
  if (!t->data) {
    g_free(t);
    return NULL;
  }
  return t;
}

static sige_tensor *tensor_alloc_as(int ndim, const int64_t *shape, sige_storage storage,
                                    gboolean zero, GError **error) {
  return tensor_alloc_on(NULL, ndim, shape, storage, zero, error);
}

static sige_tensor *tensor_alloc(int ndim, const int64_t *shape, gboolean zero, GError **error) {
  return tensor_alloc_as(ndim, shape, SIGE_STORAGE_F32, zero, error);
}

sige_tensor *sige_tensor_new(int ndim, const int64_t *shape, GError **error) {
  return tensor_alloc(ndim, shape, TRUE, error);
}

sige_tensor *sige_tensor_new4(int n, int c, int h, int w, GError **error) {
  int64_t s[4] = {n, c, h, w};
  return tensor_alloc(4, s, TRUE, error);
}

sige_tensor *sige_tensor_new4_uninit(int n, int c, int h, int w, GError **error) {
  int64_t s[4] = {n, c, h, w};
  return tensor_alloc(4, s, FALSE, error);
}

sige_tensor *sige_tensor_new4_f16_uninit(int n, int c, int h, int w, GError **error) {
  int64_t s[4] = {n, c, h, w};
  return tensor_alloc_as(4, s, SIGE_STORAGE_F16, FALSE, error);
}

sige_tensor *sige_tensor_view(float *data, int ndim, const int64_t *shape) {
  sige_tensor *t = tensor_shell(ndim, shape, NULL);
  if (!t) return NULL;
  t->data = data;
  t->owned = FALSE;
  return t;
}

sige_tensor *sige_tensor_new4_like(const sige_tensor *like, int n, int c, int h, int w,
                                   GError **error) {
  int64_t s[4] = {n, c, h, w};
  return tensor_alloc_on(like->backend, 4, s, SIGE_STORAGE_F32, FALSE, error);
}

/* A new tensor on be with src's shape and layout and the given storage,
 * holding src's elements (converted). */
static sige_tensor *copy_as(sige_backend *be, const sige_tensor *src, sige_storage storage,
                            GError **error) {
  sige_tensor *t = tensor_alloc_on(be, src->ndim, src->shape, storage, FALSE, error);
  if (!t) return NULL;
  t->layout = src->layout;
  if (!sige_tensor_copy(t, src, error)) {
    sige_tensor_free(t);
    return NULL;
  }
  return t;
}

sige_tensor *sige_tensor_dup(const sige_tensor *src, GError **error) {
  return copy_as(src->backend, src, src->storage, error);
}

sige_tensor *sige_tensor_to_f32(const sige_tensor *src, GError **error) {
  return copy_as(src->backend, src, SIGE_STORAGE_F32, error);
}

sige_tensor *sige_tensor_to_f16(const sige_tensor *src, GError **error) {
  return copy_as(src->backend, src, SIGE_STORAGE_F16, error);
}

sige_tensor *sige_tensor_to_backend(sige_backend *be, const sige_tensor *t, GError **error) {
  return copy_as(be, t, t->storage, error);
}

sige_tensor *sige_tensor_to_host(const sige_tensor *t, GError **error) {
  return copy_as(NULL, t, t->storage, error);
}

gboolean sige_tensor_copy(sige_tensor *dst, const sige_tensor *src, GError **error) {
  g_return_val_if_fail(dst && src && dst->numel == src->numel, FALSE);
  return sige_buffer_copy_elems(dst->backend, dst->data, dst->storage, src->backend, src->data,
                                src->storage, src->numel, error);
}

gboolean sige_tensor_copy_rows(sige_tensor *dst, const sige_tensor *src, int row0, int row1,
                               GError **error) {
  g_return_val_if_fail(dst && src && dst->ndim == 4 && sige_tensor_same_shape(dst, src), FALSE);
  g_return_val_if_fail(dst->storage == src->storage && dst->layout == SIGE_LAYOUT_NCHW &&
                           src->layout == SIGE_LAYOUT_NCHW,
                       FALSE);
  g_return_val_if_fail(0 <= row0 && row0 <= row1 && row1 <= SIGE_H(dst), FALSE);
  g_return_val_if_fail(!dst->backend || !src->backend || dst->backend == src->backend, FALSE);
  const size_t es = sige_tensor_elem_size(dst), w = (size_t)SIGE_W(dst);
  const size_t plane = (size_t)SIGE_H(dst) * w, planes = dst->numel / (plane ? plane : 1);
  const size_t at = (size_t)row0 * w * es, bytes = (size_t)(row1 - row0) * w * es;
  if (bytes == 0) return TRUE;
  for (size_t p = 0; p < planes; p++) {
    char *d = (char *)dst->data + p * plane * es + at;
    const char *s = (const char *)src->data + p * plane * es + at;
    sige_buffer_copy_bytes(dst->backend, d, src->backend, s, bytes);
  }
  return sige_buffer_check(dst->backend ? dst->backend : src->backend, error);
}

void sige_tensor_free(sige_tensor *t) {
  if (!t) return;
  if (t->owned) sige_buffer_free(t->backend, t->data);
  if (t->derived) t->derived->destroy(t->derived);
  g_free(t);
}

gboolean sige_tensor_same_shape(const sige_tensor *a, const sige_tensor *b) {
  if (a->ndim != b->ndim) return FALSE;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return FALSE;
  return TRUE;
}

const char *sige_tensor_shape_str(const sige_tensor *t, char *buf, size_t len) {
  size_t off = 0;
  off += (size_t)snprintf(buf + off, len - off, "[");
  for (int i = 0; i < t->ndim && off < len; i++)
    off += (size_t)snprintf(buf + off, len - off, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->shape[i]);
  if (off < len) snprintf(buf + off, len - off, "]");
  return buf;
}

float sige_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else { /* subnormal: renormalise */
      int e = -1;
      do { e++; mant <<= 1; } while ((mant & 0x400) == 0);
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t sige_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = (int32_t)((x >> 23) & 0xff);
  uint32_t mant = x & 0x7fffff;
  if (exp == 255) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
  int32_t e = exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    mant |= 0x800000;
    uint32_t shift = (uint32_t)(14 - e);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = sign | ((uint32_t)e << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into the exponent: correct */
  return (uint16_t)half;
}

float sige_bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

#ifdef SIGE_HAVE_F16C
/* _mm256_cvtps_ph with round-to-nearest-even and F16C's exact widening give
 * the same bits as the scalar functions above (the MXCSR flush/denormal
 * modes do not apply to these instructions). */
void sige_f16_to_f32_n(const uint16_t *src, float *dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
  for (; i < n; i++) dst[i] = sige_f16_to_f32(src[i]);
}

void sige_f32_to_f16_n(const float *src, uint16_t *dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i *)(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; i++) dst[i] = sige_f32_to_f16(src[i]);
}
#elif (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
/* A build for any x86 CPU (-Dnative=false, the packages) still widens with
 * F16C where the CPU has it, checked once at run time: half weights are
 * widened on every use, and the portable loop is about 5x slower (measured
 * 22 vs 4 ns per value on this project's CPU, docs/PERFORMANCE.md). */
#include <immintrin.h>
__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const uint16_t *src, float *dst,
                                                                size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
  for (; i < n; i++) dst[i] = sige_f16_to_f32(src[i]);
}

void sige_f16_to_f32_n(const uint16_t *src, float *dst, size_t n) {
  static gint have = -1; /* -1: not checked yet */
  gint h = g_atomic_int_get(&have);
  if (h < 0) {
    __builtin_cpu_init();
    h = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    g_atomic_int_set(&have, h);
  }
  if (h) {
    f16_to_f32_f16c(src, dst, n);
    return;
  }
  for (size_t i = 0; i < n; i++) dst[i] = sige_f16_to_f32(src[i]);
}

void sige_f32_to_f16_n(const float *src, uint16_t *dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = sige_f32_to_f16(src[i]);
}
#else
void sige_f16_to_f32_n(const uint16_t *src, float *dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = sige_f16_to_f32(src[i]);
}

void sige_f32_to_f16_n(const float *src, uint16_t *dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = sige_f32_to_f16(src[i]);
}
#endif
