#include "sige/json_bounds.h"

sige_json_verdict sige_json_check_bounds(const char *text, gsize len, int max_depth,
                                         guint64 max_entries, gsize *at) {
  int depth = 0;
  guint64 entries = 0;
  gboolean in_string = FALSE;
  for (gsize i = 0; i < len; i++) {
    const char ch = text[i];
    if (in_string) {
      if (ch == '\\')
        i++; /* the escaped character cannot end the string */
      else if (ch == '"')
        in_string = FALSE;
    } else if (ch == '"') {
      in_string = TRUE;
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
