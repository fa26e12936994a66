/* Strict safetensors reader.
 *
 * Layout: 8-byte little-endian header length n, n bytes of JSON header, then
 * the data region.  Files come from outside, so every field is checked before
 * a byte of data is touched, and every failure names the file and tensor.
 * The JSON is parsed by safetensors_header.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "sige/error.h"
#include "safetensors_header.h"
#include "weights_internal.h"

/* Real headers are a few KiB per thousand tensors; anything near this is
 * garbage or an attack on the JSON parser. */
#define HEADER_MAX ((guint64)100 << 20)
/* The most tensors one file may declare.  The largest checkpoints we know
 * hold a few thousand (SD 1.x: about 1,100; SDXL: about 2,500); a million
 * empty tensors in a 56 MB header meant 2.3 GB and 40 s in json-glib before
 * this bound (the header parser now keeps about 100 bytes per entry). */
#define HEADER_MAX_TENSORS 200000

/* Dtypes of the safetensors format that we recognise but cannot convert: these
 * are UNSUPPORTED, any other string is a FORMAT error. */
static const char *const foreign_dtypes[] = {"F8_E4M3", "F8_E5M2", "U16", "U32", "U64",
                                             "C64",     "F4",      "F6_E2M3", "F6_E3M2",
                                             "F8_E8M0"};

typedef struct {
  const char *name; /* borrowed from the header buffer */
  sige_dtype dtype;
  int ndim;
  int64_t shape[SIGE_MAX_DIMS];
  guint64 numel;
  guint64 begin, end;
} st_entry;

typedef struct {
  const char *file; /* display name */
  GError **error;
} st_ctx;

/* "file: tensor 'name': message" (or "file: message" without a tensor). */
G_GNUC_PRINTF(4, 5)
static gboolean fail(st_ctx *c, int code, const char *tensor, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (tensor)
    g_set_error(c->error, SIGE_ERROR, code, "%s: tensor '%s': %s", c->file, tensor, msg);
  else
    g_set_error(c->error, SIGE_ERROR, code, "%s: %s", c->file, msg);
  return FALSE;
}

static void shape_string(char *buf, size_t len, const st_entry *e) {
  sige_tensor view = {.ndim = e->ndim};
  memcpy(view.shape, e->shape, sizeof view.shape);
  sige_tensor_shape_str(&view, buf, len);
}

/* Checks one header entry against itself and the data size (not against the
 * other entries: that is check_layout). */
