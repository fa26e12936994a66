/* Private to core/src/weights: the parser of the safetensors header, a JSON
 * object of a fixed schema:
 *
 *   { "__metadata__": { "key": "string value", ... },
 *     "tensor name": { "dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24] },
 *     ... }
 *
 * json-glib built a tree of every node with many small allocations (about
 * half of each fuzz_model_load execution under ASan, tests/fuzz/README.md);
 * this parser walks the schema's three levels (root, entry, array) without
 * recursion, unescapes strings in place in the header buffer and calls back
 * once per metadata pair and per tensor entry.  Entry members other than the
 * three are ignored (their values may be scalars, or arrays or objects of
 * scalars); anything nested deeper is refused. */
#pragma once
#include <glib.h>

#include "sige/tensor.h"

G_BEGIN_DECLS

/* Why a value that should be a non-negative integer is not. */
typedef enum {
  SIGE_ST_INT_OK = 0,
  SIGE_ST_INT_NOT_NUMBER,
  SIGE_ST_INT_NEGATIVE,
  SIGE_ST_INT_FRACTION, /* a fraction or an exponent */
  SIGE_ST_INT_TOO_LARGE, /* above G_MAXINT64 */
} sige_st_int_verdict;

/* The verdict in words ("" for OK), for messages. */
const char *sige_st_int_verdict_str(sige_st_int_verdict v);

typedef enum {
  SIGE_ST_ABSENT = 0,
  SIGE_ST_WRONG_TYPE, /* present, but not a string (dtype) or not an array */
  SIGE_ST_PRESENT,
} sige_st_presence;

/* One tensor entry as the header declares it; the checks against the dtype
 * table and the data region are the reader's. */
typedef struct {
  sige_st_presence dtype_presence;
  const char *dtype; /* NUL-terminated, in the header buffer */
  sige_st_presence shape_presence;
  guint rank;                    /* elements of "shape" (may exceed SIGE_MAX_DIMS) */
  guint64 shape[SIGE_MAX_DIMS];  /* the first SIGE_MAX_DIMS of them */
  int shape_bad;                 /* index of the first bad element, -1: none */
  sige_st_int_verdict shape_bad_why;
  sige_st_presence offsets_presence;
  guint n_offsets;
  guint64 offsets[2];
  int offsets_bad; /* index (0 or 1) of the first bad element, -1: none */
  sige_st_int_verdict offsets_bad_why;
} sige_st_entry_decl;

typedef struct {
  /* Each returns FALSE with *error set to stop the parse. */
  gboolean (*metadata)(gpointer user, const char *key, const char *value, GError **error);
  gboolean (*entry)(gpointer user, const char *name, const sige_st_entry_decl *decl,
                    GError **error);
} sige_st_header_sink;

/* Parses text[0..len) (modified: strings are unescaped and NUL-terminated
 * in place; the names and values handed to the sink point into it and live
 * as long as it).  Errors are SIGE_ERROR_FORMAT, "FILE: ..." or "FILE:
 * tensor 'NAME': ...", with byte offsets counted from the start of the file
 * (the header starts at byte 8).  At most max_entries entries (objects at
 * the second level, __metadata__ included). */
gboolean sige_st_header_parse(char *text, gsize len, const char *file, guint64 max_entries,
                              const sige_st_header_sink *sink, gpointer user, GError **error);

G_END_DECLS
