/* The name -> tensor table shared by every weights reader. */
#include <string.h>

#include "sige/error.h"
#include "weights_internal.h"

typedef struct {
  sige_tensor *tensor;
  sige_dtype dtype;
} weights_entry;

struct sige_weights {
  GHashTable *entries; /* name (owned key) -> weights_entry */
  /* Sorted names borrowing the keys of `entries`, kept NULL-terminated so that
   * sige_weights_names can hand out pdata without copying. */
  GPtrArray *names;
  GHashTable *metadata; /* string -> string */
  char *path;
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
  g_free(e);
}

sige_weights *sige_weights_new(void) {
  sige_weights *w = g_new0(sige_weights, 1);
  w->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
  w->names = g_ptr_array_new();
  g_ptr_array_add(w->names, NULL);
  w->metadata = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  return w;
}

void sige_weights_free(sige_weights *w) {
  if (!w) return;
  g_ptr_array_unref(w->names); /* borrows the keys: drop it first */
  g_hash_table_unref(w->entries);
  g_hash_table_unref(w->metadata);
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

void sige_weights_insert_with_dtype(sige_weights *w, const char *name, sige_tensor *t,
                                    sige_dtype dtype) {
  g_return_if_fail(w != NULL && name != NULL && t != NULL);
  weights_entry *e = g_hash_table_lookup(w->entries, name);
  if (e) {
    /* Replace in place: the key, and so the names array, stays valid. */
    if (e->tensor != t) sige_tensor_free(e->tensor);
    e->tensor = t;
    e->dtype = dtype;
    return;
  }
  e = g_new(weights_entry, 1);
  e->tensor = t;
  e->dtype = dtype;
  char *key = g_strdup(name);
  g_hash_table_insert(w->entries, key, e);
  g_ptr_array_insert(w->names, (gint)name_position(w->names, key), key);
}

void sige_weights_insert(sige_weights *w, const char *name, sige_tensor *t) {
  sige_weights_insert_with_dtype(w, name, t, SIGE_DTYPE_F32);
}

void sige_weights_set_path(sige_weights *w, const char *path) {
  g_free(w->path);
  w->path = g_strdup(path);
}

void sige_weights_set_metadata(sige_weights *w, const char *key, const char *value) {
  g_hash_table_replace(w->metadata, g_strdup(key), g_strdup(value));
}

const sige_tensor *sige_weights_get(const sige_weights *w, const char *name) {
  g_return_val_if_fail(w != NULL && name != NULL, NULL);
  const weights_entry *e = g_hash_table_lookup(w->entries, name);
  return e ? e->tensor : NULL;
}

gboolean sige_weights_contains(const sige_weights *w, const char *name) {
  g_return_val_if_fail(w != NULL && name != NULL, FALSE);
  return g_hash_table_contains(w->entries, name);
}

sige_dtype sige_weights_dtype(const sige_weights *w, const char *name) {
  g_return_val_if_fail(w != NULL && name != NULL, SIGE_DTYPE_F32);
  const weights_entry *e = g_hash_table_lookup(w->entries, name);
  return e ? e->dtype : SIGE_DTYPE_F32;
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

const sige_tensor *sige_weights_require(const sige_weights *w, const char *name, int ndim,
                                        const int64_t *shape, GError **error) {
  g_return_val_if_fail(w != NULL && name != NULL, NULL);
  g_autofree char *file = sige_weights_display_name(w->path);
  const sige_tensor *t = sige_weights_get(w, name);
  if (!t) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_MISSING, "%s: tensor '%s' is missing", file, name);
    return NULL;
  }
  /* Without a shape only the rank is checked, and only when one is given. */
  gboolean ok = (ndim <= 0 && !shape) || t->ndim == ndim;
  for (int i = 0; ok && shape && i < ndim; i++)
    if (shape[i] != -1 && shape[i] != t->shape[i]) ok = FALSE;
  if (!ok) {
    g_autoptr(GString) got = g_string_new(NULL);
    g_autoptr(GString) want = g_string_new(NULL);
    append_shape(got, t->ndim, t->shape);
    if (shape) {
      append_shape(want, ndim, shape);
    } else {
      g_string_printf(want, "rank %d", ndim);
    }
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE, "%s: tensor '%s' has shape %s, expected %s",
                file, name, got->str, want->str);
    return NULL;
  }
  return t;
}
