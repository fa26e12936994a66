/* Bounds on JSON text checked before a parser sees it.  json-glib parses
 * recursively and builds a tree of every node: tens of thousands of nested
 * brackets exhaust the C stack inside it, and a million small objects cost
 * gigabytes.  JSON files that json-glib parses (reference cases) are
 * scanned here first; safetensors headers have a parser of their own that
 * follows their schema (core/src/weights/safetensors_header.c). */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  SIGE_JSON_OK = 0,
  SIGE_JSON_TOO_DEEP,   /* brackets nested deeper than max_depth */
  SIGE_JSON_TOO_MANY,   /* more than max_entries objects opened at the second level */
} sige_json_verdict;

/* Scans text[0..len) outside strings; *at receives the byte offset where a
 * bound was passed.  max_entries 0: no bound on the entries. */
sige_json_verdict sige_json_check_bounds(const char *text, gsize len, int max_depth,
                                         guint64 max_entries, gsize *at);

G_END_DECLS
