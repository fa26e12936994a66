/* The CLIP BPE tokenizer (sige-app/clip_tokenizer.h), after the rules of
 * openai/CLIP simple_tokenizer.py, written from its description. */
#include "sige-app/clip_tokenizer.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "sige/error.h"
#include "sige/sd_checkpoint.h"

/* openai/CLIP keeps merges[1 : 49152 - 256 - 2 + 1] of its file */
#define CLIP_MERGES 48894
#define BOS "<|startoftext|>"
#define EOS "<|endoftext|>"

struct sige_clip_tokenizer {
  GHashTable *encoder; /* piece -> id + 1 */
  GHashTable *ranks;   /* "a b" -> rank + 1 */
  char byte_enc[256][8]; /* byte -> its printable character, UTF-8 */
  GRegex *pattern;
  int32_t bos, eos;
};

/* openai/CLIP bytes_to_unicode: the printable Latin-1 bytes stand for
 * themselves, the others for 256, 257, ... in byte order.  order[i] is the
 * byte whose character is vocabulary entry i. */
static void byte_table(sige_clip_tokenizer *t, int order[256]) {
  int n = 0, extra = 0;
  gunichar cp[256];
  gboolean printable[256];
  for (int b = 0; b < 256; b++)
    printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  for (int b = 0; b < 256; b++)
    if (printable[b]) cp[b] = (gunichar)b, order[n++] = b;
  for (int b = 0; b < 256; b++)
    if (!printable[b]) cp[b] = 256 + extra++, order[n++] = b;
  for (int b = 0; b < 256; b++) {
    const int len = g_unichar_to_utf8(cp[b], t->byte_enc[b]);
    t->byte_enc[b][len] = '\0';
  }
}

static sige_clip_tokenizer *tokenizer_new(void) {
  sige_clip_tokenizer *t = g_new0(sige_clip_tokenizer, 1);
  t->encoder = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  t->ranks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  int order[256];
  byte_table(t, order);
  /* \p{L}: letters, \p{N}: digits one at a time, the rest in runs; the
   * contractions first (CLIP's pattern, case-insensitive) */
  t->pattern = g_regex_new("<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|"
                           "[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
                           G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, NULL);
  g_assert(t->pattern);
  return t;
}

void sige_clip_tokenizer_free(sige_clip_tokenizer *t) {
  if (!t) return;
  g_hash_table_unref(t->encoder);
  g_hash_table_unref(t->ranks);
  if (t->pattern) g_regex_unref(t->pattern);
  g_free(t);
}

int32_t sige_clip_tokenizer_bos(const sige_clip_tokenizer *t) { return t->bos; }
int32_t sige_clip_tokenizer_eos(const sige_clip_tokenizer *t) { return t->eos; }

/* The whole file, gunzipped when it starts with the gzip magic. */
static GBytes *read_file(const char *path, GError **error) {
  g_autoptr(GFile) f = g_file_new_for_path(path);
  GError *e = NULL;
  g_autoptr(GFileInputStream) raw = g_file_read(f, NULL, &e);
  if (!raw) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: %s", path, e->message);
    g_error_free(e);
    return NULL;
  }
  g_autoptr(GBufferedInputStream) buf =
      G_BUFFERED_INPUT_STREAM(g_buffered_input_stream_new(G_INPUT_STREAM(raw)));
  gsize avail = 0;
  if (g_buffered_input_stream_fill(buf, 2, NULL, &e) < 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: %s", path, e->message);
    g_error_free(e);
    return NULL;
  }
  const guint8 *head = g_buffered_input_stream_peek_buffer(buf, &avail);
  g_autoptr(GInputStream) in = NULL;
  if (avail >= 2 && head[0] == 0x1f && head[1] == 0x8b) {
    g_autoptr(GZlibDecompressor) z = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
    in = g_converter_input_stream_new(G_INPUT_STREAM(buf), G_CONVERTER(z));
  } else {
    in = G_INPUT_STREAM(g_object_ref(buf));
  }
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
  if (g_output_stream_splice(out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &e) < 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: cannot read: %s", path, e->message);
    g_error_free(e);
    return NULL;
  }
  return g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(out));
}

