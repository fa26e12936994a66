/* Storages and tensors of a PyTorch checkpoint: persistent ids, index
 * entries (strided views into the storages' bytes), and the choice of the
 * state dict. */
#include <string.h>

#include "sige/error.h"
#include "torch_internal.h"

static void storage_free(gpointer p) {
  sige_pickle_storage *s = p;
  sige_weights_source_unref(s->source);
  g_free(s->key);
  g_free(s);
}

void sige_torch_loader_init(sige_torch_loader *l, const char *file) {
  memset(l, 0, sizeof *l);
  l->file = file;
  l->storages = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, storage_free);
}

void sige_torch_loader_clear(sige_torch_loader *l) {
  if (l->storages) g_hash_table_unref(l->storages);
  l->storages = NULL;
}

static gboolean valid_key(const sige_pv *k) {
  if (k->kind != SIGE_PV_STR || k->s.len == 0 || k->s.len > 64) return FALSE;
  for (gsize i = 0; i < k->s.len; i++)
    if (!g_ascii_isalnum(k->s.data[i]) && k->s.data[i] != '_' && k->s.data[i] != '.') return FALSE;
  return TRUE;
}

/* ('storage', storage_type, key, location, numel[, view_metadata]) */
sige_pv *sige_torch_persistent(const sige_pv *pid, void *user, GError **error) {
  sige_torch_loader *l = user;
  const GPtrArray *a = pid->kind == SIGE_PV_TUPLE ? pid->items : NULL;
  guint want = l->legacy ? 6 : 5;
  if (!a || a->len != want) goto bad;
  const sige_pv *tag = a->pdata[0], *type = a->pdata[1], *key = a->pdata[2],
                *loc = a->pdata[3], *numel = a->pdata[4];
  if (tag->kind != SIGE_PV_STR || strcmp(tag->s.data, "storage") != 0 ||
      type->kind != SIGE_PV_GLOBAL || type->g.kind != SIGE_PG_STORAGE_TYPE || !valid_key(key) ||
      loc->kind != SIGE_PV_STR || numel->kind != SIGE_PV_INT || numel->i < 0)
    goto bad;
  if (l->legacy && ((const sige_pv *)a->pdata[5])->kind != SIGE_PV_NONE) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: storage '%s' is a view of another storage (legacy storage views are not "
                "supported)", l->file, key->s.data);
    return NULL;
  }
  sige_pickle_storage *s = g_hash_table_lookup(l->storages, key->s.data);
  if (s) {
    if (s->dtype != type->g.dtype) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                  "%s: storage '%s' is used as both %s and %s", l->file, key->s.data,
                  sige_dtype_name(s->dtype), sige_dtype_name(type->g.dtype));
      return NULL;
    }
  } else {
    s = g_new0(sige_pickle_storage, 1);
    s->key = g_strdup(key->s.data);
    s->dtype = type->g.dtype;
    s->numel = (guint64)numel->i;
    g_hash_table_insert(l->storages, s->key, s);
    if (l->read && !l->read(l, s, error)) return NULL;
  }
  sige_pv *v = sige_pv_new(SIGE_PV_STORAGE);
  v->storage = s;
  return v;
bad:
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
              "%s: persistent id is not ('storage', <torch storage type>, key, location, numel%s)",
              l->file, l->legacy ? ", None" : "");
  return NULL;
}

/* Checks the geometry against the storage (every index the strides can
 * reach must lie inside it) and records the view in the index. */
