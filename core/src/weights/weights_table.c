/* The weights index shared by every reader: name -> where the bytes are
 * (a source, a dtype, a shape, strides), or a float32 tensor given by a
 * caller.  Nothing is converted until a tensor is asked for: the models fill
 * their own tensors with sige_weights_read_f32 (one copy, no table of
 * float32 duplicates), and sige_weights_get materialises and caches. */
#include <math.h>
#include <string.h>

#include "sige/error.h"
#include "weights_internal.h"

/* Elements converted per step when a file's dtype is not float32. */
#define CHUNK_ELEMS ((gsize)1 << 16)

typedef struct {
  sige_weights_view view; /* dtype as in the file, shape; strides/offset with a source */
  size_t numel;
  sige_weights_source *source; /* NULL: `tensor` holds the data */
  /* A tensor given by sige_weights_insert (source NULL), or the float32
   * copy that sige_weights_get made of the source's bytes. */
  sige_tensor *tensor;
} weights_entry;

struct sige_weights {
  GHashTable *entries; /* name (owned key) -> weights_entry */
  /* Sorted names borrowing the keys of `entries`, kept NULL-terminated so that
   * sige_weights_names can hand out pdata without copying. */
  GPtrArray *names;
  GHashTable *metadata; /* string -> string */
  char *path;
  /* sige_weights_get fills caches of a const table: one at a time */
  GMutex lock;
};

static const struct {
  const char *name;
  size_t size;
} dtype_info[] = {
  [SIGE_DTYPE_F32] = {"F32", 4}, [SIGE_DTYPE_F16] = {"F16", 2}, [SIGE_DTYPE_BF16] = {"BF16", 2},
  [SIGE_DTYPE_F64] = {"F64", 8}, [SIGE_DTYPE_I64] = {"I64", 8}, [SIGE_DTYPE_I32] = {"I32", 4},
  [SIGE_DTYPE_I16] = {"I16", 2}, [SIGE_DTYPE_I8] = {"I8", 1},   [SIGE_DTYPE_U8] = {"U8", 1},
  [SIGE_DTYPE_BOOL] = {"BOOL", 1},
};

const char *sige_dtype_name(sige_dtype d) {
  if ((unsigned)d >= G_N_ELEMENTS(dtype_info)) return "?";
  return dtype_info[d].name;
}

size_t sige_dtype_size(sige_dtype d) {
  if ((unsigned)d >= G_N_ELEMENTS(dtype_info)) return 0;
  return dtype_info[d].size;
}

gboolean sige_dtype_from_name(const char *name, sige_dtype *out) {
  for (guint i = 0; i < G_N_ELEMENTS(dtype_info); i++) {
    if (strcmp(name, dtype_info[i].name) == 0) {
      *out = (sige_dtype)i;
      return TRUE;
    }
  }
  return FALSE;
}

char *sige_weights_display_name(const char *path) {
  if (!path) return g_strdup("weights");
  g_autofree char *base = g_path_get_basename(path);
  return g_filename_display_name(base);
}

static void entry_free(gpointer p) {
  weights_entry *e = p;
  sige_tensor_free(e->tensor);
  sige_weights_source_unref(e->source);
  g_free(e);
}

sige_weights *sige_weights_new(void) {
  sige_weights *w = g_new0(sige_weights, 1);
  w->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
  w->names = g_ptr_array_new();
  g_ptr_array_add(w->names, NULL);
  w->metadata = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_mutex_init(&w->lock);
  return w;
}

void sige_weights_free(sige_weights *w) {
  if (!w) return;
  g_ptr_array_unref(w->names); /* borrows the keys: drop it first */
  g_hash_table_unref(w->entries);
  g_hash_table_unref(w->metadata);
  g_mutex_clear(&w->lock);
  g_free(w->path);
  g_free(w);
}

