/* Values of the restricted unpickler: reference counting and dict access. */
#include <string.h>

#include "pickle.h"

sige_pv *sige_pv_new(sige_pv_kind kind) {
  sige_pv *v = g_new0(sige_pv, 1);
  v->refs = 1;
  v->kind = kind;
  if (kind == SIGE_PV_LIST || kind == SIGE_PV_TUPLE || kind == SIGE_PV_DICT)
    v->items = g_ptr_array_new_with_free_func((GDestroyNotify)sige_pv_unref);
  return v;
}

sige_pv *sige_pv_ref(sige_pv *v) {
  if (v) v->refs++;
  return v;
}

void sige_pv_unref(sige_pv *v) {
  if (!v || --v->refs > 0) return;
  switch (v->kind) {
    case SIGE_PV_STR:
    case SIGE_PV_BYTES:
    case SIGE_PV_BIGINT: g_free(v->s.data); break;
    case SIGE_PV_LIST:
    case SIGE_PV_TUPLE: g_ptr_array_unref(v->items); break;
    case SIGE_PV_DICT:
      g_ptr_array_unref(v->items);
      if (v->index) g_hash_table_unref(v->index);
      break;
    case SIGE_PV_GLOBAL: g_free(v->g.name); break;
    default: break;
  }
  g_free(v);
}

const char *sige_pv_kind_name(sige_pv_kind k) {
  static const char *const names[] = {
    [SIGE_PV_NONE] = "None",       [SIGE_PV_BOOL] = "bool",     [SIGE_PV_INT] = "int",
    [SIGE_PV_BIGINT] = "int",      [SIGE_PV_FLOAT] = "float",   [SIGE_PV_STR] = "str",
    [SIGE_PV_BYTES] = "bytes",     [SIGE_PV_LIST] = "list",     [SIGE_PV_TUPLE] = "tuple",
    [SIGE_PV_DICT] = "dict",       [SIGE_PV_GLOBAL] = "global", [SIGE_PV_STORAGE] = "storage",
    [SIGE_PV_TENSOR] = "tensor",
  };
  return (unsigned)k < G_N_ELEMENTS(names) ? names[k] : "?";
}

/* Dict keys are indexed by their kind and bytes, so that a file with many
 * keys costs linear time, not quadratic. */
static GBytes *key_bytes(const sige_pv *key) {
  GByteArray *a = g_byte_array_new();
  guint8 tag = (guint8)key->kind;
  g_byte_array_append(a, &tag, 1);
  if (key->kind == SIGE_PV_INT)
    g_byte_array_append(a, (const guint8 *)&key->i, sizeof key->i);
  else
    g_byte_array_append(a, (const guint8 *)key->s.data, (guint)key->s.len);
  return g_byte_array_free_to_bytes(a);
}

gboolean sige_pv_dict_set(sige_pv *d, sige_pv *key, sige_pv *value) {
  if (key->kind != SIGE_PV_STR && key->kind != SIGE_PV_INT) {
    sige_pv_unref(key);
    sige_pv_unref(value);
    return FALSE;
  }
  if (!d->index)
    d->index = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                     (GDestroyNotify)g_bytes_unref, NULL);
  GBytes *kb = key_bytes(key);
  gpointer pos;
  if (g_hash_table_lookup_extended(d->index, kb, NULL, &pos)) {
    guint i = GPOINTER_TO_UINT(pos);
    g_bytes_unref(kb);
    sige_pv_unref(key);
    sige_pv_unref(d->items->pdata[i + 1]);
    d->items->pdata[i + 1] = value;
    return TRUE;
  }
  g_hash_table_insert(d->index, kb, GUINT_TO_POINTER(d->items->len));
  g_ptr_array_add(d->items, key);
  g_ptr_array_add(d->items, value);
  return TRUE;
}

sige_pv *sige_pv_dict_get(const sige_pv *d, const char *key) {
  if (!d || d->kind != SIGE_PV_DICT) return NULL;
  gsize len = strlen(key);
  for (guint i = 0; i + 1 < d->items->len; i += 2) {
    const sige_pv *k = d->items->pdata[i];
    if (k->kind == SIGE_PV_STR && k->s.len == len && memcmp(k->s.data, key, len) == 0)
      return d->items->pdata[i + 1];
  }
  return NULL;
}
