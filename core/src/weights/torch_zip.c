/* PyTorch's zip checkpoints (torch >= 1.6): <archive>/data.pkl holds the
 * pickle, <archive>/data/<key> the raw bytes of each storage, little-endian
 * unless <archive>/byteorder says otherwise. */
#include <glib/gstdio.h>
#include <string.h>
#include <zip.h>

#include "sige/error.h"
#include "torch_internal.h"

/* No single entry may be larger than this (the biggest published weights
 * are a few GiB; anything larger is a corrupt size field). */
#define MAX_ENTRY ((zip_uint64_t)16 << 30)

/* What one load may inflate in all: 64 times the file, and at least 256
 * MiB.  Real checkpoints are stored uncompressed or deflate to 80-95 % of
 * their size; a deflate bomb grows 1000-fold (1 MB -> 1.2 GB). */
#define BUDGET_FACTOR 64
#define BUDGET_MIN ((guint64)256 << 20)

typedef struct {
  zip_t *za;
  char *prefix;      /* "archive/" */
  guint64 budget;    /* bytes this load may still inflate */
  guint64 file_size;
} zip_impl;

/* Reads a whole entry, which must hold `expect` bytes (0: any number);
 * *found is FALSE (and no error) when it is absent. */
static guint8 *read_entry(zip_impl *z, const char *file, const char *name, guint64 expect,
                          zip_uint64_t *len, gboolean *found, GError **error) {
  zip_t *za = z->za;
  zip_stat_t st;
  zip_stat_init(&st);
  *found = FALSE;
  if (zip_stat(za, name, 0, &st) != 0) return NULL;
  *found = TRUE;
  /* The declared size is only a claim: bound it by what the compressed data
   * can hold (stored: equal; deflate expands at most ~1032:1) before
   * allocating, so that a forged size cannot make us reserve gigabytes. */
  const gboolean have_comp = (st.valid & ZIP_STAT_COMP_SIZE) && (st.valid & ZIP_STAT_COMP_METHOD);
  const gboolean sane =
      (st.valid & ZIP_STAT_SIZE) && st.size <= MAX_ENTRY && have_comp &&
      (st.comp_method == ZIP_CM_STORE ? st.size == st.comp_size
                                      : st.size <= st.comp_size * 1032 + 1024);
  if (!sane) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: zip entry '%s' declares %" G_GUINT64_FORMAT " bytes, which its %"
                G_GUINT64_FORMAT " compressed bytes cannot hold",
                file, name, (guint64)st.size, (guint64)st.comp_size);
    return NULL;
  }
  /* torch.save writes each storage's bytes exactly: anything else is not
   * a checkpoint, and a larger entry would be inflated for nothing */
  if (expect && st.size != expect) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: zip entry '%s' holds %" G_GUINT64_FORMAT " bytes but its storage declares %"
                G_GUINT64_FORMAT, file, name, (guint64)st.size, expect);
    return NULL;
  }
  if (st.size > z->budget) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: the zip entries inflate to more than %" G_GUINT64_FORMAT " MiB, the most "
                "a %" G_GUINT64_FORMAT " KiB checkpoint may hold (%dx its size, at least %"
                G_GUINT64_FORMAT " MiB): a zip bomb, or a checkpoint compressed unusually well",
                file, MAX(BUDGET_MIN, z->file_size * BUDGET_FACTOR) >> 20, z->file_size >> 10,
                BUDGET_FACTOR, BUDGET_MIN >> 20);
    return NULL;
  }
  z->budget -= st.size;
  guint8 *buf = g_try_malloc(st.size ? (gsize)st.size : 1);
  if (!buf) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM,
                "%s: zip entry '%s': cannot allocate %" G_GUINT64_FORMAT " bytes", file, name,
                (guint64)st.size);
    return NULL;
  }
  zip_file_t *zf = zip_fopen(za, name, 0);
  zip_uint64_t got = 0;
  zip_int64_t n = 0;
  while (zf && got < st.size) {
    n = zip_fread(zf, buf + got, st.size - got);
    if (n <= 0) break;
    got += (zip_uint64_t)n;
  }
  /* libzip verifies the CRC only when a read reaches the end of the entry:
   * one more read must return 0 (end) rather than an error */
  gboolean ok = zf && got == st.size;
  if (ok) {
    guint8 extra;
    n = zip_fread(zf, &extra, 1);
    ok = n == 0;
  }
  /* the reason is the entry's error (a CRC mismatch, a bad deflate stream),
   * not the archive's, which would still hold an older, unrelated one */
  g_autofree char *why =
      !zf ? g_strdup(zip_strerror(za))
      : n < 0 ? g_strdup(zip_file_strerror(zf))
      : n > 0 ? g_strdup("more data than its declared size")
              : g_strdup_printf("it ends after %" G_GUINT64_FORMAT " of its %" G_GUINT64_FORMAT
                                " declared bytes", (guint64)got, (guint64)st.size);
  if (zf && zip_fclose(zf) != 0) ok = FALSE;
  if (!ok) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: zip entry '%s' cannot be read in full (%s)",
                file, name, why);
    g_free(buf);
    return NULL;
  }
  *len = got;
  return buf;
}

