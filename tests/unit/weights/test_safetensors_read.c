/* Safetensors reader: decoding of every dtype from hand-built files, and
 * hand-corrupted files that must fail with the right code and a message
 * naming the file and the tensor. */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>
#include <unistd.h>

#include "sige/error.h"
#include "sige/weights.h"
#include "test_util.h"

typedef struct {
  char *dir;
} fixture;

static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  f->dir = g_dir_make_tmp("sige-st-read-XXXXXX", NULL);
  assert_non_null(f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  GDir *d = g_dir_open(f->dir, 0, NULL);
  const char *n;
  while (d && (n = g_dir_read_name(d))) {
    g_autofree char *p = g_build_filename(f->dir, n, NULL);
    g_unlink(p);
  }
  if (d) g_dir_close(d);
  g_rmdir(f->dir);
  g_free(f->dir);
  g_free(f);
  return 0;
}

/* Writes [length][header][data] by hand; `hlen` overrides the length field
 * when non-zero so that broken lengths can be written. */
static char *write_raw(const fixture *f, const char *name, const char *header, guint64 hlen,
                       const void *data, size_t data_len) {
  char *path = g_build_filename(f->dir, name, NULL);
  GByteArray *b = g_byte_array_new();
  guint64 len = GUINT64_TO_LE(hlen ? hlen : strlen(header));
  g_byte_array_append(b, (const guint8 *)&len, 8);
  g_byte_array_append(b, (const guint8 *)header, (guint)strlen(header));
  if (data_len) g_byte_array_append(b, data, (guint)data_len);
  assert_true(g_file_set_contents(path, (const char *)b->data, b->len, NULL));
  g_byte_array_unref(b);
  return path;
}

static void put16(guint8 *p, guint16 v) { p[0] = v & 0xff, p[1] = v >> 8; }
static void put32(guint8 *p, guint32 v) {
  for (int i = 0; i < 4; i++) p[i] = (guint8)(v >> (8 * i));
}
static void put64(guint8 *p, guint64 v) {
  for (int i = 0; i < 8; i++) p[i] = (guint8)(v >> (8 * i));
}

static void test_decode_bf16(void **state) {
  const fixture *f = *state;
  guint8 data[8];
  put16(data + 0, 0x3f80); /* 1 */
  put16(data + 2, 0xc000); /* -2 */
  put16(data + 4, 0x4049); /* 3.140625 */
  put16(data + 6, 0x7f80); /* +inf */
  g_autofree char *path = write_raw(
      f, "bf16.safetensors",
      "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", 0, data, 8);
  g_autoptr(GError) err = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(path, &err);
  assert_null(err);
  assert_non_null(w);
  const sige_tensor *t = sige_weights_get(w, "w");
  assert_non_null(t);
  assert_int_equal(t->ndim, 2);
  assert_int_equal(t->shape[0], 2);
  assert_int_equal(t->shape[1], 2);
  assert_true(t->data[0] == 1.0f);
  assert_true(t->data[1] == -2.0f);
  assert_true(t->data[2] == 3.140625f);
  assert_true(isinf(t->data[3]) && t->data[3] > 0);
  assert_int_equal(sige_weights_dtype(w, "w"), SIGE_DTYPE_BF16);
  assert_string_equal(sige_weights_path(w), path);
}

/* Integer, bool, F64, F16 and scalar entries in one file, and an unaligned
 * data region (the header is padded to an odd length). */