/* Where `name` sits (or would sit) in the sorted array, by binary search. */
static guint name_position(const GPtrArray *names, const char *name) {
  guint lo = 0, hi = names->len - 1; /* the last slot is the NULL terminator */
  while (lo < hi) {
    guint mid = lo + (hi - lo) / 2;
    if (strcmp(g_ptr_array_index(names, mid), name) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Stores e under name, replacing (and freeing) an older entry in place so
 * that the key, and so the names array, stays valid. */
static void put_entry(sige_weights *w, const char *name, weights_entry *e) {
  weights_entry *old = g_hash_table_lookup(w->entries, name);
  if (old) {
    sige_tensor_free(old->tensor);
    sige_weights_source_unref(old->source);
    *old = *e;
    g_free(e);
    return;
  }
  char *key = g_strdup(name);
  g_hash_table_insert(w->entries, key, e);
  g_ptr_array_insert(w->names, (gint)name_position(w->names, key), key);
}

void sige_weights_insert_with_dtype(sige_weights *w, const char *name, sige_tensor *t,
                                    sige_dtype dtype) {
  g_return_if_fail(w != NULL && name != NULL && t != NULL);
  weights_entry *old = g_hash_table_lookup(w->entries, name);
  if (old && old->tensor == t) old->tensor = NULL; /* re-inserting the same tensor */
  weights_entry *e = g_new0(weights_entry, 1);
  e->view.dtype = dtype;
  e->view.ndim = t->ndim;
  memcpy(e->view.shape, t->shape, sizeof e->view.shape);
  e->numel = t->numel;
  e->tensor = t;
  put_entry(w, name, e);
}

void sige_weights_insert(sige_weights *w, const char *name, sige_tensor *t) {
  sige_weights_insert_with_dtype(w, name, t, SIGE_DTYPE_F32);
}

void sige_weights_view_set_contiguous(sige_weights_view *v) {
  int64_t s = 1;
  for (int i = SIGE_MAX_DIMS - 1; i >= 0; i--) {
    if (i >= v->ndim) v->shape[i] = 1;
    v->stride[i] = s;
    s *= v->shape[i] ? v->shape[i] : 1;
  }
}

/* The element count, FALSE when a float32 tensor of that shape could not be
 * allocated (the rule of sige_tensor_new, checked here because the tensor
 * is only made later). */
static gboolean view_numel(const sige_weights_view *v, size_t *numel) {
  if (v->ndim < 1 || v->ndim > SIGE_MAX_DIMS) return FALSE;
  size_t n = 1;
  for (int i = 0; i < v->ndim; i++) {
    if (v->shape[i] < 0 || (v->shape[i] > 0 && n > SIZE_MAX / sizeof(float) / (size_t)v->shape[i]))
      return FALSE;
    n *= (size_t)v->shape[i];
  }
  *numel = n;
  return TRUE;
}

gboolean sige_weights_add(sige_weights *w, const char *name, sige_weights_source *source,
                          const sige_weights_view *view, GError **error) {
  g_return_val_if_fail(w != NULL && name != NULL && source != NULL && view != NULL, FALSE);
  size_t numel;
  if (!view_numel(view, &numel)) {
    g_autofree char *file = sige_weights_display_name(w->path);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM,
                "%s: tensor '%s': a shape of rank %d that is too large for a float32 tensor",
                file, name, view->ndim);
    return FALSE;
  }
  weights_entry *e = g_new0(weights_entry, 1);
  e->view = *view;
  for (int i = view->ndim; i < SIGE_MAX_DIMS; i++) e->view.shape[i] = 1;
  e->numel = numel;
  e->source = sige_weights_source_ref(source);
  put_entry(w, name, e);
  return TRUE;
}

void sige_weights_set_path(sige_weights *w, const char *path) {
  g_free(w->path);
  w->path = g_strdup(path);
}

void sige_weights_set_metadata(sige_weights *w, const char *key, const char *value) {
  g_hash_table_replace(w->metadata, g_strdup(key), g_strdup(value));
}

/* ---- reading an entry into float32 ------------------------------------ */

static gboolean view_contiguous(const sige_weights_view *v) {
  int64_t s = 1;
  for (int i = v->ndim - 1; i >= 0; i--) {
    if (v->shape[i] != 1 && v->stride[i] != s) return FALSE;
    s *= v->shape[i];
  }
  return TRUE;
}

static gboolean read_contiguous(const weights_entry *e, const char *file, const char *name,
                                float *dst, GError **error) {
  const sige_dtype dt = e->view.dtype;
  const size_t es = sige_dtype_size(dt);
  const guint8 *mem = sige_weights_source_peek(e->source);
  if (mem) {
    sige_weights_convert(dst, mem + e->view.offset, e->numel, dt);
    return TRUE;
  }
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  /* float32 bytes are the tensor already: straight into it */
  if (dt == SIGE_DTYPE_F32)
    return sige_weights_source_read(e->source, e->view.offset, dst, e->numel * sizeof(float),
                                    file, name, error);
#endif
  g_autofree guint8 *buf = g_malloc(MIN(e->numel, CHUNK_ELEMS) * es);
  for (size_t i = 0; i < e->numel; i += CHUNK_ELEMS) {
    size_t n = MIN(CHUNK_ELEMS, e->numel - i);
    if (!sige_weights_source_read(e->source, e->view.offset + (guint64)i * es, buf, n * es, file,
                                  name, error))
      return FALSE;
    sige_weights_convert(dst + i, buf, n, dt);
  }
  return TRUE;
}

/* A strided view (PyTorch checkpoints keep transposes and slices as such):
 * the byte span its elements reach is read once, then gathered. */
static gboolean read_strided(const weights_entry *e, const char *file, const char *name,
                             float *dst, GError **error) {
  const sige_weights_view *v = &e->view;
  const size_t es = sige_dtype_size(v->dtype);
  guint64 last = 0;
  for (int i = 0; i < v->ndim; i++) last += (guint64)(v->shape[i] - 1) * (guint64)v->stride[i];
  const gsize span = (gsize)((last + 1) * es);
  const guint8 *base = sige_weights_source_peek(e->source);
  g_autofree guint8 *buf = NULL;
  if (base) {
    base += v->offset;
  } else {
    buf = g_try_malloc(span);
    if (!buf) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM,
                  "%s: tensor '%s': cannot allocate %" G_GSIZE_FORMAT " bytes", file, name, span);
      return FALSE;
    }
    if (!sige_weights_source_read(e->source, v->offset, buf, span, file, name, error))
      return FALSE;
    base = buf;
  }
  float *out = dst;
  for (int64_t a = 0; a < v->shape[0]; a++)
    for (int64_t b = 0; b < v->shape[1]; b++)
      for (int64_t c = 0; c < v->shape[2]; c++) {
        const guint8 *row =
            base + (gsize)(a * v->stride[0] + b * v->stride[1] + c * v->stride[2]) * es;
        for (int64_t d = 0; d < v->shape[3]; d++)
          sige_weights_convert(out++, row + (gsize)(d * v->stride[3]) * es, 1, v->dtype);
      }
  return TRUE;
}

