/* Strict safetensors reader.
 *
 * Layout: 8-byte little-endian header length n, n bytes of JSON header, then
 * the data region.  Files come from outside, so every field is checked before
 * a byte of data is touched, and every failure names the file and tensor. */
#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "sige/error.h"
#include "sige/json_bounds.h"
#include "weights_internal.h"

/* Real headers are a few KiB per thousand tensors; anything near this is
 * garbage or an attack on the JSON parser. */
#define HEADER_MAX ((guint64)100 << 20)
/* A valid header nests 3 levels; a little room for metadata-like extras. */
#define HEADER_MAX_DEPTH 32
/* The most tensors one file may declare.  The largest checkpoints we know
 * hold a few thousand (SD 1.x: about 1,100; SDXL: about 2,500); json-glib
 * costs some 2 KiB per entry, so a million empty tensors in a 56 MB header
 * meant 2.3 GB and 40 s before this bound. */
#define HEADER_MAX_TENSORS 200000

/* Dtypes of the safetensors format that we recognise but cannot convert: these
 * are UNSUPPORTED, any other string is a FORMAT error. */
static const char *const foreign_dtypes[] = {"F8_E4M3", "F8_E5M2", "U16", "U32", "U64",
                                             "C64",     "F4",      "F6_E2M3", "F6_E3M2",
                                             "F8_E8M0"};

typedef struct {
  const char *name; /* borrowed from the JSON root */
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

/* json-glib keeps the last of two equal keys silently; we want to reject
 * them.  The parser's object-member signal counts the members parsed into
 * each object: an object that holds fewer than that had a repeated key.
 * Only then is the header parsed again, recording the names per object
 * (JsonObject* -> set of names seen, and -> first repeat) to name the first
 * repeat: copying every key of every header into those sets cost about a
 * sixth of loading a small model (1,197 loads/s against 997 under the
 * fuzzer, tests/fuzz/README.md). */
typedef struct {
  GHashTable *counts; /* counting: JsonObject* -> members parsed */
  GHashTable *seen;   /* recording: JsonObject* -> GHashTable set of names */
  GHashTable *dups;   /* recording: JsonObject* -> first repeated name */
} dup_tracker;

static void on_object_member(JsonParser *parser, JsonObject *object, const char *name,
                             gpointer user_data) {
  (void)parser;
  dup_tracker *d = user_data;
  if (d->counts) {
    gpointer n = g_hash_table_lookup(d->counts, object);
    g_hash_table_insert(d->counts, object, GSIZE_TO_POINTER(GPOINTER_TO_SIZE(n) + 1));
    return;
  }
  GHashTable *names = g_hash_table_lookup(d->seen, object);
  if (!names) {
    names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_insert(d->seen, object, names);
  }
  if (!g_hash_table_add(names, g_strdup(name)) && !g_hash_table_contains(d->dups, object))
    g_hash_table_insert(d->dups, object, g_strdup(name));
}

/* Whether an object the checks below look at (the root, the entries) lost
 * a member to a repeated key.  Only live objects are looked at: the keys of
 * counts may also be objects freed during the parse (the values of repeated
 * keys), whose addresses a later object may reuse; that can only add
 * members to a count, so it can cause a needless second parse, never a
 * repeat missed. */
static gboolean repeats_found(GHashTable *counts, JsonObject *root) {
  if (GPOINTER_TO_SIZE(g_hash_table_lookup(counts, root)) != json_object_get_size(root))
    return TRUE;
  g_autoptr(GList) members = json_object_get_values(root);
  for (GList *l = members; l; l = l->next) {
    JsonNode *node = l->data;
    if (!JSON_NODE_HOLDS_OBJECT(node)) continue;
    JsonObject *o = json_node_get_object(node);
    if (GPOINTER_TO_SIZE(g_hash_table_lookup(counts, o)) != json_object_get_size(o)) return TRUE;
  }
  return FALSE;
}

static gboolean get_uint(JsonNode *node, guint64 *out) {
  if (!node || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int(node);
  if (v < 0) return FALSE;
  *out = (guint64)v;
  return TRUE;
}

static gboolean parse_metadata(st_ctx *c, JsonNode *node, sige_weights *w) {
  if (!JSON_NODE_HOLDS_OBJECT(node))
    return fail(c, SIGE_ERROR_FORMAT, NULL, "__metadata__ is not an object");
  JsonObject *obj = json_node_get_object(node);
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *l = members; l; l = l->next) {
    JsonNode *v = json_object_get_member(obj, l->data);
    if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_STRING)
      return fail(c, SIGE_ERROR_FORMAT, NULL, "__metadata__ entry '%s' is not a string",
                  (const char *)l->data);
    sige_weights_set_metadata(w, l->data, json_node_get_string(v));
  }
  return TRUE;
}

