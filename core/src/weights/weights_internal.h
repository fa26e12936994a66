/* Private to core/src/weights: what the readers need beyond the public table API. */
#pragma once
#include "sige/weights.h"

G_BEGIN_DECLS

/* Where the bytes of index entries live: a file read with pread (the file
 * stays open while an entry refers to it), or a buffer in memory (zip
 * entries that had to be inflated).  Reference counted: entries share it. */
typedef struct sige_weights_source sige_weights_source;

/* Opens `path` (a regular file) for reading. */
sige_weights_source *sige_weights_source_open(const char *path, GError **error);
/* Keeps a reference to bytes (little-endian file bytes). */
sige_weights_source *sige_weights_source_new_bytes(GBytes *bytes);
sige_weights_source *sige_weights_source_ref(sige_weights_source *s);
void sige_weights_source_unref(sige_weights_source *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_weights_source, sige_weights_source_unref)
/* The size of the file when it was opened, or of the buffer. */
guint64 sige_weights_source_size(const sige_weights_source *s);
/* The buffer's bytes; NULL for a file. */
const guint8 *sige_weights_source_peek(const sige_weights_source *s);
/* Copies n bytes at `offset` into dst.  A file that became shorter since it
 * was opened is an error naming `file` and `tensor` (never a signal). */
gboolean sige_weights_source_read(const sige_weights_source *s, guint64 offset, void *dst,
                                  gsize n, const char *file, const char *tensor,
                                  GError **error);

/* An entry's bytes inside its source: dtype as in the file, shape, element
 * strides (row-major when contiguous) and the byte offset of element 0.
 * The reader guarantees that every element the strides reach lies inside
 * the source. */
typedef struct {
  sige_dtype dtype;
  int ndim;
  int64_t shape[SIGE_MAX_DIMS];   /* unused trailing entries are 1 */
  int64_t stride[SIGE_MAX_DIMS];  /* in elements */
  guint64 offset;                 /* in bytes */
} sige_weights_view;

/* Row-major strides for v->shape. */
void sige_weights_view_set_contiguous(sige_weights_view *v);
/* Adds (or replaces) an index entry on `source` (a new reference is taken).
 * FALSE with SIGE_ERROR_NOMEM naming the file and tensor when the shape is
 * too large for a float32 tensor. */
gboolean sige_weights_add(sige_weights *w, const char *name, sige_weights_source *source,
                          const sige_weights_view *view, GError **error);
/* Copies entry src_name of `src` into `dst` as dst_name, sharing the bytes.
 * reshape (ndim > 0) gives a new shape with the same element count, allowed
 * only by appending or dropping dimensions of size 1. */
gboolean sige_weights_copy_entry(sige_weights *dst, const char *dst_name,
                                 const sige_weights *src, const char *src_name, int reshape_ndim,
                                 const int64_t *reshape, GError **error);
/* Rows [row0, row0 + rows) of src_name (split along dimension 0) as dst_name
 * of dst; shares the bytes when the entry has a source. */
gboolean sige_weights_copy_rows(sige_weights *dst, const char *dst_name, const sige_weights *src,
                                const char *src_name, int64_t row0, int64_t rows, GError **error);

/* Like sige_weights_insert, but records the dtype the tensor had in its file
 * (sige_weights_insert records F32). */
void sige_weights_insert_with_dtype(sige_weights *w, const char *name, sige_tensor *t,
                                    sige_dtype dtype);
void sige_weights_set_path(sige_weights *w, const char *path);
/* Parses a safetensors dtype string ("F16", ...); FALSE when not one of ours. */
gboolean sige_dtype_from_name(const char *name, sige_dtype *out);
/* Short, printable file name for error messages (basename of path). */
char *sige_weights_display_name(const char *path);

/* n little-endian elements of `dtype` at src converted to float32 (the
 * conversions every reader has used: F16/BF16 exact, F64 rounded, integers
 * as by a C cast, BOOL as 0/1). */
void sige_weights_convert(float *dst, const guint8 *src, guint64 n, sige_dtype dtype);

G_END_DECLS
