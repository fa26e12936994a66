/* The CLIP BPE tokenizer of Stable Diffusion 1.x (openai/CLIP
 * simple_tokenizer.py): text -> context_length token ids.
 *
 * The text is cleaned as the original does (HTML entities unescaped twice,
 * whitespace runs to one space, trimmed, lower-cased), split by
 * CLIP's pattern (contractions, letter runs, single digits, runs of other
 * characters), each piece's UTF-8 bytes mapped to printable characters
 * (bytes_to_unicode) and merged by the BPE ranks, "</w>" marking word ends.
 * The ids are <|startoftext|>, up to context_length - 2 content tokens
 * (truncated), <|endoftext|>, then <|endoftext|> as padding (SD's
 * padding="max_length").
 *
 * Where it departs from the original: ftfy.fix_text (mojibake repair) is
 * not done, and of html.unescape only numeric entities and &amp; &lt; &gt;
 * &quot; &apos; &nbsp; (with their semicolon) are known; prompts with other
 * named entities or broken encodings may tokenize differently. */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct sige_clip_tokenizer sige_clip_tokenizer;

/* openai/CLIP's bpe_simple_vocab_16e6.txt(.gz): gzip or plain text. */
sige_clip_tokenizer *sige_clip_tokenizer_new_bpe(const char *path, GError **error);
/* A diffusers / transformers tokenizer/ folder's vocab.json + merges.txt. */
sige_clip_tokenizer *sige_clip_tokenizer_new_vocab_merges(const char *vocab_json,
                                                          const char *merges_txt, GError **error);
/* The tokenizer of an SD checkpoint (sige/sd_checkpoint.h): a diffusers
 * folder's tokenizer/vocab.json + merges.txt, else openai's vocabulary at
 * fallback_bpe (a single file holds no tokenizer). */
typedef struct sige_sd_checkpoint sige_sd_checkpoint;
sige_clip_tokenizer *sige_clip_tokenizer_new_for_sd(const sige_sd_checkpoint *ck,
                                                    const char *fallback_bpe, GError **error);
void sige_clip_tokenizer_free(sige_clip_tokenizer *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_clip_tokenizer, sige_clip_tokenizer_free)

int32_t sige_clip_tokenizer_bos(const sige_clip_tokenizer *t); /* <|startoftext|> */
int32_t sige_clip_tokenizer_eos(const sige_clip_tokenizer *t); /* <|endoftext|> */

/* text (UTF-8) -> ids[context_length] (context_length >= 2). */
gboolean sige_clip_tokenize(const sige_clip_tokenizer *t, const char *text, int context_length,
                            int32_t *ids, GError **error);

/* The BPE pieces of text without start, end or padding ("a</w>", ...),
 * untruncated: a NULL-terminated array (g_strfreev). */
char **sige_clip_tokenizer_pieces(const sige_clip_tokenizer *t, const char *text,
                                  GError **error);

G_END_DECLS
