/* Dense float32 tensors, up to 4 dimensions, 64-byte aligned.
 *
 * 4-D tensors are NCHW unless `layout` says CNHW: a batch of gathered blocks is
 * kept channel-major ([C][N][H][W]) so that one GEMM covers every block of a
 * layer.  A tensor either owns its memory or is a view into another buffer. */
#pragma once
#include <glib.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

#define SIGE_MAX_DIMS 4
#define SIGE_ALIGN 64

typedef enum { SIGE_LAYOUT_NCHW = 0, SIGE_LAYOUT_CNHW = 1 } sige_layout;

typedef struct sige_tensor {
  float *data;
  int ndim;
  int64_t shape[SIGE_MAX_DIMS]; /* unused trailing entries are 1 */
  size_t numel;
  sige_layout layout;
  gboolean owned; /* data is freed with the tensor */
} sige_tensor;

/* Shorthands for 4-D tensors (logical NCHW order whatever the layout). */
#define SIGE_N(t) ((int)(t)->shape[0])
#define SIGE_C(t) ((int)(t)->shape[1])
#define SIGE_H(t) ((int)(t)->shape[2])
#define SIGE_W(t) ((int)(t)->shape[3])

/* Zero-filled owned tensor.  Returns NULL and sets SIGE_ERROR_NOMEM when the
 * allocation fails or the size overflows. */
sige_tensor *sige_tensor_new(int ndim, const int64_t *shape, GError **error);
sige_tensor *sige_tensor_new4(int n, int c, int h, int w, GError **error);
/* Same as new4 but the contents are left uninitialised (for outputs that are
 * fully overwritten). */
sige_tensor *sige_tensor_new4_uninit(int n, int c, int h, int w, GError **error);
/* A view on `data` (not freed with the tensor). */
sige_tensor *sige_tensor_view(float *data, int ndim, const int64_t *shape);
sige_tensor *sige_tensor_dup(const sige_tensor *t, GError **error);
void sige_tensor_free(sige_tensor *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_tensor, sige_tensor_free)

gboolean sige_tensor_same_shape(const sige_tensor *a, const sige_tensor *b);
/* "[1, 3, 256, 256]" into buf; returns buf. */
const char *sige_tensor_shape_str(const sige_tensor *t, char *buf, size_t len);

/* Aligned allocation used for tensors and scratch; NULL on failure. */
void *sige_aligned_alloc(size_t bytes);
void sige_aligned_free(void *p);

/* IEEE half / bfloat16 to float. */
float sige_f16_to_f32(uint16_t h);
uint16_t sige_f32_to_f16(float f);
float sige_bf16_to_f32(uint16_t h);

G_END_DECLS
