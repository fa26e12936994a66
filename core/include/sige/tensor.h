/* Dense float32 tensors, up to 4 dimensions, 64-byte aligned.
 *
 * 4-D tensors are NCHW unless `layout` says CNHW: a batch of gathered blocks is
 * kept channel-major ([C][N][H][W]) so that one GEMM covers every block of a
 * layer.  A tensor either owns its memory or is a view into another buffer.
 *
 * A tensor may instead store its elements as IEEE half (storage F16, data16):
 * the activation caches do (fp16 caches), and the conv, linear and embedding
 * weights of models loaded from F16 files (sige_weights_keep_half), to halve
 * their memory.  Dense ops refuse F16 activations; conv2d, linear, the
 * attention ops and token_embedding take F16 weights and widen them per use;
 * the sparse kernels (gather, scatter, the undo log) read and write F16
 * caches, and sige_tensor_to_f32 converts one for anything else.
 *
 * A tensor lives in host memory (backend NULL) or in the memory of a compute
 * device (device.h): then data is a device address that only the device
 * backend may dereference.  Constructors without a device argument make host
 * tensors; dup, the storage conversions, copy and free work on either and
 * keep the tensor where it is. */
#pragma once
#include <glib.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct sige_backend sige_backend;

#define SIGE_MAX_DIMS 4
#define SIGE_ALIGN 64

typedef enum { SIGE_LAYOUT_NCHW = 0, SIGE_LAYOUT_CNHW = 1 } sige_layout;

/* How elements are stored; zero (F32) is the default of every constructor
 * and of a zero-initialised struct. */
typedef enum { SIGE_STORAGE_F32 = 0, SIGE_STORAGE_F16 = 1 } sige_storage;

typedef struct sige_tensor {
  union {
    float *data;      /* storage F32 */
    uint16_t *data16; /* storage F16: IEEE binary16 bit patterns */
  };
  int ndim;
  int64_t shape[SIGE_MAX_DIMS]; /* unused trailing entries are 1 */
  size_t numel;
  sige_layout layout;
  gboolean owned; /* data is freed with the tensor */
  sige_storage storage;
  sige_backend *backend; /* NULL: host memory; else device memory of that backend */
  /* Backend-private data derived from the contents and kept for later ops
   * (the CPU's Winograd-transformed conv weights): NULL until an op makes
   * it, freed with the tensor, checked against the contents it was made
   * from before each use.  Leave it NULL in tensors you build yourself. */
  struct sige_tensor_derived *derived;
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
/* The same with F16 storage (an fp16 cache slot filled band by band). */
sige_tensor *sige_tensor_new4_f16_uninit(int n, int c, int h, int w, GError **error);
/* An uninitialised F32 [n, c, h, w] tensor where `like` lives (host or its
 * device): what a model allocates for a result computed from `like`. */
sige_tensor *sige_tensor_new4_like(const sige_tensor *like, int n, int c, int h, int w,
                                   GError **error);
/* A copy of t (any storage) on backend be, or on the host when be is NULL. */
sige_tensor *sige_tensor_to_backend(sige_backend *be, const sige_tensor *t, GError **error);
/* A host copy of t (keeps the storage); for a device tensor this waits for
 * the device and reports any failure it latched (SIGE_ERROR_DEVICE). */
sige_tensor *sige_tensor_to_host(const sige_tensor *t, GError **error);
/* dst = src element for element, converting the storage when they differ;
 * same numel, same place (host or the same device). */
gboolean sige_tensor_copy(sige_tensor *dst, const sige_tensor *src, GError **error);
/* Rows [row0, row1) of every plane of src copied into dst: 4-D NCHW
 * tensors of the same shape and storage, host or device in any pairing
 * (one device).  How an edited input reaches a copy of the previous one
 * without copying what did not change. */
gboolean sige_tensor_copy_rows(sige_tensor *dst, const sige_tensor *src, int row0, int row1,
                               GError **error);
/* A view on `data` (not freed with the tensor). */
sige_tensor *sige_tensor_view(float *data, int ndim, const int64_t *shape);
/* An owned copy with the same storage (F16 stays F16). */
sige_tensor *sige_tensor_dup(const sige_tensor *t, GError **error);
/* Owned copies converted to F32 / F16 storage (a plain copy when t already
 * has that storage), keeping shape and layout.  Rounding to F16 is to
 * nearest-even; values beyond +-65504 become infinities. */
sige_tensor *sige_tensor_to_f32(const sige_tensor *t, GError **error);
sige_tensor *sige_tensor_to_f16(const sige_tensor *t, GError **error);
/* Bytes per element (4 or 2) and bytes of the elements (numel * that). */
size_t sige_tensor_elem_size(const sige_tensor *t);
size_t sige_tensor_bytes(const sige_tensor *t);
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
/* The same conversions over n contiguous values, bit-identical to the
 * scalar ones (F16C instructions when the build targets a CPU that has
 * them, except for NaN payloads). */
void sige_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);
void sige_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);

G_END_DECLS