static gboolean read_storage(sige_torch_loader *l, sige_pickle_storage *s, GError **error) {
  zip_impl *z = l->impl;
  g_autofree char *name = g_strdup_printf("%sdata/%s", z->prefix, s->key);
  zip_uint64_t len = 0;
  gboolean found;
  guint64 need;
  if (!g_uint64_checked_mul(&need, s->numel, sige_dtype_size(s->dtype))) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: storage '%s' claims %" G_GUINT64_FORMAT
                " elements", l->file, s->key, s->numel);
    return FALSE;
  }
  guint8 *buf = read_entry(z, l->file, name, need, &len, &found, error);
  if (!buf) {
    if (!found)
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: storage '%s' has no entry '%s'",
                  l->file, s->key, name);
    return FALSE;
  }
  g_autoptr(GBytes) bytes = g_bytes_new_take(buf, (gsize)len);
  if (need > len) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: storage '%s' claims %" G_GUINT64_FORMAT " %s elements but '%s' holds %" G_GUINT64_FORMAT
                " bytes", l->file, s->key, s->numel, sige_dtype_name(s->dtype), name, (guint64)len);
    return FALSE;
  }
  /* Inflated (or copied: libzip reads stored entries too) once and kept
   * until the index is freed: this is where the CRC is checked. */
  s->source = sige_weights_source_new_bytes(bytes);
  s->offset = 0;
  s->nbytes = len;
  return TRUE;
}

/* The one top-level folder holding data.pkl (its name is the file's stem at
 * save time, or "archive"). */
static char *find_prefix(zip_t *za) {
  zip_int64_t n = zip_get_num_entries(za, 0);
  char *prefix = NULL;
  for (zip_int64_t i = 0; i < n; i++) {
    const char *e = zip_get_name(za, (zip_uint64_t)i, 0);
    if (!e || !g_str_has_suffix(e, "/data.pkl")) continue;
    const char *slash = strchr(e, '/');
    if (slash != e + strlen(e) - strlen("/data.pkl")) continue;
    if (prefix) {
      g_free(prefix);
      return NULL; /* ambiguous */
    }
    prefix = g_strndup(e, (gsize)(slash - e + 1));
  }
  return prefix;
}

static sige_weights *load_opened(zip_impl *z, sige_torch_loader *l, const char *path,
                                 const char *file, GError **error) {
  if (!z->prefix) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: zip file without exactly one '<folder>/data.pkl': not a PyTorch checkpoint",
                file);
    return NULL;
  }
  g_autofree char *bo_name = g_strdup_printf("%sbyteorder", z->prefix);
  zip_uint64_t len = 0;
  gboolean found;
  g_autofree guint8 *bo = read_entry(z, file, bo_name, 0, &len, &found, error);
  if (found && !bo) return NULL;
  if (bo && !(len == 6 && memcmp(bo, "little", 6) == 0)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: '%s' is not \"little\": big-endian checkpoints are not supported", file,
                bo_name);
    return NULL;
  }
  g_autofree char *pkl_name = g_strdup_printf("%sdata.pkl", z->prefix);
  g_autofree guint8 *pkl = read_entry(z, file, pkl_name, 0, &len, &found, error);
  if (!pkl) {
    if (!found)
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: no entry '%s'", file, pkl_name);
    return NULL;
  }
  g_autoptr(sige_pv) root =
      sige_pickle_load(pkl, (gsize)len, NULL, file, sige_torch_persistent, l, error);
  return root ? sige_torch_to_weights(l, root, path, "pytorch-zip", error) : NULL;
}

sige_weights *sige_torch_load_zip(const char *path, const char *file, GError **error) {
  int zerr = 0;
  zip_t *za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
  if (!za) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, zerr);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: not a readable zip file: %s", file,
                zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return NULL;
  }
  GStatBuf st;
  const guint64 size = g_stat(path, &st) == 0 ? (guint64)st.st_size : 0;
  zip_impl z = {.za = za, .prefix = find_prefix(za), .file_size = size,
                .budget = MAX(BUDGET_MIN, size * BUDGET_FACTOR)};
  sige_torch_loader l;
  sige_torch_loader_init(&l, file);
  l.read = read_storage;
  l.impl = &z;
  sige_weights *w = load_opened(&z, &l, path, file, error);
  sige_torch_loader_clear(&l);
  g_free(z.prefix);
  zip_discard(za);
  return w;
}
