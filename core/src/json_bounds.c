#include "sige/json_bounds.h"

#include <string.h>

sige_json_verdict sige_json_check_bounds(const char *text, gsize len, int max_depth,
                                         guint64 max_entries, gsize *at) {
  int depth = 0;
  guint64 entries = 0;
  for (gsize i = 0; i < len; i++) {
    const char ch = text[i];
    if (ch == '"') {
      /* A string opens or closes nothing: jump to the quote that ends it,
       * the first one after an even run of backslashes (each pair is an
       * escaped backslash; an odd one escapes the quote).  memchr rather
       * than a loop over its bytes: strings are most of a JSON text. */
      for (;;) {
        const char *q = memchr(text + i + 1, '"', len - i - 1);
        if (!q) return SIGE_JSON_OK; /* unterminated: nothing after it opens */
        i = (gsize)(q - text);
        gsize backslashes = 0;
        /* stops at the opening quote at the latest */
        while (text[i - 1 - backslashes] == '\\') backslashes++;
        if (backslashes % 2 == 0) break;
      }
    } else if (ch == '{' || ch == '[') {
      *at = i;
      if (++depth > max_depth) return SIGE_JSON_TOO_DEEP;
      if (max_entries && depth == 2 && ch == '{' && ++entries > max_entries)
        return SIGE_JSON_TOO_MANY;
    } else if (ch == '}' || ch == ']') {
      depth--;
    }
  }
  return SIGE_JSON_OK;
}
