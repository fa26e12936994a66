/* Safetensors writer: F32 or F16, names sorted, header padded to 8 bytes so
 * that the data region is aligned for readers that map it directly. */
#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "sige/error.h"
#include "weights_internal.h"

#define CHUNK 4096 /* elements converted per fwrite */

static gint compare_strings(gconstpointer a, gconstpointer b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The JSON header: optional __metadata__ (keys sorted, so equal tables give
 * equal files), then every tensor with contiguous offsets. */
static char *build_header(const sige_weights *w, sige_dtype dtype, GHashTable *metadata,
                          gsize *len, const char *file, GError **error) {
  guint n = 0;
  const char *const *names = sige_weights_names(w, &n);
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  if (metadata && g_hash_table_size(metadata) > 0) {
    guint nk = 0;
    g_autofree gpointer *keys = g_hash_table_get_keys_as_array(metadata, &nk);
    qsort(keys, nk, sizeof *keys, compare_strings);
    json_builder_set_member_name(b, "__metadata__");
    json_builder_begin_object(b);
    for (guint i = 0; i < nk; i++) {
      json_builder_set_member_name(b, keys[i]);
      json_builder_add_string_value(b, g_hash_table_lookup(metadata, keys[i]));
    }
    json_builder_end_object(b);
  }
  guint64 offset = 0;
  for (guint i = 0; i < n; i++) {
    if (strcmp(names[i], "__metadata__") == 0) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  "%s: tensor '__metadata__': the name is reserved by the format", file);
      return NULL;
    }
    int ndim;
    int64_t shape[SIGE_MAX_DIMS];
    sige_weights_shape(w, names[i], &ndim, shape);
    guint64 numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (guint64)shape[d];
    guint64 bytes = numel * sige_dtype_size(dtype);
    json_builder_set_member_name(b, names[i]);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "dtype");
    json_builder_add_string_value(b, sige_dtype_name(dtype));
    json_builder_set_member_name(b, "shape");
    json_builder_begin_array(b);
    for (int d = 0; d < ndim; d++) json_builder_add_int_value(b, shape[d]);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "data_offsets");
    json_builder_begin_array(b);
    json_builder_add_int_value(b, (gint64)offset);
    json_builder_add_int_value(b, (gint64)(offset + bytes));
    json_builder_end_array(b);
    json_builder_end_object(b);
    offset += bytes;
  }
  json_builder_end_object(b);

  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_root(gen, root);
  gsize raw = 0;
  g_autofree char *text = json_generator_to_data(gen, &raw);
  /* Spaces are JSON whitespace: padding keeps the header valid. */
  gsize padded = (raw + 7) / 8 * 8;
  char *out = g_malloc(padded);
  memcpy(out, text, raw);
  memset(out + raw, ' ', padded - raw);
  *len = padded;
  return out;
}

static gboolean write_tensor(FILE *fp, const float *data, size_t numel, sige_dtype dtype) {
  guint8 buf[CHUNK * 4];
  for (size_t start = 0; start < numel; start += CHUNK) {
    size_t n = MIN((size_t)CHUNK, numel - start);
    const float *src = data + start;
    for (size_t i = 0; i < n; i++) {
      if (dtype == SIGE_DTYPE_F16) {
        guint16 h = GUINT16_TO_LE(sige_f32_to_f16(src[i]));
        memcpy(buf + 2 * i, &h, 2);
      } else {
        guint32 u;
        memcpy(&u, &src[i], 4);
        u = GUINT32_TO_LE(u);
        memcpy(buf + 4 * i, &u, 4);
      }
    }
    if (fwrite(buf, sige_dtype_size(dtype), n, fp) != n) return FALSE;
  }
  return TRUE;
}

/* FALSE with *error set when a tensor cannot be read, FALSE with errno when
 * writing fails. */
static gboolean write_all(FILE *fp, const sige_weights *w, sige_dtype dtype, const char *header,
                          gsize hlen, GError **error) {
  guint64 len = GUINT64_TO_LE((guint64)hlen);
  if (fwrite(&len, 8, 1, fp) != 1 || fwrite(header, 1, hlen, fp) != hlen) return FALSE;
  guint n = 0;
  const char *const *names = sige_weights_names(w, &n);
  for (guint i = 0; i < n; i++) {
    /* one tensor converted at a time: a conversion (F16 -> F32, say) never
     * holds the whole table in float32 */
    int ndim;
    int64_t shape[SIGE_MAX_DIMS];
    sige_weights_shape(w, names[i], &ndim, shape);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d];
    g_autofree float *data = g_try_new(float, numel ? numel : 1);
    if (!data) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "tensor '%s': out of memory", names[i]);
      return FALSE;
    }
    if (!sige_weights_read_f32(w, names[i], data, numel, error)) return FALSE;
    if (!write_tensor(fp, data, numel, dtype)) return FALSE;
  }
  /* Flushed and synced before the rename, so the new name never points at a
   * file whose contents are still in flight. */
  return fflush(fp) == 0 && fsync(fileno(fp)) == 0;
}

gboolean sige_weights_save_safetensors(const sige_weights *w, const char *path, sige_dtype dtype,
                                       GHashTable *metadata, GError **error) {
  g_return_val_if_fail(w != NULL && path != NULL, FALSE);
  g_autofree char *disp = g_filename_display_name(path);
  if (dtype != SIGE_DTYPE_F32 && dtype != SIGE_DTYPE_F16) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "%s: cannot write dtype %s, only F32 and F16", disp, sige_dtype_name(dtype));
    return FALSE;
  }
  gsize hlen = 0;
  g_autofree char *header = build_header(w, dtype, metadata, &hlen, disp, error);
  if (!header) return FALSE;

  /* A temporary in the same folder: rename() is atomic only within one file
   * system, and readers must see either the old file or the complete new one. */
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *base = g_path_get_basename(path);
  g_autofree char *tmp_name = g_strdup_printf(".%s.XXXXXX", base);
  g_autofree char *tmp = g_build_filename(dir, tmp_name, NULL);
  int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) {
    int err = errno;
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot create a temporary file: %s", disp,
                g_strerror(err));
    return FALSE;
  }
  FILE *fp = fdopen(fd, "wb");
  if (!fp) {
    int err = errno;
    close(fd);
    g_unlink(tmp);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: %s", disp, g_strerror(err));
    return FALSE;
  }
  g_autoptr(GError) read_error = NULL;
  gboolean ok = write_all(fp, w, dtype, header, hlen, &read_error);
  int err = errno;
  if (fclose(fp) != 0 && ok) {
    ok = FALSE;
    err = errno;
  }
  if (ok && g_rename(tmp, path) != 0) {
    ok = FALSE;
    err = errno;
  }
  if (!ok) {
    g_unlink(tmp);
    if (read_error) {
      g_propagate_prefixed_error(error, g_steal_pointer(&read_error), "%s: ", disp);
      return FALSE;
    }
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot write: %s", disp, g_strerror(err));
    return FALSE;
  }
  return TRUE;
}
