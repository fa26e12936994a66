/* The CLIP BPE tokenizer: the shipped vocabulary against ids of openai/CLIP
 * simple_tokenizer (the clip-text-tiny reference holds three prompts; the
 * other expectations follow from its rules), a hand-made vocabulary in both
 * file formats, and unreadable files. */
#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "sige-app/clip_tokenizer.h"

#define VOCAB SIGE_SOURCE_DIR "/data/clip/bpe_simple_vocab_16e6.txt.gz"

static sige_clip_tokenizer *shipped(void) {
  GError *error = NULL;
  sige_clip_tokenizer *t = sige_clip_tokenizer_new_bpe(VOCAB, &error);
  if (!t) fail_msg("%s", error->message);
  return t;
}

static void tokenize(const sige_clip_tokenizer *t, const char *text, int32_t ids[77]) {
  GError *error = NULL;
  if (!sige_clip_tokenize(t, text, 77, ids, &error)) fail_msg("%s", error->message);
}

static void test_special_and_empty(void **state) {
  (void)state;
  g_autoptr(sige_clip_tokenizer) t = shipped();
  assert_int_equal(sige_clip_tokenizer_bos(t), 49406);
  assert_int_equal(sige_clip_tokenizer_eos(t), 49407);
  int32_t ids[77];
  tokenize(t, "", ids);
  assert_int_equal(ids[0], 49406);
  for (int i = 1; i < 77; i++) assert_int_equal(ids[i], 49407);
  tokenize(t, "   \t\n ", ids); /* whitespace only cleans to nothing */
  assert_int_equal(ids[1], 49407);
}

/* The first prompt of the reference case, ids from openai/CLIP. */
static void test_known_prompt(void **state) {
  (void)state;
  g_autoptr(sige_clip_tokenizer) t = shipped();
  int32_t ids[77];
  tokenize(t, "a photograph of an astronaut riding a horse", ids);
  const int32_t want[] = {49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407};
  for (size_t i = 0; i < G_N_ELEMENTS(want); i++) assert_int_equal(ids[i], want[i]);
  /* upper case, extra spaces and an entity clean to the same text */
  int32_t again[77];
  tokenize(t, "  A   photograph of an ASTRONAUT riding&#32;a horse ", again);
  assert_memory_equal(ids, again, sizeof ids);
}

/* "!!" is one run of punctuation; "," a word of its own; digits one by one. */
static void test_punctuation_digits(void **state) {
  (void)state;
  g_autoptr(sige_clip_tokenizer) t = shipped();
  g_auto(GStrv) p = sige_clip_tokenizer_pieces(t, "snow, oil!! 42 it's", NULL);
  assert_non_null(p);
  const char *want[] = {"snow</w>", ",</w>", "oil</w>", "!!</w>", "4</w>", "2</w>", "it</w>",
                        "'s</w>"};
  assert_int_equal(g_strv_length(p), G_N_ELEMENTS(want));
  for (size_t i = 0; i < G_N_ELEMENTS(want); i++) assert_string_equal(p[i], want[i]);
}

/* Non-ASCII letters go through their UTF-8 bytes (bytes_to_unicode): every
 * piece maps back to a vocabulary id, none is lost. */
static void test_unicode_bytes(void **state) {
  (void)state;
  g_autoptr(sige_clip_tokenizer) t = shipped();
  g_auto(GStrv) p = sige_clip_tokenizer_pieces(t, "caf\xc3\xa9 \xe2\x9c\xa8", NULL);
  assert_non_null(p);
  g_autofree char *joined = g_strjoinv("", p);
  /* é = c3 a9 -> U+00C3 U+00A9 (printable bytes stand for themselves);
   * the sparkle = e2 9c a8 -> U+00E2 U+013E U+00A8 (0x9c is the 63rd
   * unprintable byte: 256 + 62) */
  assert_non_null(strstr(joined, "caf\xc3\x83\xc2\xa9</w>"));
  assert_non_null(strstr(joined, "\xc3\xa2\xc4\xbe\xc2\xa8</w>"));
  int32_t ids[77];
  tokenize(t, "caf\xc3\xa9 \xe2\x9c\xa8", ids);
  assert_int_equal(ids[0], 49406);
  int n = 1;
  while (ids[n] != 49407) assert_true(ids[n++] < 49406);
  assert_int_equal(n - 1, (int)g_strv_length(p));
  GError *error = NULL;
  assert_false(sige_clip_tokenize(t, "bad \xff utf8", 77, ids, &error));
  assert_non_null(strstr(error->message, "UTF-8"));
  g_clear_error(&error);
}

/* 100 words: content truncated to 75, then the end token at 76. */
static void test_truncation(void **state) {
  (void)state;
  g_autoptr(sige_clip_tokenizer) t = shipped();
  GString *s = g_string_new(NULL);
  for (int i = 0; i < 100; i++) g_string_append(s, "horse ");
  int32_t ids[77];
  tokenize(t, s->str, ids);
  g_string_free(s, TRUE);
  assert_int_equal(ids[0], 49406);
  for (int i = 1; i <= 75; i++) assert_int_equal(ids[i], 4558);
  assert_int_equal(ids[76], 49407);
}

