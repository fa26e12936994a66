/* PyTorch's legacy checkpoints (before 1.6, or _use_new_zipfile_serialization
 * = False): five things one after the other: a pickled magic number, the
 * protocol version, the system info, the object itself, the list of storage
 * keys; then, per key, an 8-byte element count and the raw elements. */
#include <string.h>

#include "sige/error.h"
#include "torch_internal.h"

#define LEGACY_PROTOCOL 1001

/* 0x1950a86a20f9469cfc6c as the little-endian bytes pickle writes (LONG1) */
static const guint8 magic_bytes[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static gboolean attach_storages(sige_torch_loader *l, const sige_pv *keys, const guint8 *base,
                                const guint8 *p, const guint8 *end, sige_weights_source *src,
                                GError **error) {
  if (keys->kind != SIGE_PV_LIST) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: the storage key list is a %s, not a list", l->file,
                sige_pv_kind_name(keys->kind));
    return FALSE;
  }
  for (guint i = 0; i < keys->items->len; i++) {
    const sige_pv *k = keys->items->pdata[i];
    sige_pickle_storage *s =
        k->kind == SIGE_PV_STR ? g_hash_table_lookup(l->storages, k->s.data) : NULL;
    if (!s || s->source) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s: storage key #%u %s", l->file, i,
                  !s ? "is not used by the pickle" : "appears twice");
      return FALSE;
    }
    if (end - p < 8) goto truncated;
    guint64 count = 0;
    for (int b = 7; b >= 0; b--) count = (count << 8) | p[b];
    p += 8;
    guint64 bytes;
    if (count != s->numel) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                  "%s: storage '%s' holds %" G_GUINT64_FORMAT " elements, the pickle said %" G_GUINT64_FORMAT,
                  l->file, s->key, count, s->numel);
      return FALSE;
    }
    if (!g_uint64_checked_mul(&bytes, count, sige_dtype_size(s->dtype)) ||
        bytes > (guint64)(end - p))
      goto truncated;
    s->source = sige_weights_source_ref(src);
    s->offset = (guint64)(p - base);
    s->nbytes = bytes;
    p += bytes;
    continue;
  truncated:
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: storage '%s' runs past the end of the file", l->file,
                k->s.data);
    return FALSE;
  }
  return TRUE;
}

static gboolean check_header(const char *file, const sige_pv *magic, const sige_pv *proto,
                             const sige_pv *sys, GError **error) {
  if (magic->kind != SIGE_PV_BIGINT || magic->s.len != sizeof magic_bytes ||
      memcmp(magic->s.data, magic_bytes, sizeof magic_bytes) != 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: a pickle, but not a PyTorch checkpoint (no magic number)", file);
    return FALSE;
  }
  if (proto->kind != SIGE_PV_INT || proto->i != LEGACY_PROTOCOL) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: legacy checkpoint protocol version is not %d", file, LEGACY_PROTOCOL);
    return FALSE;
  }
  const sige_pv *le = sige_pv_dict_get(sys, "little_endian");
  if (!le || le->kind != SIGE_PV_BOOL || !le->b) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: the system info does not say little_endian = True (big-endian checkpoints "
                "are not supported)", file);
    return FALSE;
  }
  return TRUE;
}

sige_weights *sige_torch_load_legacy(const char *path, const char *file, GError **error) {
  /* The pickle is parsed from a mapping; the index entries read the storages
   * with pread later, through their own descriptor (see weights_source.c),
   * and were checked against the file's size when it was mapped. */
  g_autoptr(sige_weights_source) src = sige_weights_source_open(path, error);
  if (!src) return NULL;
  g_autoptr(GError) merr = NULL;
  g_autoptr(GMappedFile) map = g_mapped_file_new(path, FALSE, &merr);
  if (!map) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot map: %s", file, merr->message);
    return NULL;
  }
  const guint8 *base = (const guint8 *)g_mapped_file_get_contents(map);
  const guint8 *p = base;
  const guint8 *end = p + g_mapped_file_get_length(map);
  if (sige_weights_source_size(src) < (guint64)(end - base)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: the file changed while it was opened",
                file);
    return NULL;
  }
  sige_torch_loader l;
  sige_torch_loader_init(&l, file);
  l.legacy = TRUE;
  sige_weights *w = NULL;
  sige_pv *parts[5] = {NULL};
  gsize used = 0;
  int n = 0;
  for (; n < 5; n++) {
    parts[n] = sige_pickle_load(p, (gsize)(end - p), &used, file, n == 3 ? sige_torch_persistent : NULL,
                                &l, error);
    if (!parts[n]) break;
    p += used;
    if (n == 2 && !check_header(file, parts[0], parts[1], parts[2], error)) break;
  }
  if (n == 5 && attach_storages(&l, parts[4], base, p, end, src, error))
    w = sige_torch_to_weights(&l, parts[3], path, "pytorch-legacy", error);
  for (int i = 0; i < 5; i++) sige_pv_unref(parts[i]);
  sige_torch_loader_clear(&l);
  return w;
}