/* The index of the first NaN among x[0..n), n when there is none (read
 * from the bits: an all-ones exponent and a non-zero mantissa). */
static size_t first_nan(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t b;
    memcpy(&b, &x[i], sizeof b);
    if ((b & 0x7fffffffu) > 0x7f800000u) return i;
  }
  return n;
}

static gboolean entry_read(const weights_entry *e, const char *file, const char *name,
                           float *dst, GError **error) {
  if (e->numel == 0) return TRUE;
  if (e->tensor) {
    const sige_tensor *t = e->tensor;
    if (t->storage == SIGE_STORAGE_F16) {
      for (size_t i = 0; i < t->numel; i++) dst[i] = sige_f16_to_f32(t->data16[i]);
    } else {
      memcpy(dst, t->data, t->numel * sizeof(float));
    }
    return TRUE;
  }
  return view_contiguous(&e->view) ? read_contiguous(e, file, name, dst, error)
                                   : read_strided(e, file, name, dst, error);
}

/* A new float32 tensor holding e's values: what the cache and a caller's
 * own copy both start from. */
static sige_tensor *entry_read_new(const weights_entry *e, const char *file, const char *name,
                                   GError **error) {
  g_autoptr(GError) terr = NULL;
  g_autoptr(sige_tensor) t = sige_tensor_new(e->view.ndim, e->view.shape, &terr);
  if (!t) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "%s: tensor '%s': %s", file, name,
                terr->message);
    return NULL;
  }
  if (!entry_read(e, file, name, t->data, error)) return NULL;
  return g_steal_pointer(&t);
}