static gboolean parse_entry(st_ctx *c, const char *name, const sige_st_entry_decl *d,
                            guint64 data_size, st_entry *e) {
  memset(e, 0, sizeof *e);
  e->name = name;

  if (d->dtype_presence != SIGE_ST_PRESENT)
    return fail(c, SIGE_ERROR_FORMAT, name, "missing or non-string 'dtype'");
  const char *dts = d->dtype;
  if (!sige_dtype_from_name(dts, &e->dtype)) {
    for (guint i = 0; i < G_N_ELEMENTS(foreign_dtypes); i++)
      if (strcmp(dts, foreign_dtypes[i]) == 0)
        return fail(c, SIGE_ERROR_UNSUPPORTED, name, "dtype %s is not supported", dts);
    return fail(c, SIGE_ERROR_FORMAT, name, "unknown dtype '%s'", dts);
  }

  if (d->shape_presence != SIGE_ST_PRESENT)
    return fail(c, SIGE_ERROR_FORMAT, name, "missing or non-array 'shape'");
  const guint rank = d->rank;
  if (rank > SIGE_MAX_DIMS)
    return fail(c, SIGE_ERROR_UNSUPPORTED, name, "rank %u is above the supported %d", rank,
                SIGE_MAX_DIMS);
  if (d->shape_bad >= 0)
    return fail(c, SIGE_ERROR_FORMAT, name, "shape entry %d is not a non-negative integer (%s)",
                d->shape_bad, sige_st_int_verdict_str(d->shape_bad_why));
  /* A scalar is kept as a 1-D tensor of one element: tensors have rank >= 1. */
  e->ndim = rank == 0 ? 1 : (int)rank;
  e->shape[0] = 1;
  e->numel = 1;
  gboolean overflow = FALSE;
  for (guint i = 0; i < rank; i++) {
    e->shape[i] = (int64_t)d->shape[i]; /* at most G_MAXINT64: the parser checked */
    if (!g_uint64_checked_mul(&e->numel, e->numel, d->shape[i])) overflow = TRUE;
  }
  /* A zero dimension makes the tensor empty even when the other dimensions
   * overflowed on the way. */
  for (guint i = 0; i < rank; i++) {
    if (e->shape[i] == 0) {
      overflow = FALSE;
      e->numel = 0;
    }
  }

  if (d->offsets_presence != SIGE_ST_PRESENT || d->n_offsets != 2)
    return fail(c, SIGE_ERROR_FORMAT, name, "'data_offsets' is not an array of two integers");
  if (d->offsets_bad >= 0)
    return fail(c, SIGE_ERROR_FORMAT, name,
                "'data_offsets' are not non-negative integers (entry %d is %s)", d->offsets_bad,
                sige_st_int_verdict_str(d->offsets_bad_why));
  e->begin = d->offsets[0];
  e->end = d->offsets[1];
  if (e->begin > e->end)
    return fail(c, SIGE_ERROR_FORMAT, name,
                "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] end before they begin",
                e->begin, e->end);
  if (e->end > data_size)
    return fail(c, SIGE_ERROR_FORMAT, name,
                "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                "] run past the data region of %" G_GUINT64_FORMAT " bytes",
                e->begin, e->end, data_size);
  guint64 bytes;
  if (overflow || !g_uint64_checked_mul(&bytes, e->numel, sige_dtype_size(e->dtype)) ||
      bytes != e->end - e->begin) {
    char sbuf[128];
    shape_string(sbuf, sizeof sbuf, e);
    if (overflow || bytes / sige_dtype_size(e->dtype) != e->numel)
      return fail(c, SIGE_ERROR_FORMAT, name, "shape %s is too large", sbuf);
    return fail(c, SIGE_ERROR_FORMAT, name,
                "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] give %" G_GUINT64_FORMAT
                " bytes, expected %" G_GUINT64_FORMAT " for %s %s",
                e->begin, e->end, e->end - e->begin, bytes, sige_dtype_name(e->dtype), sbuf);
  }
  return TRUE;
}

static gint compare_offsets(gconstpointer a, gconstpointer b) {
  const st_entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Sorted by offset, every tensor must start where the previous one ended and
 * the last one must end at the end of the file: no overlap, no hole. */
static gboolean check_layout(st_ctx *c, GArray *entries, guint64 data_size) {
  g_array_sort(entries, compare_offsets);
  guint64 pos = 0;
  const st_entry *prev = NULL;
  for (guint i = 0; i < entries->len; i++) {
    const st_entry *e = &g_array_index(entries, st_entry, i);
    if (e->begin < pos)
      return fail(c, SIGE_ERROR_FORMAT, e->name,
                  "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                  "] overlap tensor '%s' [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]",
                  e->begin, e->end, prev->name, prev->begin, prev->end);
    if (e->begin > pos) {
      if (prev)
        return fail(c, SIGE_ERROR_FORMAT, e->name,
                    "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                    "] leave a hole of %" G_GUINT64_FORMAT " bytes after tensor '%s' (ends at %"
                    G_GUINT64_FORMAT ")",
                    e->begin, e->end, e->begin - pos, prev->name, pos);
      return fail(c, SIGE_ERROR_FORMAT, e->name,
                  "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                  "] leave a hole of %" G_GUINT64_FORMAT " bytes at the start of the data",
                  e->begin, e->end, e->begin);
    }
    pos = e->end;
    prev = e;
  }
  if (pos != data_size) {
    if (prev)
      return fail(c, SIGE_ERROR_FORMAT, prev->name,
                  "the last tensor ends at %" G_GUINT64_FORMAT ", leaving %" G_GUINT64_FORMAT
                  " trailing bytes of the data region unused", pos, data_size - pos);
    return fail(c, SIGE_ERROR_FORMAT, NULL,
                "no tensors, but a data region of %" G_GUINT64_FORMAT " bytes", data_size);
  }
  return TRUE;
}