static gboolean add_view(sige_torch_loader *l, sige_weights *w, const char *name,
                         const sige_pv *v, GError **error) {
  const sige_pickle_storage *s = v->t.storage;
  if (v->t.ndim > SIGE_MAX_DIMS) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions (at most %d are supported)",
                l->file, name, v->t.ndim, SIGE_MAX_DIMS);
    return FALSE;
  }
  if (!s->source) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: tensor '%s': storage '%s' has no data in the file", l->file, name, s->key);
    return FALSE;
  }
  sige_weights_view view = {.dtype = s->dtype, .ndim = v->t.ndim ? v->t.ndim : 1};
  for (int i = 0; i < SIGE_MAX_DIMS; i++) view.shape[i] = 1;
  guint64 numel = 1, last = (guint64)v->t.offset;
  gboolean overflow = FALSE;
  for (int i = 0; i < v->t.ndim; i++) {
    view.shape[i] = v->t.shape[i];
    view.stride[i] = v->t.stride[i];
    if (!g_uint64_checked_mul(&numel, numel, (guint64)v->t.shape[i])) overflow = TRUE;
  }
  if (numel > 0) {
    for (int i = 0; i < v->t.ndim && !overflow; i++) {
      guint64 reach;
      if (!g_uint64_checked_mul(&reach, (guint64)(v->t.shape[i] - 1), (guint64)v->t.stride[i]) ||
          !g_uint64_checked_add(&last, last, reach))
        overflow = TRUE;
    }
  }
  if (overflow || (numel > 0 && last >= s->numel) || (numel == 0 && last > s->numel)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: tensor '%s' (offset %" G_GINT64_FORMAT ", %d dims) reaches past its storage "
                "'%s' of %" G_GUINT64_FORMAT " elements",
                l->file, name, v->t.offset, v->t.ndim, s->key, s->numel);
    return FALSE;
  }
  /* Every element then has a place of its own in the storage: what a file
   * makes us allocate is bounded by what it holds (broadcast views with
   * stride 0, which torch.save keeps as such, are not weights). */
  if (numel > s->numel) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                "%s: tensor '%s' has %" G_GUINT64_FORMAT " elements but its storage '%s' only %"
                G_GUINT64_FORMAT " (broadcast views are not supported)",
                l->file, name, numel, s->key, s->numel);
    return FALSE;
  }
  view.offset = s->offset + (guint64)v->t.offset * sige_dtype_size(s->dtype);
  return sige_weights_add(w, name, s->source, &view, error);
}

static gboolean has_tensors(const sige_pv *d) {
  for (guint i = 0; i + 1 < d->items->len; i += 2)
    if (((const sige_pv *)d->items->pdata[i + 1])->kind == SIGE_PV_TENSOR) return TRUE;
  return FALSE;
}

/* The weights inside a training checkpoint: EMA weights first (they are
 * what the published samples use), then the usual wrappers. */
static const sige_pv *select_state_dict(const sige_pv *v, GString *path, int depth) {
  static const char *const keys[] = {"ema", "model", "state_dict", "params_ema", "params"};
  if (depth > 4 || v->kind != SIGE_PV_DICT) return NULL;
  if (has_tensors(v)) return v;
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
    const sige_pv *c = sige_pv_dict_get(v, keys[i]);
    if (!c) continue;
    gsize len = path->len;
    g_string_append_printf(path, "%s%s", len ? "/" : "", keys[i]);
    const sige_pv *r = select_state_dict(c, path, depth + 1);
    if (r) return r;
    g_string_truncate(path, len);
  }
  return NULL;
}

sige_weights *sige_torch_to_weights(sige_torch_loader *l, const sige_pv *root, const char *path,
                                    const char *format, GError **error) {
  g_autoptr(GString) where = g_string_new(NULL);
  const sige_pv *sd = select_state_dict(root, where, 0);
  if (!sd) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: no state dict found (the checkpoint is a %s; expected a dict of tensors, "
                "possibly under 'ema', 'model', 'state_dict', 'params_ema' or 'params')",
                l->file, sige_pv_kind_name(root->kind));
    return NULL;
  }
  g_autoptr(sige_weights) w = sige_weights_new();
  sige_weights_set_path(w, path);
  sige_weights_set_metadata(w, "sige.source.format", format);
  sige_weights_set_metadata(w, "sige.source.dict", where->len ? where->str : "(top level)");
  for (guint i = 0; i + 1 < sd->items->len; i += 2) {
    const sige_pv *k = sd->items->pdata[i], *v = sd->items->pdata[i + 1];
    if (k->kind != SIGE_PV_STR || v->kind != SIGE_PV_TENSOR) continue;
    const char *name = g_str_has_prefix(k->s.data, "module.") ? k->s.data + 7 : k->s.data;
    if (!*name || strlen(k->s.data) != k->s.len) continue;
    if (!add_view(l, w, name, v, error)) return NULL;
  }
  return g_steal_pointer(&w);
}