/* The cached float32 tensor of e, made on first use. */
static const sige_tensor *entry_materialise(const sige_weights *w, const char *name,
                                            weights_entry *e, GError **error) {
  sige_weights *mw = (sige_weights *)w; /* the cache is not part of the table's value */
  g_mutex_lock(&mw->lock);
  if (!e->tensor || e->tensor->storage != SIGE_STORAGE_F32) {
    g_autofree char *file = sige_weights_display_name(w->path);
    sige_tensor *t = entry_read_new(e, file, name, error);
    if (!t) {
      g_mutex_unlock(&mw->lock);
      return NULL;
    }
    sige_tensor_free(e->tensor);
    e->tensor = t;
  }
  g_mutex_unlock(&mw->lock);
  return e->tensor;
}

const sige_tensor *sige_weights_get(const sige_weights *w, const char *name) {
  g_return_val_if_fail(w != NULL && name != NULL, NULL);
  weights_entry *e = g_hash_table_lookup(w->entries, name);
  if (!e) return NULL;
  g_autoptr(GError) error = NULL;
  const sige_tensor *t = entry_materialise(w, name, e, &error);
  if (!t) g_warning("%s", error->message);
  return t;
}

gboolean sige_weights_read_f32(const sige_weights *w, const char *name, float *dst, size_t n,
                               GError **error) {
  g_return_val_if_fail(w != NULL && name != NULL && (dst != NULL || n == 0), FALSE);
  g_autofree char *file = sige_weights_display_name(w->path);
  const weights_entry *e = g_hash_table_lookup(w->entries, name);
  if (!e) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING, "%s: tensor '%s' is missing", file, name);
    return FALSE;
  }
  if (e->numel != n) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "%s: tensor '%s' has %zu elements, expected %zu", file, name, e->numel, n);
    return FALSE;
  }
  return entry_read(e, file, name, dst, error);
}

gboolean sige_weights_shape(const sige_weights *w, const char *name, int *ndim,
                            int64_t shape[SIGE_MAX_DIMS]) {
  g_return_val_if_fail(w != NULL && name != NULL, FALSE);
  const weights_entry *e = g_hash_table_lookup(w->entries, name);
  if (!e) return FALSE;
  if (ndim) *ndim = e->view.ndim;
  if (shape) memcpy(shape, e->view.shape, sizeof e->view.shape);
  return TRUE;
}

/* ---- entries derived from others (layouts) ----------------------------- */

static weights_entry *lookup_or_fail(const sige_weights *w, const char *name, GError **error) {
  weights_entry *e = g_hash_table_lookup(w->entries, name);
  if (!e) {
    g_autofree char *file = sige_weights_display_name(w->path);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING, "%s: tensor '%s' is missing", file, name);
  }
  return e;
}

gboolean sige_weights_copy_entry(sige_weights *dst, const char *dst_name,
                                 const sige_weights *src, const char *src_name, int reshape_ndim,
                                 const int64_t *reshape, GError **error) {
  const weights_entry *s = lookup_or_fail(src, src_name, error);
  if (!s) return FALSE;
  sige_weights_view v = s->view;
  if (reshape_ndim > 0) {
    /* only dimensions of size 1 may come or go: the strides stay valid */
    gboolean ok = reshape_ndim <= SIGE_MAX_DIMS;
    for (int i = 0; ok && i < SIGE_MAX_DIMS; i++) {
      int64_t want = i < reshape_ndim ? reshape[i] : 1;
      if (want != v.shape[i]) ok = FALSE;
    }
    if (!ok) {
      g_autofree char *file = sige_weights_display_name(src->path);
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                  "%s: tensor '%s' cannot be given rank %d by adding or dropping unit "
                  "dimensions", file, src_name, reshape_ndim);
      return FALSE;
    }
    v.ndim = reshape_ndim;
  }
  weights_entry *e = g_new0(weights_entry, 1);
  e->view = v;
  e->numel = s->numel;
  if (s->source) {
    e->source = sige_weights_source_ref(s->source);
  } else {
    e->tensor = sige_tensor_dup(s->tensor, error);
    if (!e->tensor) {
      g_free(e);
      return FALSE;
    }
    e->tensor->ndim = v.ndim;
  }
  put_entry(dst, dst_name, e);
  return TRUE;
}