/* The first max lines of text[len] (all when max is 0), split in place:
 * newlines become NULs, trailing whitespace is cut, a final newline makes
 * no empty last line.  One pass with memchr: g_strsplit's strstr per line
 * turns quadratic under the sanitizers' interceptors on a 1.6 MB file. */
static GPtrArray *split_lines(char *text, gsize len, guint max) {
  GPtrArray *lines = g_ptr_array_new();
  char *p = text, *end = text + len;
  while (p < end && (max == 0 || lines->len < max)) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *stop = nl ? nl : end;
    *stop = '\0';
    g_ptr_array_add(lines, g_strchomp(p));
    p = stop + 1;
  }
  return lines;
}

/* Adds merge line `line` (two pieces separated by one space) with rank r. */
static gboolean add_merge(sige_clip_tokenizer *t, const char *path, int lineno, const char *line,
                          int r, char **joined, GError **error) {
  const char *sp = strchr(line, ' ');
  if (!sp || sp == line || !sp[1] || strchr(sp + 1, ' ') || !g_utf8_validate(line, -1, NULL)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s line %d: expected a merge \"A B\" (two UTF-8 pieces, one space), found "
                "\"%.40s\"", path, lineno, line);
    return FALSE;
  }
  g_hash_table_insert(t->ranks, g_strdup(line), GINT_TO_POINTER(r + 1));
  if (joined) {
    g_autofree char *a = g_strndup(line, sp - line);
    *joined = g_strconcat(a, sp + 1, NULL);
  }
  return TRUE;
}

static void add_piece(sige_clip_tokenizer *t, const char *piece) {
  const guint id = g_hash_table_size(t->encoder);
  if (!g_hash_table_contains(t->encoder, piece))
    g_hash_table_insert(t->encoder, g_strdup(piece), GINT_TO_POINTER(id + 1));
}

sige_clip_tokenizer *sige_clip_tokenizer_new_bpe(const char *path, GError **error) {
  g_autoptr(GBytes) bytes = read_file(path, error);
  if (!bytes) return NULL;
  gsize len;
  const char *data = g_bytes_get_data(bytes, &len);
  g_autofree char *text = g_strndup(data, len);
  g_autoptr(GPtrArray) lines = split_lines(text, len, CLIP_MERGES + 1);
  const int n_lines = (int)lines->len;
  const char *const *line = (const char *const *)lines->pdata;
  if (n_lines < 2 || !g_utf8_validate(line[0], -1, NULL) || !strstr(line[0], "#version")) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: not a CLIP BPE vocabulary (expected a first line with \"#version\", as "
                "\"bpe_simple_vocab_16e6.txt#version: 0.2\", then merge lines)", path);
    return NULL;
  }
  sige_clip_tokenizer *t = tokenizer_new();
  int order[256];
  byte_table(t, order);
  for (int i = 0; i < 256; i++) add_piece(t, t->byte_enc[order[i]]);
  for (int i = 0; i < 256; i++) {
    g_autofree char *w = g_strconcat(t->byte_enc[order[i]], "</w>", NULL);
    add_piece(t, w);
  }
  /* a file with fewer merges gives a smaller vocabulary, as the Python
   * slice does */
  for (int i = 1; i < n_lines; i++) {
    char *joined = NULL;
    if (!add_merge(t, path, i + 1, line[i], i - 1, &joined, error)) {
      sige_clip_tokenizer_free(t);
      return NULL;
    }
    add_piece(t, joined);
    g_free(joined);
  }
  t->bos = (int32_t)g_hash_table_size(t->encoder);
  add_piece(t, BOS);
  t->eos = (int32_t)g_hash_table_size(t->encoder);
  add_piece(t, EOS);
  return t;
}