static void test_decode_integers(void **state) {
  const fixture *f = *state;
  guint8 d[128] = {0};
  size_t o = 0;
  put32(d + o, (guint32)-5), put32(d + o + 4, 0), put32(d + o + 8, 34),
      put32(d + o + 12, 2147483647u);
  o += 16;                                      /* i32 [0,16] */
  d[o] = 0, d[o + 1] = 255, d[o + 2] = 34;      /* u8  [16,19] */
  o += 3;
  d[o] = 0x80;                                  /* i8  [19,20] */
  o += 1;
  put16(d + o, (guint16)-300);                  /* i16 [20,22] */
  o += 2;
  put64(d + o, (guint64)-123456789012ll);       /* i64 [22,30] */
  o += 8;
  d[o] = 0, d[o + 1] = 1, d[o + 2] = 7;         /* bool [30,33] */
  o += 3;
  double x = -0.375;
  guint64 xb;
  memcpy(&xb, &x, 8);
  put64(d + o, xb);                             /* f64 [33,41] */
  o += 8;
  put16(d + o, 0x3c00), put16(d + o + 2, 0xc500); /* f16 [41,45]: 1, -5 */
  o += 4;
  float s = 2.5f;
  guint32 sb;
  memcpy(&sb, &s, 4);
  put32(d + o, sb);                             /* f32 scalar [45,49] */
  o += 4;
  const char *header =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"i32\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
      "\"u8\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[16,19]},"
      "\"i8\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[19,20]},"
      "\"i16\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[20,22]},"
      "\"i64\":{\"dtype\":\"I64\",\"shape\":[1,1,1,1],\"data_offsets\":[22,30]},"
      "\"bool\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[30,33]},"
      "\"f64\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[33,41]},"
      "\"f16\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[41,45]},"
      "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[45,49]},"
      "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[49,49]}}";
  /* An odd header length puts every multi-byte element off its alignment. */
  g_autofree char *odd = g_strconcat(header, strlen(header) % 2 ? "" : " ", NULL);
  g_autofree char *path = write_raw(f, "ints.safetensors", odd, 0, d, o);
  g_autoptr(GError) err = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(path, &err);
  if (err) fail_msg("%s", err->message);
  assert_non_null(w);

  const sige_tensor *t = sige_weights_get(w, "i32");
  assert_true(t->data[0] == -5.0f && t->data[1] == 0.0f && t->data[2] == 34.0f);
  assert_true(t->data[3] == 2147483648.0f); /* nearest float */
  assert_int_equal(sige_weights_dtype(w, "i32"), SIGE_DTYPE_I32);
  t = sige_weights_get(w, "u8");
  assert_true(t->data[0] == 0.0f && t->data[1] == 255.0f && t->data[2] == 34.0f);
  assert_int_equal(sige_weights_dtype(w, "u8"), SIGE_DTYPE_U8);
  assert_true(sige_weights_get(w, "i8")->data[0] == -128.0f);
  assert_true(sige_weights_get(w, "i16")->data[0] == -300.0f);
  t = sige_weights_get(w, "i64");
  assert_int_equal(t->ndim, 4);
  assert_true(t->data[0] == (float)-123456789012ll);
  t = sige_weights_get(w, "bool");
  assert_true(t->data[0] == 0.0f && t->data[1] == 1.0f && t->data[2] == 1.0f);
  assert_true(sige_weights_get(w, "f64")->data[0] == -0.375f);
  t = sige_weights_get(w, "f16");
  assert_true(t->data[0] == 1.0f && t->data[1] == -5.0f);
  t = sige_weights_get(w, "scalar");
  assert_int_equal(t->ndim, 1);
  assert_int_equal(t->shape[0], 1);
  assert_true(t->data[0] == 2.5f);
  t = sige_weights_get(w, "empty");
  assert_int_equal(t->numel, 0);
  assert_int_equal(t->shape[1], 3);
  assert_string_equal(sige_weights_metadata(w, "format"), "pt");
  assert_null(sige_weights_metadata(w, "nope"));
  assert_false(sige_weights_contains(w, "__metadata__"));

  guint n = 0;
  const char *const *names = sige_weights_names(w, &n);
  assert_int_equal(n, 10);
  for (guint i = 1; i < n; i++) assert_true(strcmp(names[i - 1], names[i]) < 0);
  assert_null(names[n]);
}