gboolean sige_weights_copy_rows(sige_weights *dst, const char *dst_name, const sige_weights *src,
                                const char *src_name, int64_t row0, int64_t rows,
                                GError **error) {
  const weights_entry *s = lookup_or_fail(src, src_name, error);
  if (!s) return FALSE;
  g_return_val_if_fail(row0 >= 0 && rows >= 0 && row0 + rows <= s->view.shape[0], FALSE);
  sige_weights_view v = s->view;
  v.shape[0] = rows;
  size_t numel = 0;
  view_numel(&v, &numel); /* fewer rows than an entry already checked */
  weights_entry *e = g_new0(weights_entry, 1);
  e->numel = numel;
  if (s->source) {
    v.offset += (guint64)row0 * (guint64)v.stride[0] * sige_dtype_size(v.dtype);
    e->source = sige_weights_source_ref(s->source);
  } else {
    /* a tensor given by a caller: copy the rows */
    g_autofree char *file = sige_weights_display_name(src->path);
    size_t row = s->view.shape[0] ? s->numel / (size_t)s->view.shape[0] : 0;
    g_autofree float *all = g_try_new(float, s->numel ? s->numel : 1);
    e->tensor = all ? sige_tensor_new(v.ndim, v.shape, error) : NULL;
    if (!all) g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "%s: tensor '%s': out of memory",
                          file, src_name);
    if (!e->tensor || !entry_read(s, file, src_name, all, error)) {
      sige_tensor_free(e->tensor);
      g_free(e);
      return FALSE;
    }
    if (rows) memcpy(e->tensor->data, all + (size_t)row0 * row, (size_t)rows * row * sizeof(float));
  }
  e->view = v;
  put_entry(dst, dst_name, e);
  return TRUE;
}

/* ---- lookups ----------------------------------------------------------- */

gboolean sige_weights_contains(const sige_weights *w, const char *name) {
  g_return_val_if_fail(w != NULL && name != NULL, FALSE);
  return g_hash_table_contains(w->entries, name);
}

sige_dtype sige_weights_dtype(const sige_weights *w, const char *name) {
  g_return_val_if_fail(w != NULL && name != NULL, SIGE_DTYPE_F32);
  const weights_entry *e = g_hash_table_lookup(w->entries, name);
  return e ? e->view.dtype : SIGE_DTYPE_F32;
}

const char *const *sige_weights_names(const sige_weights *w, guint *n) {
  g_return_val_if_fail(w != NULL, NULL);
  if (n) *n = w->names->len - 1;
  return (const char *const *)w->names->pdata;
}

const char *sige_weights_metadata(const sige_weights *w, const char *key) {
  g_return_val_if_fail(w != NULL && key != NULL, NULL);
  return g_hash_table_lookup(w->metadata, key);
}

const char *sige_weights_path(const sige_weights *w) {
  g_return_val_if_fail(w != NULL, NULL);
  return w->path;
}

static void append_shape(GString *s, int ndim, const int64_t *shape) {
  g_string_append_c(s, '[');
  for (int i = 0; i < ndim; i++) {
    if (i) g_string_append(s, ", ");
    if (shape[i] < 0)
      g_string_append_c(s, '*');
    else
      g_string_append_printf(s, "%" G_GINT64_FORMAT, shape[i]);
  }
  g_string_append_c(s, ']');
}

gboolean sige_weights_check(const sige_weights *w, const char *name, int ndim,
                            const int64_t *shape, GError **error) {
  g_return_val_if_fail(w != NULL && name != NULL, FALSE);
  g_autofree char *file = sige_weights_display_name(w->path);
  const weights_entry *e = g_hash_table_lookup(w->entries, name);
  if (!e) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING, "%s: tensor '%s' is missing", file, name);
    return FALSE;
  }
  /* Without a shape only the rank is checked, and only when one is given. */
  const sige_weights_view *v = &e->view;
  gboolean ok = (ndim <= 0 && !shape) || v->ndim == ndim;
  for (int i = 0; ok && shape && i < ndim; i++)
    if (shape[i] != -1 && shape[i] != v->shape[i]) ok = FALSE;
  if (!ok) {
    g_autoptr(GString) got = g_string_new(NULL);
    g_autoptr(GString) want = g_string_new(NULL);
    append_shape(got, v->ndim, v->shape);
    if (shape) {
      append_shape(want, ndim, shape);
    } else {
      g_string_printf(want, "rank %d", ndim);
    }
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE, "%s: tensor '%s' has shape %s, expected %s",
                file, name, got->str, want->str);
    return FALSE;
  }
  return TRUE;
}