sige_clip_tokenizer *sige_clip_tokenizer_new_vocab_merges(const char *vocab_json,
                                                          const char *merges_txt, GError **error) {
  g_autoptr(JsonParser) parser = json_parser_new();
  GError *e = NULL;
  if (!json_parser_load_from_mapped_file(parser, vocab_json, &e)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: %s", vocab_json, e->message);
    g_error_free(e);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: expected a JSON object of token -> id", vocab_json);
    return NULL;
  }
  g_autoptr(GBytes) bytes = read_file(merges_txt, error);
  if (!bytes) return NULL;
  sige_clip_tokenizer *t = tokenizer_new();
  JsonObject *o = json_node_get_object(root);
  g_autoptr(GList) members = json_object_get_members(o);
  for (GList *m = members; m; m = m->next) {
    JsonNode *v = json_object_get_member(o, m->data);
    const gint64 id = JSON_NODE_HOLDS_VALUE(v) ? json_node_get_int(v) : -1;
    if (json_node_get_value_type(v) != G_TYPE_INT64 || id < 0 || id >= G_MAXINT32) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s: token \"%.40s\": expected a non-negative integer id", vocab_json,
                  (const char *)m->data);
      sige_clip_tokenizer_free(t);
      return NULL;
    }
    g_hash_table_insert(t->encoder, g_strdup(m->data), GINT_TO_POINTER((gint)id + 1));
  }
  gsize len;
  const char *data = g_bytes_get_data(bytes, &len);
  g_autofree char *text = g_strndup(data, len);
  g_autoptr(GPtrArray) lines = split_lines(text, len, 0);
  int rank = 0;
  for (guint i = 0; i < lines->len; i++) {
    const char *l = lines->pdata[i];
    if (!l[0] || g_str_has_prefix(l, "#version")) continue;
    if (!add_merge(t, merges_txt, (int)i + 1, l, rank++, NULL, error)) {
      sige_clip_tokenizer_free(t);
      return NULL;
    }
  }
  const gpointer b = g_hash_table_lookup(t->encoder, BOS), en = g_hash_table_lookup(t->encoder, EOS);
  if (!b || !en) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: no \"%s\" or \"%s\" token",
                vocab_json, BOS, EOS);
    sige_clip_tokenizer_free(t);
    return NULL;
  }
  t->bos = GPOINTER_TO_INT(b) - 1;
  t->eos = GPOINTER_TO_INT(en) - 1;
  return t;
}

sige_clip_tokenizer *sige_clip_tokenizer_new_for_sd(const sige_sd_checkpoint *ck,
                                                    const char *fallback_bpe, GError **error) {
  const char *vocab = sige_sd_checkpoint_vocab_json(ck), *merges = sige_sd_checkpoint_merges_txt(ck);
  return vocab && merges ? sige_clip_tokenizer_new_vocab_merges(vocab, merges, error)
                         : sige_clip_tokenizer_new_bpe(fallback_bpe, error);
}

/* html.unescape for the entities prompts carry (&amp; &lt; &gt; &quot;
 * &apos; &nbsp; and numeric ones); others stay as written. */
static char *html_unescape(const char *s) {
  static const char *const named[][2] = {{"amp;", "&"}, {"lt;", "<"}, {"gt;", ">"},
                                         {"quot;", "\""}, {"apos;", "'"}, {"#39;", "'"},
                                         {"nbsp;", "\xc2\xa0"}};
  GString *out = g_string_new(NULL);
  while (*s) {
    if (*s != '&') {
      g_string_append_c(out, *s++);
      continue;
    }
    gboolean done = FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(named) && !done; i++)
      if (g_str_has_prefix(s + 1, named[i][0])) {
        g_string_append(out, named[i][1]);
        s += 1 + strlen(named[i][0]);
        done = TRUE;
      }
    if (!done && s[1] == '#') {
      const gboolean hex = s[2] == 'x' || s[2] == 'X';
      char *end = NULL;
      const guint64 v = g_ascii_strtoull(s + (hex ? 3 : 2), &end, hex ? 16 : 10);
      if (end && end > s + (hex ? 3 : 2) && *end == ';' && v > 0 && v <= 0x10FFFF &&
          g_unichar_validate((gunichar)v)) {
        g_string_append_unichar(out, (gunichar)v);
        s = end + 1;
        done = TRUE;
      }
    }
    if (!done) g_string_append_c(out, *s++);
  }
  return g_string_free(out, FALSE);
}