/* Loads `path`, expects failure with `code`, and every needle in the message. */
static void expect_failure(const char *path, int code, const char *const *needles) {
  g_autoptr(GError) err = NULL;
  sige_weights *w = sige_weights_load_safetensors(path, &err);
  if (w) {
    sige_weights_free(w);
    fail_msg("%s loaded, expected an error", path);
  }
  assert_non_null(err);
  if (!g_error_matches(err, SIGE_ERROR, code))
    fail_msg("expected code %d, got %d: %s", code, err->code, err->message);
  for (; *needles; needles++)
    if (!strstr(err->message, *needles))
      fail_msg("message '%s' does not mention '%s'", err->message, *needles);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A one-header corruption: `header` over `data_len` zero bytes. */
static void check_header(const fixture *f, const char *file, const char *header, size_t data_len,
                         int code, const char *const *needles) {
  g_autofree guint8 *data = g_malloc0(data_len + 1);
  g_autofree char *path = write_raw(f, file, header, 0, data, data_len);
  expect_failure(path, code, needles);
}

static void test_missing_file(void **state) {
  const fixture *f = *state;
  g_autofree char *path = g_build_filename(f->dir, "nope", "absent.safetensors", NULL);
  expect_failure(path, SIGE_ERROR_IO, NEEDLES(path));
}

static void test_truncated_header(void **state) {
  const fixture *f = *state;
  g_autofree char *path = g_build_filename(f->dir, "short.safetensors", NULL);
  assert_true(g_file_set_contents(path, "\x10\0\0", 3, NULL));
  expect_failure(path, SIGE_ERROR_FORMAT, NEEDLES("short.safetensors", "too short"));
  assert_true(g_file_set_contents(path, "", 0, NULL));
  expect_failure(path, SIGE_ERROR_FORMAT, NEEDLES("short.safetensors", "too short"));
}

static void test_header_length_too_large(void **state) {
  const fixture *f = *state;
  g_autofree char *p1 = write_raw(f, "big.safetensors", "{}", 1000, NULL, 0);
  expect_failure(p1, SIGE_ERROR_FORMAT, NEEDLES("big.safetensors", "header length 1000"));
  g_autofree char *p2 = write_raw(f, "huge.safetensors", "{}", (guint64)1 << 40, NULL, 0);
  expect_failure(p2, SIGE_ERROR_FORMAT, NEEDLES("huge.safetensors", "100 MiB"));
  g_autofree char *p3 = write_raw(f, "tiny.safetensors", "{}", 1, NULL, 0);
  expect_failure(p3, SIGE_ERROR_FORMAT, NEEDLES("tiny.safetensors", "header length 1"));
}

static void test_not_json(void **state) {
  const fixture *f = *state;
  check_header(f, "nojson.safetensors", "{\"a\": [1, 2", 0, SIGE_ERROR_FORMAT,
               NEEDLES("nojson.safetensors", "JSON"));
  check_header(f, "array.safetensors", "[1, 2]", 0, SIGE_ERROR_FORMAT,
               NEEDLES("array.safetensors", "not a JSON object"));
  check_header(f, "entry.safetensors", "{\"w\": 3}", 0, SIGE_ERROR_FORMAT,
               NEEDLES("entry.safetensors", "'w'"));
}

static void test_unknown_dtype(void **state) {
  const fixture *f = *state;
  check_header(f, "dt.safetensors",
               "{\"conv.weight\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("dt.safetensors", "'conv.weight'", "F99"));
  /* A real safetensors dtype we do not convert is unsupported, not corrupt. */
  check_header(f, "f8.safetensors",
               "{\"conv.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
               SIGE_ERROR_UNSUPPORTED, NEEDLES("f8.safetensors", "'conv.weight'", "F8_E4M3"));
  check_header(f, "nodt.safetensors", "{\"b\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("nodt.safetensors", "'b'", "dtype"));
}

static void test_bad_shape(void **state) {
  const fixture *f = *state;
  check_header(f, "neg.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("neg.safetensors", "'w'", "shape"));
  check_header(f, "frac.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("frac.safetensors", "'w'", "shape"));
  check_header(f, "str.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("str.safetensors", "'w'", "shape"));
  check_header(f, "rank5.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
               SIGE_ERROR_UNSUPPORTED, NEEDLES("rank5.safetensors", "'w'", "rank 5"));
  check_header(f, "overflow.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
               "\"data_offsets\":[0,8]}}",
               8, SIGE_ERROR_FORMAT, NEEDLES("overflow.safetensors", "'w'"));
}

static void test_size_mismatch(void **state) {
  const fixture *f = *state;
  check_header(f, "weights.safetensors",
               "{\"conv_in.weight\":{\"dtype\":\"F16\",\"shape\":[32,3,3,3],"
               "\"data_offsets\":[0,100]}}",
               100, SIGE_ERROR_FORMAT,
               NEEDLES("weights.safetensors: tensor 'conv_in.weight': data_offsets [0, 100] give "
                       "100 bytes, expected 1728 for F16 [32, 3, 3, 3]"));
}

static void test_offsets_out_of_range(void **state) {
  const fixture *f = *state;
  check_header(f, "range.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12,
               SIGE_ERROR_FORMAT, NEEDLES("range.safetensors", "'w'", "[0, 16]"));
  check_header(f, "rev.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("rev.safetensors", "'w'", "[8, 4]"));
  check_header(f, "three.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("three.safetensors", "'w'", "data_offsets"));
  check_header(f, "negoff.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("negoff.safetensors", "'w'", "data_offsets"));
}

static void test_overlap(void **state) {
  const fixture *f = *state;
  check_header(f, "overlap.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
               24, SIGE_ERROR_FORMAT, NEEDLES("overlap.safetensors", "'b'", "overlap", "'a'"));
  check_header(f, "same.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"b\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
               16, SIGE_ERROR_FORMAT, NEEDLES("same.safetensors", "'a'", "'b'", "overlap"));
}

static void test_hole(void **state) {
  const fixture *f = *state;
  check_header(f, "hole.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[20,36]}}",
               36, SIGE_ERROR_FORMAT, NEEDLES("hole.safetensors", "'b'", "hole of 4 bytes"));
  check_header(f, "start.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("start.safetensors", "'a'", "hole"));
  check_header(f, "tail.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 20,
               SIGE_ERROR_FORMAT, NEEDLES("tail.safetensors", "'a'", "4 trailing bytes"));
  check_header(f, "none.safetensors", "{}", 4, SIGE_ERROR_FORMAT,
               NEEDLES("none.safetensors", "4 bytes"));
}

static void test_duplicate(void **state) {
  const fixture *f = *state;
  check_header(f, "dup.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}",
               32, SIGE_ERROR_FORMAT, NEEDLES("dup.safetensors", "'a'", "twice"));
  check_header(f, "dupkey.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("dupkey.safetensors", "'a'", "'shape'", "twice"));
  /* in a later entry, the repeated key's first value an object (freed by
   * json-glib when the second replaces it) */
  check_header(f, "dupnested.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"b\":{\"dtype\":\"F32\",\"x\":{\"y\":1},\"x\":{\"z\":2},\"shape\":[4],"
               "\"data_offsets\":[16,32]}}",
               32, SIGE_ERROR_FORMAT, NEEDLES("dupnested.safetensors", "'b'", "'x'", "twice"));
}

static void test_bad_metadata(void **state) {
  const fixture *f = *state;
  check_header(f, "meta.safetensors", "{\"__metadata__\":{\"k\":1}}", 0, SIGE_ERROR_FORMAT,
               NEEDLES("meta.safetensors", "__metadata__", "'k'"));
  check_header(f, "meta2.safetensors", "{\"__metadata__\":[]}", 0, SIGE_ERROR_FORMAT,
               NEEDLES("meta2.safetensors", "__metadata__"));
}

/* The header parser (core/src/weights/safetensors_header.c): JSON's
 * whitespace everywhere, every escape (\u00e9 and a surrogate pair become
 * UTF-8), raw UTF-8, an empty shape, members the reader ignores, and the
 * format's padding spaces after the object. */
static void test_header_valid(void **state) {
  const fixture *f = *state;
  const char *header =
      " \t\r\n{ \"__metadata__\" :\n{ \"caf\\u00e9\" : \"\\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\","
      "\"raw\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\" } ,\r\n"
      "\"w\\u002e1\" : {\t\"dtype\" : \"F32\" , \"shape\" : [ ] , \"data_offsets\" : [ 0 , 4 ] ,"
      " \"extra\" : [1, -2.5e3, \"s\", true, false, null], \"more\": {\"a\": 1, \"b\": null},"
      " \"n\": -0.5 } ,"
      "\"\xc3\xa9\":{\"dtype\":\"U8\",\"shape\":[2,1],\"data_offsets\":[4,6]}}        ";
  guint8 data[6] = {0, 0, 0x80, 0x3f, 7, 9};
  g_autofree char *path = write_raw(f, "valid.safetensors", header, 0, data, 6);
  g_autoptr(GError) err = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(path, &err);
  if (!w) fail_msg("%s", err->message);
  assert_string_equal(sige_weights_metadata(w, "caf\xc3\xa9"),
                      "\xf0\x9f\x98\x80 \"q\" \\ / \b\f\n\r\t");
  assert_string_equal(sige_weights_metadata(w, "raw"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  const sige_tensor *t = sige_weights_get(w, "w.1");
  assert_non_null(t);
  assert_int_equal(t->ndim, 1); /* a scalar is a 1-D tensor of one element */
  assert_int_equal(t->shape[0], 1);
  assert_true(t->data[0] == 1.0f);
  const sige_tensor *u = sige_weights_get(w, "\xc3\xa9");
  assert_non_null(u);
  assert_int_equal(u->shape[0], 2);
  assert_true(u->data[0] == 7.0f && u->data[1] == 9.0f);
}

/* Syntax errors: each names the file, the byte offset in the file (the
 * header starts at byte 8) and what was expected or found. */
static void test_header_syntax(void **state) {
  const fixture *f = *state;
  static const struct {
    const char *header, *needle, *at;
  } cases[] = {
      {"{\"a\" {}}", "expected ':' after the name 'a'", "at byte 13"},
      {"{} x", "expected only whitespace after the header's object, found 'x'", "at byte 11"},
      {"{}\x01", "found byte 0x01", "at byte 10"},
      {"{\"a\":{\"dtype\":\"F32\"", "expected ',' or '}' after the value of 'dtype', found the end",
       "at byte 27"},
      {"{\"__metadata__\":{},}", "expected a tensor name (a string), found '}'", "at byte 27"},
      {"{\"__metadata__\":{} \"b\":{}}",
       "expected ',' or '}' after a member of the header, found '\"'", "at byte 27"},
      {"{\"abc", "the string that starts here does not end", "at byte 9"},
      {"{\"a\\x\":{}}", "invalid escape 'x'", "at byte 11"},
      {"{\"a\\u12g4\":{}}", "\\u is not followed by four hex digits", "at byte 11"},
      {"{\"a\\ud800x\":{}}", "\\uD800 is a high surrogate not followed by a low one", "at byte 11"},
      {"{\"a\\ud800\\u0041\":{}}", "high surrogate not followed by a low one", "at byte 11"},
      {"{\"a\\udc00\":{}}", "\\uDC00 is a low surrogate", "at byte 11"},
      {"{\"a\\u0000\":{}}", "\\u0000 in a string", "at byte 11"},
      {"{\"a\x01\":{}}", "control character 0x01 in a string", "at byte 11"},
      {"{\"a\tb\":{}}", "control character 0x09 in a string", "at byte 11"},
      {"{\"a\xff\":{}}", "invalid UTF-8", "at byte 11"},
      {"{\"a\xc0\xaf\":{}}", "invalid UTF-8", "at byte 11"},         /* overlong '/' */
      {"{\"a\xed\xa0\x80\":{}}", "invalid UTF-8", "at byte 11"},     /* a surrogate */
      {"{\"a\xf4\x90\x80\x80\":{}}", "invalid UTF-8", "at byte 11"}, /* above U+10FFFF */
      {"{\"a\xe2\x82\":{}}", "invalid UTF-8", "at byte 11"},         /* cut short */
      {"{\"a\":{\"shape\":[+1]}}", "expected a value, found '+'", "at byte 23"},
      {"{\"a\":{\"shape\":[01]}}", "leading zero", "at byte 23"},
      {"{\"a\":{\"shape\":[1.]}}", "expected a digit after '.'", "at byte 25"},
      {"{\"a\":{\"shape\":[1e]}}", "expected a digit in the exponent", "at byte 25"},
      {"{\"a\":{\"shape\":[-]}}", "expected a digit in a number", "at byte 24"},
      {"{\"a\":{\"shape\":[tru]}}", "expected a value, found 't'", "at byte 23"},
      {"{\"a\":{\"shape\":[1 2]}}", "expected ',' or ']' after an element of 'shape', found '2'",
       "at byte 25"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *name = g_strdup_printf("syntax%zu.safetensors", i);
    check_header(f, name, cases[i].header, 0, SIGE_ERROR_FORMAT,
                 NEEDLES(name, cases[i].needle, cases[i].at));
  }
  check_header(f, "blank.safetensors", "   ", 0, SIGE_ERROR_FORMAT,
               NEEDLES("blank.safetensors", "not a JSON object", "found the end of the header"));
}

/* Values that must be non-negative integers: negatives (-0 too), fractions,
 * exponents, strings and values past 2^63-1 are refused, each saying why. */
static void test_header_integers(void **state) {
  const fixture *f = *state;
  static const struct {
    const char *shape, *offsets, *needle;
  } cases[] = {
      {"[-2]", "[0,8]", "shape entry 0 is not a non-negative integer (negative)"},
      {"[-0]", "[0,8]", "shape entry 0 is not a non-negative integer (negative)"},
      {"[2,1.5]", "[0,8]", "shape entry 1 is not a non-negative integer (not an integer"},
      {"[2e0]", "[0,8]", "shape entry 0 is not a non-negative integer (not an integer"},
      {"[\"2\"]", "[0,8]", "shape entry 0 is not a non-negative integer (not a number)"},
      {"[9223372036854775808]", "[0,8]", "shape entry 0 is not a non-negative integer (above"},
      {"[184467440737095516160]", "[0,8]", "(above 9223372036854775807)"},
      {"[2]", "[0,18446744073709551616]", "'data_offsets' are not non-negative integers "
                                          "(entry 1 is above 9223372036854775807)"},
      {"[2]", "[null,8]", "(entry 0 is not a number)"},
      {"[2]", "[0]", "'data_offsets' is not an array of two integers"},
      {"[2]", "{}", "'data_offsets' is not an array of two integers"},
      {"{\"a\":2}", "[0,8]", "missing or non-array 'shape'"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *name = g_strdup_printf("int%zu.safetensors", i);
    g_autofree char *header = g_strdup_printf(
        "{\"w\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":%s}}", cases[i].shape,
        cases[i].offsets);
    check_header(f, name, header, 8, SIGE_ERROR_FORMAT, NEEDLES(name, "'w'", cases[i].needle));
  }
  /* the largest integer taken: the shape is then too large for the data */
  check_header(f, "max.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807],\"data_offsets\":[0,8]}}",
               8, SIGE_ERROR_FORMAT, NEEDLES("max.safetensors", "'w'", "too large"));
  check_header(f, "dtype.safetensors",
               "{\"w\":{\"dtype\":[\"F32\"],\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               SIGE_ERROR_FORMAT, NEEDLES("dtype.safetensors", "'w'", "non-string 'dtype'"));
}

/* A repeated name in any object is refused, naming it (compared after
 * unescaping: "\u0061" is "a"). */
static void test_header_duplicates(void **state) {
  const fixture *f = *state;
  check_header(f, "dupesc.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, SIGE_ERROR_FORMAT,
               NEEDLES("dupesc.safetensors", "tensor 'a': name appears twice in the header",
                       "at byte 62"));
  check_header(f, "dupmeta.safetensors",
               "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, SIGE_ERROR_FORMAT,
               NEEDLES("dupmeta.safetensors", "__metadata__ key 'k' appears twice", "at byte 33"));
  check_header(f, "dupmeta2.safetensors", "{\"__metadata__\":{},\"__metadata__\":{}}", 0,
               SIGE_ERROR_FORMAT, NEEDLES("dupmeta2.safetensors", "'__metadata__'", "twice"));
  check_header(f, "dupflat.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],"
               "\"x\":{\"y\":1,\"y\":2}}}",
               4, SIGE_ERROR_FORMAT,
               NEEDLES("dupflat.safetensors", "tensor 'w'", "key 'y' appears twice in the value of 'x'"));
  check_header(f, "dupdtype.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"dtype\":\"F32\",\"data_offsets\":[0,4]}}",
               4, SIGE_ERROR_FORMAT,
               NEEDLES("dupdtype.safetensors", "tensor 'w'", "key 'dtype' appears twice"));
}

/* Objects and arrays deeper than the schema, and values of the wrong kind
 * where the schema wants an object or a string. */
static void test_header_schema(void **state) {
  const fixture *f = *state;
  check_header(f, "flat.safetensors", "{\"w\":{\"x\":{\"y\":[1]}}}", 0, SIGE_ERROR_FORMAT,
               NEEDLES("flat.safetensors", "deeper than 3 levels", "at byte 23"));
  check_header(f, "shape2.safetensors", "{\"w\":{\"shape\":[[1]]}}", 0, SIGE_ERROR_FORMAT,
               NEEDLES("shape2.safetensors", "deeper than 3 levels", "at byte 23"));
  check_header(f, "metaobj.safetensors", "{\"__metadata__\":{\"k\":{}}}", 0, SIGE_ERROR_FORMAT,
               NEEDLES("metaobj.safetensors", "__metadata__ entry 'k' is not a string"));
  check_header(f, "metastr.safetensors", "{\"__metadata__\":\"x\"}", 0, SIGE_ERROR_FORMAT,
               NEEDLES("metastr.safetensors", "__metadata__ is not an object"));
  check_header(f, "entrystr.safetensors", "{\"w\":\"x\"}", 0, SIGE_ERROR_FORMAT,
               NEEDLES("entrystr.safetensors", "tensor 'w'", "not a JSON object", "at byte 13"));
  check_header(f, "rootarr.safetensors", "[{}]", 0, SIGE_ERROR_FORMAT,
               NEEDLES("rootarr.safetensors", "header is not a JSON object", "at byte 8"));
}

/* Issue #20: ~75,000 nested brackets used to overflow the stack inside
 * json-glib.  The header parser follows the schema's three levels (root,
 * entry, shape) without recursion: a root member that is not an object is
 * refused where it starts, anything nested below an entry's arrays is
 * refused at its bracket.  Brackets inside strings do not count. */
static void test_deep_nesting(void **state) {
  const fixture *f = *state;
  const int depth = 75000;
  GString *h = g_string_new("{\"a\":");
  for (int i = 0; i < depth; i++) g_string_append_c(h, '[');
  for (int i = 0; i < depth; i++) g_string_append_c(h, ']');
  g_string_append_c(h, '}');
  check_header(f, "deep.safetensors", h->str, 0, SIGE_ERROR_FORMAT,
               NEEDLES("deep.safetensors", "'a'", "not a JSON object", "at byte 13"));
  /* the same inside an entry: the fourth bracket is one level too deep */
  g_string_assign(h, "{\"a\":{\"x\":");
  for (int i = 0; i < depth; i++) g_string_append_c(h, '[');
  for (int i = 0; i < depth; i++) g_string_append_c(h, ']');
  g_string_append(h, "}}");
  check_header(f, "deep1.safetensors", h->str, 0, SIGE_ERROR_FORMAT,
               NEEDLES("deep1.safetensors", "deeper than 3 levels", "at byte 19"));
  /* a string ending in an escaped backslash ends at its quote: the
   * brackets after it count */
  g_string_assign(h, "{\"k\\\\\":{\"x\":");
  for (int i = 0; i < 40; i++) g_string_append_c(h, '[');
  for (int i = 0; i < 40; i++) g_string_append_c(h, ']');
  g_string_append(h, "}}");
  check_header(f, "deep2.safetensors", h->str, 0, SIGE_ERROR_FORMAT,
               NEEDLES("deep2.safetensors", "deeper than 3 levels", "at byte 21"));
  g_string_free(h, TRUE);

  GString *ok = g_string_new("{\"__metadata__\":{\"note\":\"\\\"");
  for (int i = 0; i < 100; i++) g_string_append(ok, "[{");
  g_string_append(ok, "\"},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
  guint8 data[4] = {0};
  g_autofree char *path = write_raw(f, "brackets.safetensors", ok->str, 0, data, 4);
  g_string_free(ok, TRUE);
  g_autoptr(GError) err = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(path, &err);
  if (!w) fail_msg("%s", err->message);
  assert_non_null(strstr(sige_weights_metadata(w, "note"), "[{[{"));
}

/* Issue #20: a million empty tensors (a 56 MB header) took 2.3 GB and 40 s
 * in json-glib; the header parser counts entries as it goes, and the message
 * says so quickly.  200,000 is the bound: one more is refused, the bound
 * itself (a 12 MB header of empty tensors) still loads. */
static void empty_tensors(GString *h, int n) {
  g_string_assign(h, "{");
  for (int i = 0; i < n; i++)
    g_string_append_printf(h, "%s\"t%07d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                           i ? "," : "", i);
  g_string_append_c(h, '}');
}

static void test_tensor_count(void **state) {
  const fixture *f = *state;
  GString *h = g_string_new(NULL);
  empty_tensors(h, 200001);
  const gint64 t0 = g_get_monotonic_time();
  check_header(f, "many.safetensors", h->str, 0, SIGE_ERROR_FORMAT,
               NEEDLES("many.safetensors", "more than 200000 tensors"));
  /* generous: the refusal is one pass of the header parser over 15 MB, well under a
   * second even under ASan */
  assert_true(g_get_monotonic_time() - t0 < 5 * G_USEC_PER_SEC);
  empty_tensors(h, 200000);
  guint8 none = 0;
  g_autofree char *path = write_raw(f, "bound.safetensors", h->str, 0, &none, 0);
  g_string_free(h, TRUE);
  g_autoptr(GError) err = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(path, &err);
  if (!w) fail_msg("%s", err->message);
  guint n = 0;
  sige_weights_names(w, &n);
  assert_int_equal(n, 200000);
}

/* The fill API: shapes without converting, reads into a caller's buffer,
 * errors naming the file and the tensor. */
static void test_read_f32(void **state) {
  const fixture *f = *state;
  guint8 data[12];
  put16(data + 0, 0x3c00); /* F16 1 */
  put16(data + 2, 0xc000); /* F16 -2 */
  put32(data + 4, 0x40490fdb); /* F32 pi */
  put32(data + 8, 0xbf800000); /* F32 -1 */
  g_autofree char *path = write_raw(
      f, "fill.safetensors",
      "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,1],\"data_offsets\":[0,4]},"
      "\"s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, data, 12);
  g_autoptr(GError) err = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(path, &err);
  assert_non_null(w);
  int ndim = 0;
  int64_t shape[SIGE_MAX_DIMS];
  assert_true(sige_weights_shape(w, "h", &ndim, shape));
  assert_int_equal(ndim, 2);
  assert_int_equal(shape[0], 2);
  assert_int_equal(shape[1], 1);
  assert_false(sige_weights_shape(w, "nope", &ndim, shape));
  float out[2];
  assert_true(sige_weights_read_f32(w, "h", out, 2, &err));
  assert_true(out[0] == 1.0f && out[1] == -2.0f);
  assert_true(sige_weights_read_f32(w, "s", out, 2, &err));
  assert_true(out[0] == 3.14159274f && out[1] == -1.0f);
  assert_false(sige_weights_read_f32(w, "s", out, 1, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  assert_non_null(strstr(err->message, "fill.safetensors"));
  assert_non_null(strstr(err->message, "'s'"));
  g_clear_error(&err);
  assert_false(sige_weights_read_f32(w, "nope", out, 2, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_MISSING));
  g_clear_error(&err);
  const int64_t want[1] = {2};
  g_autoptr(sige_tensor) t = sige_weights_read_tensor(w, "s", 1, want, &err);
  assert_non_null(t);
  assert_true(t->data[1] == -1.0f);
  assert_null(sige_weights_read_tensor(w, "h", 1, want, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
}

/* NaN in the weights (F32, F16 and BF16 alike) is refused when a model reads
 * the tensor (sige_weights_read_tensor), naming the file, the tensor and the
 * element; a plain read (copies, conversions) keeps it; infinities and the
 * finite values around them read fine. */
static void test_nan(void **state) {
  const fixture *f = *state;
  guint8 data[22];
  put32(data + 0, 0x3f800000);  /* F32 1 */
  put32(data + 4, 0x7fc00000);  /* F32 NaN at element 1 */
  put16(data + 8, 0x3c00);      /* F16 1 */
  put16(data + 10, 0xfc00);     /* F16 -inf */
  put16(data + 12, 0xfe01);     /* F16 NaN at element 2 */
  put16(data + 14, 0x3f80);     /* BF16 1 */
  put16(data + 16, 0x7fc1);     /* BF16 NaN at element 1 */
  put32(data + 18, 0x7f800000); /* F32 +inf: kept */
  g_autofree char *path = write_raw(
      f, "nan.safetensors",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[8,14]},"
      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[14,18]},"
      "\"m\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[18,22]}}", 0, data, 22);
  g_autoptr(GError) err = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(path, &err);
  assert_non_null(w);
  float out[3];
  const struct { const char *name; size_t n; const char *at; } bad[] = {
      {"a", 2, "element 1"}, {"h", 3, "element 2"}, {"b", 2, "element 1"}};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    const int64_t shape[1] = {(int64_t)bad[i].n};
    assert_null(sige_weights_read_tensor(w, bad[i].name, 1, shape, &err));
    assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_FORMAT));
    g_autofree char *quoted = g_strdup_printf("'%s'", bad[i].name);
    assert_non_null(strstr(err->message, "nan.safetensors"));
    assert_non_null(strstr(err->message, quoted));
    assert_non_null(strstr(err->message, "NaN"));
    assert_non_null(strstr(err->message, bad[i].at));
    g_clear_error(&err);
    assert_true(sige_weights_read_f32(w, bad[i].name, out, bad[i].n, &err));
    assert_true(isnan(out[bad[i].n == 3 ? 2 : 1]));
  }
  const int64_t one[1] = {1};
  g_autoptr(sige_tensor) m = sige_weights_read_tensor(w, "m", 1, one, &err);
  assert_non_null(m);
  assert_true(isinf(m->data[0]));
}

/* A file cut short after it was indexed: reading the lost tensor is an IO
 * error naming it (the bytes are read with pread: no SIGBUS), the tensor
 * still in the file reads fine. */
static void test_truncated_after_open(void **state) {
  const fixture *f = *state;
  enum { N = 4096 };
  g_autofree float *data = g_new(float, 2 * N);
  for (int i = 0; i < 2 * N; i++) data[i] = (float)i;
  g_autofree char *header = g_strdup_printf(
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[0,%d]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%d,%d]}}",
      N, 4 * N, N, 4 * N, 8 * N);
  g_autofree char *path = write_raw(f, "cut.safetensors", header, 0, data, 8 * N);
  g_autoptr(GError) err = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(path, &err);
  assert_non_null(w);
  assert_int_equal(truncate(path, (off_t)(8 + strlen(header) + 4 * N + 100)), 0);
  g_autofree float *out = g_new(float, N);
  assert_true(sige_weights_read_f32(w, "a", out, N, &err));
  assert_true(out[N - 1] == (float)(N - 1));
  assert_false(sige_weights_read_f32(w, "b", out, N, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_IO));
  assert_non_null(strstr(err->message, "cut.safetensors"));
  assert_non_null(strstr(err->message, "'b'"));
  assert_non_null(strstr(err->message, "shorter"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_deep_nesting, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tensor_count, setup, teardown),
    cmocka_unit_test_setup_teardown(test_read_f32, setup, teardown),
    cmocka_unit_test_setup_teardown(test_truncated_after_open, setup, teardown),
    cmocka_unit_test_setup_teardown(test_decode_bf16, setup, teardown),
    cmocka_unit_test_setup_teardown(test_decode_integers, setup, teardown),
    cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_truncated_header, setup, teardown),
    cmocka_unit_test_setup_teardown(test_header_length_too_large, setup, teardown),
    cmocka_unit_test_setup_teardown(test_not_json, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unknown_dtype, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_shape, setup, teardown),
    cmocka_unit_test_setup_teardown(test_size_mismatch, setup, teardown),
    cmocka_unit_test_setup_teardown(test_offsets_out_of_range, setup, teardown),
    cmocka_unit_test_setup_teardown(test_overlap, setup, teardown),
    cmocka_unit_test_setup_teardown(test_hole, setup, teardown),
    cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_metadata, setup, teardown),
    cmocka_unit_test_setup_teardown(test_header_valid, setup, teardown),
    cmocka_unit_test_setup_teardown(test_header_syntax, setup, teardown),
    cmocka_unit_test_setup_teardown(test_header_integers, setup, teardown),
    cmocka_unit_test_setup_teardown(test_header_duplicates, setup, teardown),
    cmocka_unit_test_setup_teardown(test_header_schema, setup, teardown),
    cmocka_unit_test_setup_teardown(test_nan, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