const sige_tensor *sige_weights_require(const sige_weights *w, const char *name, int ndim,
                                        const int64_t *shape, GError **error) {
  if (!sige_weights_check(w, name, ndim, shape, error)) return NULL;
  return entry_materialise(w, name, g_hash_table_lookup(w->entries, name), error);
}

sige_tensor *sige_weights_read_tensor(const sige_weights *w, const char *name, int ndim,
                                      const int64_t *shape, GError **error) {
  if (!sige_weights_check(w, name, ndim, shape, error)) return NULL;
  const weights_entry *e = g_hash_table_lookup(w->entries, name);
  g_autofree char *file = sige_weights_display_name(w->path);
  g_autoptr(sige_tensor) t = entry_read_new(e, file, name, error);
  if (!t) return NULL;
  /* What a model reads: a NaN turns the whole output black or into noise
   * without a word.  An infinity is left alone: it has a meaning (an F16
   * running variance that overflowed zeroes its channel, as PyTorch
   * computes it; the reference case gaugan-cityscapes-tiny has such).
   * Copies and conversions read with sige_weights_read_f32 and keep every
   * value bit for bit. */
  const size_t bad = first_nan(t->data, t->numel);
  if (bad < t->numel) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: tensor '%s' holds NaN at element %zu; the weights are corrupt or come from "
                "a diverged training run",
                file, name, bad);
    return NULL;
  }
  return g_steal_pointer(&t);
}

/* ---- half-precision model weights ---------------------------------------- */

/* -1: not decided yet (the environment decides on first use) */
static gint keep_half_state = -1;

gboolean sige_weights_keep_half(void) {
  gint v = g_atomic_int_get(&keep_half_state);
  if (v < 0) {
    const char *env = g_getenv("SIGE_HALF_WEIGHTS");
    v = 1;
    if (env && !strcmp(env, "widen"))
      v = 0;
    else if (env && *env && strcmp(env, "keep"))
      g_warning("SIGE_HALF_WEIGHTS=%s is not keep or widen; keeping half weights half", env);
    g_atomic_int_set(&keep_half_state, v);
  }
  return v != 0;
}

void sige_weights_set_keep_half(gboolean keep) { g_atomic_int_set(&keep_half_state, keep ? 1 : 0); }

/* TRUE when every value of the F16 tensor h widens back to f's bits. */
static gboolean half_is_exact(const sige_tensor *f, const sige_tensor *h) {
  float buf[1024];
  for (size_t i = 0; i < f->numel; i += G_N_ELEMENTS(buf)) {
    const size_t n = MIN(G_N_ELEMENTS(buf), f->numel - i);
    sige_f16_to_f32_n(h->data16 + i, buf, n);
    if (memcmp(buf, f->data + i, n * sizeof(float))) return FALSE;
  }
  return TRUE;
}

sige_tensor *sige_weights_read_tensor_half(const sige_weights *w, const char *name, int ndim,
                                           const int64_t *shape, GError **error) {
  /* read as float32 (strides, sources and the NaN check as for any
   * tensor), then narrowed: the transient float32 copy is one tensor's */
  g_autoptr(sige_tensor) f = sige_weights_read_tensor(w, name, ndim, shape, error);
  if (!f) return NULL;
  const sige_dtype dt = sige_weights_dtype(w, name);
  if (dt != SIGE_DTYPE_F16 && dt != SIGE_DTYPE_BF16) return g_steal_pointer(&f);
  g_autoptr(sige_tensor) h = sige_tensor_to_f16(f, error);
  if (!h) return NULL;
  /* F16 bits widened and narrowed again are the same bits; a BF16 value
   * may lie outside F16's range or below its precision */
  if (dt == SIGE_DTYPE_BF16 && !half_is_exact(f, h)) return g_steal_pointer(&f);
  return g_steal_pointer(&h);
}