typedef struct {
  st_ctx *c;
  sige_weights *w;
  GArray *entries;
  guint64 data_size;
} header_state;

static gboolean on_metadata(gpointer user, const char *key, const char *value, GError **error) {
  (void)error;
  header_state *h = user;
  sige_weights_set_metadata(h->w, key, value);
  return TRUE;
}

static gboolean on_entry(gpointer user, const char *name, const sige_st_entry_decl *decl,
                         GError **error) {
  (void)error; /* h->c carries the same GError** */
  header_state *h = user;
  st_entry e;
  if (!parse_entry(h->c, name, decl, h->data_size, &e)) return FALSE;
  g_array_append_val(h->entries, e);
  return TRUE;
}

/* `text` is modified: the names of the entries point into it. */
static gboolean parse_header(st_ctx *c, char *text, gsize len, guint64 data_size,
                             guint64 data_offset, sige_weights *w, sige_weights_source *src) {
  g_autoptr(GArray) entries = g_array_new(FALSE, FALSE, sizeof(st_entry));
  header_state h = {.c = c, .w = w, .entries = entries, .data_size = data_size};
  static const sige_st_header_sink sink = {.metadata = on_metadata, .entry = on_entry};
  if (!sige_st_header_parse(text, len, c->file, HEADER_MAX_TENSORS, &sink, &h, c->error))
    return FALSE;
  if (!check_layout(c, entries, data_size)) return FALSE;

  /* The index records where each tensor is; nothing is read or converted
   * until a model fills its own tensors from it. */
  for (guint i = 0; i < entries->len; i++) {
    const st_entry *e = &g_array_index(entries, st_entry, i);
    sige_weights_view v = {.dtype = e->dtype, .ndim = e->ndim, .offset = data_offset + e->begin};
    memcpy(v.shape, e->shape, sizeof v.shape);
    sige_weights_view_set_contiguous(&v);
    if (!sige_weights_add(w, e->name, src, &v, c->error)) return FALSE;
  }
  return TRUE;
}

sige_weights *sige_weights_load_safetensors(const char *path, GError **error) {
  g_return_val_if_fail(path != NULL, NULL);
  g_autofree char *file = sige_weights_display_name(path);
  st_ctx c = {.file = file, .error = error};

  g_autoptr(sige_weights_source) src = sige_weights_source_open(path, error);
  if (!src) return NULL;
  /* Every offset below is checked against the size the file has now; the
   * entries are read later with pread, so a file that shrinks in between
   * gives a read error then, not a signal. */
  guint64 size = sige_weights_source_size(src);
  if (size < 8) {
    fail(&c, SIGE_ERROR_FORMAT, NULL, "file of %" G_GUINT64_FORMAT
         " bytes is too short for the 8-byte header length", size);
    return NULL;
  }
  guint64 hlen;
  if (!sige_weights_source_read(src, 0, &hlen, 8, file, "(header)", error)) return NULL;
  hlen = GUINT64_FROM_LE(hlen);
  if (hlen < 2) {
    fail(&c, SIGE_ERROR_FORMAT, NULL, "header length %" G_GUINT64_FORMAT " is below 2", hlen);
    return NULL;
  }
  if (hlen > HEADER_MAX) {
    fail(&c, SIGE_ERROR_FORMAT, NULL,
         "header length %" G_GUINT64_FORMAT " is above the 100 MiB limit", hlen);
    return NULL;
  }
  if (hlen > size - 8) {
    fail(&c, SIGE_ERROR_FORMAT, NULL,
         "header length %" G_GUINT64_FORMAT " runs past the end of the file (%" G_GUINT64_FORMAT
         " bytes)", hlen, size);
    return NULL;
  }
  g_autofree char *header = g_malloc((gsize)hlen);
  if (!sige_weights_source_read(src, 8, header, (gsize)hlen, file, "(header)", error))
    return NULL;

  g_autoptr(sige_weights) w = sige_weights_new();
  sige_weights_set_path(w, path);
  gboolean ok = parse_header(&c, header, (gsize)hlen, size - 8 - hlen, 8 + hlen, w, src);
  return ok ? g_steal_pointer(&w) : NULL;
}