/* whitespace_clean(basic_clean(text)).lower() */
static char *clean(const char *text) {
  g_autofree char *once = html_unescape(text);
  g_autofree char *twice = html_unescape(once);
  GString *ws = g_string_new(NULL);
  gboolean space = FALSE;
  for (const char *p = twice; *p; p = g_utf8_next_char(p)) {
    const gunichar c = g_utf8_get_char(p);
    if (g_unichar_isspace(c)) {
      space = TRUE;
      continue;
    }
    if (space && ws->len) g_string_append_c(ws, ' ');
    space = FALSE;
    g_string_append_unichar(ws, c);
  }
  g_autofree char *collapsed = g_string_free(ws, FALSE);
  return g_utf8_strdown(collapsed, -1);
}

/* BPE of one piece given as byte characters: appends its pieces to out. */
static void bpe(const sige_clip_tokenizer *t, const char *word, GPtrArray *out) {
  GPtrArray *w = g_ptr_array_new_with_free_func(g_free);
  for (const char *p = word; *p; p = g_utf8_next_char(p))
    g_ptr_array_add(w, g_strndup(p, g_utf8_next_char(p) - p));
  char *last = g_ptr_array_index(w, w->len - 1);
  w->pdata[w->len - 1] = g_strconcat(last, "</w>", NULL);
  g_free(last);
  while (w->len > 1) {
    int best = 0;
    guint at = 0;
    for (guint i = 0; i + 1 < w->len; i++) {
      g_autofree char *pair = g_strconcat(w->pdata[i], " ", w->pdata[i + 1], NULL);
      const int r = GPOINTER_TO_INT(g_hash_table_lookup(t->ranks, pair));
      if (r && (!best || r < best)) best = r, at = i;
    }
    if (!best) break;
    const char *first = w->pdata[at], *second = w->pdata[at + 1];
    g_autofree char *a = g_strdup(first), *b = g_strdup(second);
    GPtrArray *nw = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < w->len;) {
      if (i + 1 < w->len && !strcmp(w->pdata[i], a) && !strcmp(w->pdata[i + 1], b)) {
        g_ptr_array_add(nw, g_strconcat(a, b, NULL));
        i += 2;
      } else {
        g_ptr_array_add(nw, g_strdup(w->pdata[i]));
        i++;
      }
    }
    g_ptr_array_unref(w);
    w = nw;
  }
  for (guint i = 0; i < w->len; i++) g_ptr_array_add(out, g_strdup(w->pdata[i]));
  g_ptr_array_unref(w);
}

char **sige_clip_tokenizer_pieces(const sige_clip_tokenizer *t, const char *text,
                                  GError **error) {
  if (!g_utf8_validate(text, -1, NULL)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "prompt is not valid UTF-8");
    return NULL;
  }
  g_autofree char *c = clean(text);
  GPtrArray *out = g_ptr_array_new();
  g_autoptr(GMatchInfo) mi = NULL;
  g_regex_match(t->pattern, c, 0, &mi);
  for (; g_match_info_matches(mi); g_match_info_next(mi, NULL)) {
    g_autofree char *m = g_match_info_fetch(mi, 0);
    if (!strcmp(m, BOS) || !strcmp(m, EOS)) { /* the special tokens stand for themselves */
      g_ptr_array_add(out, g_strdup(m));
      continue;
    }
    GString *enc = g_string_new(NULL);
    for (const guint8 *p = (const guint8 *)m; *p; p++) g_string_append(enc, t->byte_enc[*p]);
    g_autofree char *e = g_string_free(enc, FALSE);
    if (*e) bpe(t, e, out);
  }
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}

gboolean sige_clip_tokenize(const sige_clip_tokenizer *t, const char *text, int context_length,
                            int32_t *ids, GError **error) {
  g_return_val_if_fail(t && text && ids && context_length >= 2, FALSE);
  g_auto(GStrv) pieces = sige_clip_tokenizer_pieces(t, text, error);
  if (!pieces) return FALSE;
  int n = 0;
  ids[n++] = t->bos;
  for (int i = 0; pieces[i] && n < context_length - 1; i++) {
    const gpointer id = g_hash_table_lookup(t->encoder, pieces[i]);
    if (!id) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "CLIP vocabulary has no token \"%s\" (from the prompt \"%.40s\")", pieces[i],
                  text);
      return FALSE;
    }
    ids[n++] = GPOINTER_TO_INT(id) - 1;
  }
  while (n < context_length) ids[n++] = t->eos;
  return TRUE;
}