static char *write_tmp(const char *dir, const char *name, const char *text) {
  char *path = g_build_filename(dir, name, NULL);
  assert_true(g_file_set_contents(path, text, -1, NULL));
  return path;
}

/* A hand-made vocabulary: bytes, bytes</w>, then "a b" merges in rank
 * order; the same tokens from vocab.json + merges.txt. */
static void test_hand_made_files(void **state) {
  (void)state;
  g_autofree char *dir = g_dir_make_tmp("sige-clip-XXXXXX", NULL);
  g_autofree char *bpe = write_tmp(dir, "v.txt", "x#version: 0.2\nh o\nho r\nhor se</w>\ns e</w>\n");
  GError *error = NULL;
  g_autoptr(sige_clip_tokenizer) t = sige_clip_tokenizer_new_bpe(bpe, &error);
  if (!t) fail_msg("%s", error->message);
  /* 512 byte pieces, 4 merges, then the two special tokens */
  assert_int_equal(sige_clip_tokenizer_bos(t), 516);
  g_auto(GStrv) p = sige_clip_tokenizer_pieces(t, "horse horses", NULL);
  /* "horses": h o r s e s</w> -> ho r ... -> hor s e s</w>; "se</w>" needs e</w>
   * which is not formed, so s e s</w> stay */
  assert_string_equal(p[0], "horse</w>");
  assert_string_equal(p[1], "hor");
  int32_t ids[8];
  assert_true(sige_clip_tokenize(t, "horse", 8, ids, &error));
  assert_int_equal(ids[0], 516);
  assert_int_equal(ids[1], 514); /* "horse</w>": the 3rd merge, after "s e</w>" formed se</w> */
  assert_int_equal(ids[2], 517);

  /* the same vocabulary as vocab.json + merges.txt */
  g_autoptr(GString) json = g_string_new("{\"horse</w>\": 3, \"hor\": 2, \"ho\": 1, \"r\": 4, "
                                         "\"<|startoftext|>\": 7, \"<|endoftext|>\": 8, "
                                         "\"s\": 5, \"e\": 6, \"s</w>\": 9}");
  g_autofree char *vj = write_tmp(dir, "vocab.json", json->str);
  g_autofree char *mt = write_tmp(dir, "merges.txt", "#version: 0.2\nh o\nho r\nhor se</w>\ns e</w>\n");
  g_autoptr(sige_clip_tokenizer) t2 = sige_clip_tokenizer_new_vocab_merges(vj, mt, &error);
  if (!t2) fail_msg("%s", error->message);
  assert_true(sige_clip_tokenize(t2, "horse horses", 8, ids, &error));
  const int32_t want[] = {7, 3, 2, 5, 6, 9, 8, 8};
  assert_memory_equal(ids, want, sizeof want);
  g_unlink(bpe);
  g_unlink(vj);
  g_unlink(mt);
  g_rmdir(dir);
}

/* Missing, corrupt and malformed files: a GError naming the file. */
static void test_bad_files(void **state) {
  (void)state;
  g_autofree char *dir = g_dir_make_tmp("sige-clip-XXXXXX", NULL);
  g_autofree char *missing = g_build_filename(dir, "none.txt.gz", NULL);
  /* gzip magic, then garbage */
  g_autofree char *corrupt = g_build_filename(dir, "corrupt.txt.gz", NULL);
  assert_true(g_file_set_contents(corrupt, "\x1f\x8b\x08\x00garbage-garbage", 19, NULL));
  g_autofree char *bad_merge = write_tmp(dir, "bad.txt", "#version: 0.2\nh o\nthree parts here\n");
  g_autofree char *no_header = write_tmp(dir, "nohead.txt", "h o\n");
  const char *paths[] = {missing, corrupt, bad_merge, no_header};
  for (size_t i = 0; i < G_N_ELEMENTS(paths); i++) {
    GError *error = NULL;
    sige_clip_tokenizer *t = sige_clip_tokenizer_new_bpe(paths[i], &error);
    assert_null(t);
    assert_non_null(error);
    if (!strstr(error->message, paths[i])) fail_msg("message does not name the file: %s", error->message);
    g_clear_error(&error);
  }
  GError *error = NULL;
  g_autofree char *vj = write_tmp(dir, "vocab.json", "{\"a\": \"x\"}");
  assert_null(sige_clip_tokenizer_new_vocab_merges(vj, bad_merge, &error));
  assert_non_null(strstr(error->message, vj));
  g_clear_error(&error);
  const char *all[] = {corrupt, bad_merge, no_header, vj};
  for (size_t i = 0; i < G_N_ELEMENTS(all); i++) g_unlink(all[i]);
  g_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_special_and_empty), cmocka_unit_test(test_known_prompt),
      cmocka_unit_test(test_punctuation_digits), cmocka_unit_test(test_unicode_bytes),
      cmocka_unit_test(test_truncation),         cmocka_unit_test(test_hand_made_files),
      cmocka_unit_test(test_bad_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
