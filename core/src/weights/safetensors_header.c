#include "safetensors_header.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sige/error.h"

/* The header starts after the 8-byte length: offsets in messages are the
 * file's, as a hex dump shows them. */
#define HEADER_START 8
/* root, entry, the arrays (or flat objects) inside an entry */
#define SCHEMA_DEPTH 3

typedef struct {
  char *text; /* start of the header */
  const char *end;
  char *p; /* next byte to read */
  const char *file;
  GError **error;
  guint64 max_entries;
  /* names seen in the object open at each level: the root's tensor names,
   * one entry's keys, one flat object's keys; created when first needed */
  GHashTable *names[SCHEMA_DEPTH];
  char found[32];
} parser;

static gsize offset_of(const parser *x, const char *at) {
  return (gsize)(at - x->text) + HEADER_START;
}

/* A description of the byte at `at`, for "found ..." in messages. */
static const char *describe(parser *x, const char *at) {
  if (at >= x->end) return "the end of the header";
  const unsigned char c = (unsigned char)*at;
  if (c > 0x20 && c < 0x7f)
    snprintf(x->found, sizeof x->found, "'%c'", c);
  else
    snprintf(x->found, sizeof x->found, "byte 0x%02x", c);
  return x->found;
}

G_GNUC_PRINTF(4, 5)
static gboolean fail(parser *x, const char *tensor, const char *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_autofree char *where = at ? g_strdup_printf(" (at byte %" G_GSIZE_FORMAT ")", offset_of(x, at))
                              : g_strdup("");
  if (tensor)
    g_set_error(x->error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: tensor '%s': %s%s", x->file, tensor,
                msg, where);
  else
    g_set_error(x->error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: %s%s", x->file, msg, where);
  return FALSE;
}

/* A syntax error: "header is not valid JSON at byte N: MESSAGE". */
G_GNUC_PRINTF(3, 4)
static gboolean bad_json(parser *x, const char *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(x->error, SIGE_ERROR, SIGE_ERROR_FORMAT,
              "%s: header is not valid JSON at byte %" G_GSIZE_FORMAT ": %s", x->file,
              offset_of(x, at), msg);
  return FALSE;
}

static gboolean too_deep(parser *x) {
  return fail(x, NULL, x->p, "header nests JSON objects and arrays deeper than %d levels",
              SCHEMA_DEPTH);
}

static void skip_ws(parser *x) {
  while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
    x->p++;
}

static gboolean at_char(const parser *x, char c) { return x->p < x->end && *x->p == c; }

/* A string hash seeded per process: names come from the file, and a fixed
 * hash lets a header of colliding names make every insertion a scan. */
static guint seeded_hash(gconstpointer key) {
  static gsize seed = 0;
  if (g_once_init_enter(&seed)) g_once_init_leave(&seed, (gsize)g_random_int() | 1);
  guint64 h = 0xcbf29ce484222325ull ^ (guint64)seed;
  for (const unsigned char *s = key; *s; s++) h = (h ^ *s) * 0x100000001b3ull;
  return (guint)(h ^ (h >> 32));
}

/* The name set of `level`, emptied for a new object. */
static GHashTable *fresh_names(parser *x, int level) {
  if (!x->names[level])
    x->names[level] = g_hash_table_new(seeded_hash, g_str_equal);
  else if (g_hash_table_size(x->names[level]) > 0)
    g_hash_table_remove_all(x->names[level]);
  return x->names[level];
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The four hex digits at s (bounded by end), or -1. */
static long hex4(const char *s, const char *end) {
  if (end - s < 4) return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    const int d = hex_digit(s[i]);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

static char *put_utf8(char *w, guint32 cp) {
  if (cp < 0x80) {
    *w++ = (char)cp;
  } else if (cp < 0x800) {
    *w++ = (char)(0xc0 | (cp >> 6));
    *w++ = (char)(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *w++ = (char)(0xe0 | (cp >> 12));
    *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
    *w++ = (char)(0x80 | (cp & 0x3f));
  } else {
    *w++ = (char)(0xf0 | (cp >> 18));
    *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
    *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
    *w++ = (char)(0x80 | (cp & 0x3f));
  }
  return w;
}

/* The length of the well-formed UTF-8 sequence at s (lead byte >= 0x80):
 * no overlong forms, no surrogates, nothing above U+10FFFF; 0 if invalid. */
static int utf8_length(const unsigned char *s, const unsigned char *end) {
  const unsigned char c = s[0];
  int n;
  unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (end - s < n) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (int i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf) return 0;
  return n;
}

/* The string at x->p (which must be a quote), unescaped in place: *out
 * points at its first byte, NUL-terminated.  `what` names it for "expected". */
static gboolean parse_string(parser *x, char **out, const char *what) {
  if (!at_char(x, '"'))
    return bad_json(x, x->p, "expected %s (a string), found %s", what, describe(x, x->p));
  char *const start = x->p + 1;
  char *r = start, *w = start;
  for (;;) {
    if (r >= x->end) return bad_json(x, x->p, "the string that starts here does not end");
    const unsigned char c = (unsigned char)*r;
    if (c == '"') {
      *w = '\0'; /* w <= r: the quote's byte at the latest */
      x->p = r + 1;
      *out = start;
      return TRUE;
    }
    if (c < 0x20)
      return bad_json(x, r, "control character 0x%02x in a string (it must be escaped)", c);
    if (c < 0x80 && c != '\\') {
      *w++ = (char)c;
      r++;
      continue;
    }
    if (c >= 0x80) {
      const int n = utf8_length((const unsigned char *)r, (const unsigned char *)x->end);
      if (!n) return bad_json(x, r, "invalid UTF-8 in a string");
      for (int i = 0; i < n; i++) *w++ = *r++;
      continue;
    }
    /* an escape: what it stands for is never longer than the escape */
    if (r + 1 >= x->end) return bad_json(x, x->p, "the string that starts here does not end");
    const char e = r[1];
    char *const esc = r;
    r += 2;
    switch (e) {
      case '"': *w++ = '"'; break;
      case '\\': *w++ = '\\'; break;
      case '/': *w++ = '/'; break;
      case 'b': *w++ = '\b'; break;
      case 'f': *w++ = '\f'; break;
      case 'n': *w++ = '\n'; break;
      case 'r': *w++ = '\r'; break;
      case 't': *w++ = '\t'; break;
      case 'u': {
        long cp = hex4(r, x->end);
        if (cp < 0) return bad_json(x, esc, "\\u is not followed by four hex digits");
        r += 4;
        if (cp >= 0xdc00 && cp <= 0xdfff)
          return bad_json(x, esc, "\\u%04lX is a low surrogate without a high one before it", cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
          const long low = (x->end - r >= 2 && r[0] == '\\' && r[1] == 'u') ? hex4(r + 2, x->end)
                                                                           : -1;
          if (low < 0xdc00 || low > 0xdfff)
            return bad_json(x, esc,
                            "\\u%04lX is a high surrogate not followed by a low one (\\uDC00 to "
                            "\\uDFFF)", cp);
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          r += 6;
        }
        if (cp == 0)
          return bad_json(x, esc, "\\u0000 in a string (names and values cannot hold a NUL)");
        w = put_utf8(w, (guint32)cp);
        break;
      }
      default:
        return bad_json(x, esc, "invalid escape %s in a string", describe(x, esc + 1));
    }
  }
}

/* One scalar value: a string (*str set), a number (*verdict and *value set
 * for an integer), true, false or null.  An array or object here is nested
 * deeper than the schema. */
typedef struct {
  gboolean is_number;
  sige_st_int_verdict verdict; /* NOT_NUMBER unless a number */
  guint64 value;
  char *str; /* NULL unless a string */
} scalar;

static gboolean parse_number(parser *x, scalar *s) {
  const char *q = x->p;
  const gboolean negative = *q == '-';
  if (negative) q++;
  if (q >= x->end || *q < '0' || *q > '9')
    return bad_json(x, q, "expected a digit in a number, found %s", describe(x, q));
  guint64 v = 0;
  gboolean too_large = FALSE;
  if (*q == '0') {
    q++;
    if (q < x->end && *q >= '0' && *q <= '9')
      return bad_json(x, q - 1, "a number starts with a leading zero");
  } else {
    for (; q < x->end && *q >= '0' && *q <= '9'; q++) {
      const guint d = (guint)(*q - '0');
      if (v > (G_MAXUINT64 - d) / 10)
        too_large = TRUE;
      else
        v = v * 10 + d;
    }
  }
  gboolean fraction = FALSE;
  if (q < x->end && *q == '.') {
    q++;
    if (q >= x->end || *q < '0' || *q > '9')
      return bad_json(x, q, "expected a digit after '.' in a number, found %s", describe(x, q));
    while (q < x->end && *q >= '0' && *q <= '9') q++;
    fraction = TRUE;
  }
  if (q < x->end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < x->end && (*q == '+' || *q == '-')) q++;
    if (q >= x->end || *q < '0' || *q > '9')
      return bad_json(x, q, "expected a digit in the exponent of a number, found %s",
                      describe(x, q));
    while (q < x->end && *q >= '0' && *q <= '9') q++;
    fraction = TRUE;
  }
  s->is_number = TRUE;
  s->value = v;
  s->verdict = negative   ? SIGE_ST_INT_NEGATIVE
               : fraction ? SIGE_ST_INT_FRACTION
               : (too_large || v > G_MAXINT64) ? SIGE_ST_INT_TOO_LARGE
                                               : SIGE_ST_INT_OK;
  x->p = (char *)q;
  return TRUE;
}

static gboolean parse_scalar(parser *x, scalar *s) {
  *s = (scalar){.verdict = SIGE_ST_INT_NOT_NUMBER};
  if (x->p >= x->end) return bad_json(x, x->p, "expected a value, found the end of the header");
  const char c = *x->p;
  if (c == '"') return parse_string(x, &s->str, "a value");
  if (c == '-' || (c >= '0' && c <= '9')) return parse_number(x, s);
  if (c == '[' || c == '{') return too_deep(x);
  static const char *const literals[] = {"true", "false", "null"};
  for (guint i = 0; i < G_N_ELEMENTS(literals); i++) {
    const gsize n = strlen(literals[i]);
    if ((gsize)(x->end - x->p) >= n && memcmp(x->p, literals[i], n) == 0) {
      x->p += n;
      return TRUE;
    }
  }
  return bad_json(x, x->p, "expected a value, found %s", describe(x, x->p));
}

/* ':' between a name and its value, with the whitespace around it. */
static gboolean parse_colon(parser *x, const char *name) {
  skip_ws(x);
  if (!at_char(x, ':'))
    return bad_json(x, x->p, "expected ':' after the name '%s', found %s", name,
                    describe(x, x->p));
  x->p++;
  skip_ws(x);
  return TRUE;
}

/* After a member or an element: TRUE with *more set at ',', clear at the
 * closing bracket `close`.  The message says after what: `what`, followed by
 * 'key' where key is not NULL (formatted only on error: this runs for every
 * member of every header). */
static gboolean parse_separator(parser *x, char close, const char *what, const char *key,
                                gboolean *more) {
  skip_ws(x);
  if (at_char(x, ',')) {
    x->p++;
    skip_ws(x);
    *more = TRUE;
    return TRUE;
  }
  if (at_char(x, close)) {
    x->p++;
    *more = FALSE;
    return TRUE;
  }
  if (key)
    return bad_json(x, x->p, "expected ',' or '%c' after %s '%s', found %s", close, what, key,
                    describe(x, x->p));
  return bad_json(x, x->p, "expected ',' or '%c' after %s, found %s", close, what,
                  describe(x, x->p));
}

/* An array of scalars at the third level (x->p at '['); the integers'
 * verdicts and values go to verdicts/values (up to cap of them), the count
 * to *n. */
static gboolean parse_array3(parser *x, const char *key, guint cap, sige_st_int_verdict *verdicts,
                             guint64 *values, guint *n) {
  x->p++;
  skip_ws(x);
  *n = 0;
  if (at_char(x, ']')) {
    x->p++;
    return TRUE;
  }
  for (gboolean more = TRUE; more;) {
    scalar s;
    if (!parse_scalar(x, &s)) return FALSE;
    if (*n < cap) {
      verdicts[*n] = s.verdict;
      values[*n] = s.value;
    }
    if (*n < G_MAXUINT) (*n)++;
    if (!parse_separator(x, ']', "an element of", key, &more)) return FALSE;
  }
  return TRUE;
}

/* An object of scalars at the third level (x->p at '{'), the value of a
 * member the reader ignores: its keys must still be distinct. */
static gboolean parse_object3(parser *x, const char *tensor, const char *key) {
  x->p++;
  skip_ws(x);
  if (at_char(x, '}')) {
    x->p++;
    return TRUE;
  }
  GHashTable *names = fresh_names(x, 2);
  for (gboolean more = TRUE; more;) {
    char *name;
    const char *at = x->p;
    if (!parse_string(x, &name, "a name")) return FALSE;
    if (!g_hash_table_add(names, name))
      return fail(x, tensor, at, "key '%s' appears twice in the value of '%s'", name, key);
    if (!parse_colon(x, name)) return FALSE;
    scalar s;
    if (!parse_scalar(x, &s)) return FALSE;
    if (!parse_separator(x, '}', "a member of", key, &more)) return FALSE;
  }
  return TRUE;
}

/* Any value at the third level that the reader does not use. */
static gboolean skip_value3(parser *x, const char *tensor, const char *key) {
  if (at_char(x, '[')) {
    guint n;
    return parse_array3(x, key, 0, NULL, NULL, &n);
  }
  if (at_char(x, '{')) return parse_object3(x, tensor, key);
  scalar s;
  return parse_scalar(x, &s);
}

/* An integer array member ("shape", "data_offsets"): its presence, element
 * count, the first `cap` values and the first bad element. */
static gboolean parse_int_array(parser *x, const char *tensor, const char *key, guint cap,
                                sige_st_presence *presence, guint *n, guint64 *values, int *bad,
                                sige_st_int_verdict *bad_why) {
  *bad = -1;
  if (!at_char(x, '[')) {
    *presence = SIGE_ST_WRONG_TYPE;
    return skip_value3(x, tensor, key);
  }
  *presence = SIGE_ST_PRESENT;
  /* every element's verdict is needed for the first bad one; the values
   * only up to cap */
  sige_st_int_verdict verdicts[SIGE_MAX_DIMS > 2 ? SIGE_MAX_DIMS : 2];
  if (!parse_array3(x, key, cap, verdicts, values, n)) return FALSE;
  for (guint i = 0; i < MIN(*n, cap); i++) {
    if (verdicts[i] != SIGE_ST_INT_OK) {
      *bad = (int)i;
      *bad_why = verdicts[i];
      return TRUE;
    }
  }
  /* elements past cap: the reader refuses the array for its length first */
  return TRUE;
}

static gboolean parse_entry(parser *x, const char *tensor, sige_st_entry_decl *d) {
  *d = (sige_st_entry_decl){.shape_bad = -1, .offsets_bad = -1};
  x->p++;
  skip_ws(x);
  if (at_char(x, '}')) {
    x->p++;
    return TRUE;
  }
  GHashTable *names = fresh_names(x, 1);
  for (gboolean more = TRUE; more;) {
    char *key;
    const char *at = x->p;
    if (!parse_string(x, &key, "a key")) return FALSE;
    if (!g_hash_table_add(names, key))
      return fail(x, tensor, at, "key '%s' appears twice", key);
    if (!parse_colon(x, key)) return FALSE;
    gboolean ok;
    if (strcmp(key, "dtype") == 0) {
      if (at_char(x, '"')) {
        d->dtype_presence = SIGE_ST_PRESENT;
        char *s;
        ok = parse_string(x, &s, "a dtype");
        d->dtype = s;
      } else {
        d->dtype_presence = SIGE_ST_WRONG_TYPE;
        ok = skip_value3(x, tensor, key);
      }
    } else if (strcmp(key, "shape") == 0) {
      ok = parse_int_array(x, tensor, key, SIGE_MAX_DIMS, &d->shape_presence, &d->rank, d->shape,
                           &d->shape_bad, &d->shape_bad_why);
    } else if (strcmp(key, "data_offsets") == 0) {
      ok = parse_int_array(x, tensor, key, 2, &d->offsets_presence, &d->n_offsets, d->offsets,
                           &d->offsets_bad, &d->offsets_bad_why);
    } else {
      ok = skip_value3(x, tensor, key);
    }
    if (!ok) return FALSE;
    if (!parse_separator(x, '}', "the value of", key, &more)) return FALSE;
  }
  return TRUE;
}

static gboolean parse_metadata(parser *x, const sige_st_header_sink *sink, gpointer user) {
  if (!at_char(x, '{'))
    return fail(x, NULL, x->p, "__metadata__ is not an object, found %s", describe(x, x->p));
  x->p++;
  skip_ws(x);
  if (at_char(x, '}')) {
    x->p++;
    return TRUE;
  }
  GHashTable *names = fresh_names(x, 1);
  for (gboolean more = TRUE; more;) {
    char *key, *value;
    const char *at = x->p;
    if (!parse_string(x, &key, "a name")) return FALSE;
    if (!g_hash_table_add(names, key))
      return fail(x, NULL, at, "__metadata__ key '%s' appears twice", key);
    if (!parse_colon(x, key)) return FALSE;
    if (!at_char(x, '"'))
      return fail(x, NULL, x->p, "__metadata__ entry '%s' is not a string", key);
    if (!parse_string(x, &value, "a value")) return FALSE;
    if (!sink->metadata(user, key, value, x->error)) return FALSE;
    if (!parse_separator(x, '}', "a member of __metadata__", NULL, &more)) return FALSE;
  }
  return TRUE;
}

static gboolean parse_root(parser *x, const sige_st_header_sink *sink, gpointer user) {
  skip_ws(x);
  if (!at_char(x, '{'))
    return fail(x, NULL, x->p, "header is not a JSON object, found %s", describe(x, x->p));
  x->p++;
  skip_ws(x);
  gboolean more = TRUE;
  if (at_char(x, '}')) {
    x->p++;
    more = FALSE;
  }
  GHashTable *names = more ? fresh_names(x, 0) : NULL;
  guint64 entries = 0;
  while (more) {
    char *name;
    const char *at = x->p;
    if (!parse_string(x, &name, "a tensor name")) return FALSE;
    if (!g_hash_table_add(names, name))
      return fail(x, name, at, "name appears twice in the header");
    if (!parse_colon(x, name)) return FALSE;
    if (at_char(x, '{') && ++entries > x->max_entries)
      return fail(x, NULL, NULL,
                  "header declares more than %" G_GUINT64_FORMAT
                  " tensors (the most this reader takes; at byte %" G_GSIZE_FORMAT ")",
                  x->max_entries, offset_of(x, x->p));
    if (strcmp(name, "__metadata__") == 0) {
      if (!parse_metadata(x, sink, user)) return FALSE;
    } else {
      if (!at_char(x, '{'))
        return fail(x, name, x->p, "header entry is not a JSON object, found %s",
                    describe(x, x->p));
      sige_st_entry_decl d;
      if (!parse_entry(x, name, &d)) return FALSE;
      if (!sink->entry(user, name, &d, x->error)) return FALSE;
    }
    if (!parse_separator(x, '}', "a member of the header", NULL, &more)) return FALSE;
  }
  /* the format pads the header with spaces */
  skip_ws(x);
  if (x->p < x->end)
    return bad_json(x, x->p, "expected only whitespace after the header's object, found %s",
                    describe(x, x->p));
  return TRUE;
}

gboolean sige_st_header_parse(char *text, gsize len, const char *file, guint64 max_entries,
                              const sige_st_header_sink *sink, gpointer user, GError **error) {
  parser x = {.text = text, .end = text + len, .p = text, .file = file, .error = error,
              .max_entries = max_entries};
  const gboolean ok = parse_root(&x, sink, user);
  for (int i = 0; i < SCHEMA_DEPTH; i++)
    if (x.names[i]) g_hash_table_unref(x.names[i]);
  return ok;
}

const char *sige_st_int_verdict_str(sige_st_int_verdict v) {
  switch (v) {
    case SIGE_ST_INT_OK: return "";
    case SIGE_ST_INT_NOT_NUMBER: return "not a number";
    case SIGE_ST_INT_NEGATIVE: return "negative";
    case SIGE_ST_INT_FRACTION: return "not an integer (a fraction or an exponent)";
    case SIGE_ST_INT_TOO_LARGE: return "above 9223372036854775807";
  }
  return "";
}