static void shape_string(char *buf, size_t len, const st_entry *e) {
  sige_tensor view = {.ndim = e->ndim};
  memcpy(view.shape, e->shape, sizeof view.shape);
  sige_tensor_shape_str(&view, buf, len);
}

/* Checks one header entry against itself and the data size (not against the
 * other entries: that is check_layout). */
static gboolean parse_entry(st_ctx *c, const char *name, JsonNode *node, guint64 data_size,
                            GHashTable *dups, st_entry *e) {
  memset(e, 0, sizeof *e);
  e->name = name;
  if (!JSON_NODE_HOLDS_OBJECT(node))
    return fail(c, SIGE_ERROR_FORMAT, name, "header entry is not an object");
  JsonObject *obj = json_node_get_object(node);
  const char *dup = g_hash_table_lookup(dups, obj);
  if (dup) return fail(c, SIGE_ERROR_FORMAT, name, "key '%s' appears twice", dup);

  JsonNode *dt = json_object_get_member(obj, "dtype");
  if (!dt || !JSON_NODE_HOLDS_VALUE(dt) || json_node_get_value_type(dt) != G_TYPE_STRING)
    return fail(c, SIGE_ERROR_FORMAT, name, "missing or non-string 'dtype'");
  const char *dts = json_node_get_string(dt);
  if (!sige_dtype_from_name(dts, &e->dtype)) {
    for (guint i = 0; i < G_N_ELEMENTS(foreign_dtypes); i++)
      if (strcmp(dts, foreign_dtypes[i]) == 0)
        return fail(c, SIGE_ERROR_UNSUPPORTED, name, "dtype %s is not supported", dts);
    return fail(c, SIGE_ERROR_FORMAT, name, "unknown dtype '%s'", dts);
  }

  JsonNode *sh = json_object_get_member(obj, "shape");
  if (!sh || !JSON_NODE_HOLDS_ARRAY(sh))
    return fail(c, SIGE_ERROR_FORMAT, name, "missing or non-array 'shape'");
  JsonArray *sha = json_node_get_array(sh);
  guint rank = json_array_get_length(sha);
  if (rank > SIGE_MAX_DIMS)
    return fail(c, SIGE_ERROR_UNSUPPORTED, name, "rank %u is above the supported %d", rank,
                SIGE_MAX_DIMS);
  /* A scalar is kept as a 1-D tensor of one element: tensors have rank >= 1. */
  e->ndim = rank == 0 ? 1 : (int)rank;
  e->shape[0] = 1;
  e->numel = 1;
  gboolean overflow = FALSE;
  for (guint i = 0; i < rank; i++) {
    guint64 d;
    if (!get_uint(json_array_get_element(sha, i), &d) || d > G_MAXINT64)
      return fail(c, SIGE_ERROR_FORMAT, name, "shape entry %u is not a non-negative integer", i);
    e->shape[i] = (int64_t)d;
    if (!g_uint64_checked_mul(&e->numel, e->numel, d)) overflow = TRUE;
  }
  /* A zero dimension makes the tensor empty even when the other dimensions
   * overflowed on the way. */
  for (guint i = 0; i < rank; i++) {
    if (e->shape[i] == 0) {
      overflow = FALSE;
      e->numel = 0;
    }
  }

  JsonNode *off = json_object_get_member(obj, "data_offsets");
  if (!off || !JSON_NODE_HOLDS_ARRAY(off) || json_array_get_length(json_node_get_array(off)) != 2)
    return fail(c, SIGE_ERROR_FORMAT, name, "'data_offsets' is not an array of two integers");
  JsonArray *offa = json_node_get_array(off);
  if (!get_uint(json_array_get_element(offa, 0), &e->begin) ||
      !get_uint(json_array_get_element(offa, 1), &e->end))
    return fail(c, SIGE_ERROR_FORMAT, name, "'data_offsets' are not non-negative integers");
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

/* The bracket depth and the number of entries (the objects opened at the
 * second level: tensors and __metadata__) are bounded before json-glib
 * parses the text: a valid header nests three levels (root, entry, shape). */
static gboolean check_structure(st_ctx *c, const char *text, gsize len) {
  gsize at = 0;
  switch (sige_json_check_bounds(text, len, HEADER_MAX_DEPTH, HEADER_MAX_TENSORS, &at)) {
    case SIGE_JSON_TOO_DEEP:
      return fail(c, SIGE_ERROR_FORMAT, NULL,
                  "header nests JSON objects and arrays deeper than %d levels (at byte %"
                  G_GSIZE_FORMAT ")", HEADER_MAX_DEPTH, at + 8);
    case SIGE_JSON_TOO_MANY:
      return fail(c, SIGE_ERROR_FORMAT, NULL,
                  "header declares more than %d tensors (the most this reader takes; at byte %"
                  G_GSIZE_FORMAT ")", HEADER_MAX_TENSORS, at + 8);
    case SIGE_JSON_OK:
      break;
  }
  return TRUE;
}

static gboolean parse_header(st_ctx *c, const char *text, gsize len, guint64 data_size,
                             guint64 data_offset, sige_weights *w, sige_weights_source *src,
                             dup_tracker *dups) {
  if (!check_structure(c, text, len)) return FALSE;
  g_autoptr(JsonParser) parser = json_parser_new();
  g_signal_connect(parser, "object-member", G_CALLBACK(on_object_member), dups);
  g_autoptr(GError) jerr = NULL;
  if (!json_parser_load_from_data(parser, text, (gssize)len, &jerr))
    return fail(c, SIGE_ERROR_FORMAT, NULL, "header is not valid JSON: %s", jerr->message);
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root))
    return fail(c, SIGE_ERROR_FORMAT, NULL, "header is not a JSON object");
  JsonObject *obj = json_node_get_object(root);
  if (repeats_found(dups->counts, obj)) {
    /* the same text again, recording names (it parsed once, so it parses) */
    g_clear_pointer(&dups->counts, g_hash_table_unref);
    g_clear_object(&parser);
    parser = json_parser_new();
    g_signal_connect(parser, "object-member", G_CALLBACK(on_object_member), dups);
    if (!json_parser_load_from_data(parser, text, (gssize)len, &jerr))
      return fail(c, SIGE_ERROR_FORMAT, NULL, "header is not valid JSON: %s", jerr->message);
    obj = json_node_get_object(json_parser_get_root(parser));
  }
  const char *dup = g_hash_table_lookup(dups->dups, obj);
  if (dup) return fail(c, SIGE_ERROR_FORMAT, dup, "name appears twice in the header");

  g_autoptr(GArray) entries = g_array_new(FALSE, FALSE, sizeof(st_entry));
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *l = members; l; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member(obj, name);
    if (strcmp(name, "__metadata__") == 0) {
      if (!parse_metadata(c, node, w)) return FALSE;
      continue;
    }
    st_entry e;
    if (!parse_entry(c, name, node, data_size, dups->dups, &e)) return FALSE;
    g_array_append_val(entries, e);
  }
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
  dup_tracker dups = {
    .counts = g_hash_table_new(g_direct_hash, g_direct_equal),
    .seen = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                  (GDestroyNotify)g_hash_table_unref),
    .dups = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free),
  };
  gboolean ok = parse_header(&c, header, (gsize)hlen, size - 8 - hlen, 8 + hlen, w, src, &dups);
  if (dups.counts) g_hash_table_unref(dups.counts);
  g_hash_table_unref(dups.seen);
  g_hash_table_unref(dups.dups);
  return ok ? g_steal_pointer(&w) : NULL;
}
