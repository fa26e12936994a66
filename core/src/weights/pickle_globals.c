/* The allow-list of the restricted unpickler and the only "calls" it makes:
 * rebuilding an OrderedDict, a tensor or a parameter from plain values.
 * Any other global is refused where it appears, so a hostile checkpoint
 * (os.system, builtins.eval, ...) fails before anything could run. */
#include <string.h>

#include "pickle.h"
#include "sige/error.h"

static const struct {
  const char *name;
  sige_dtype dtype;
} storage_types[] = {
  {"FloatStorage", SIGE_DTYPE_F32},  {"HalfStorage", SIGE_DTYPE_F16},
  {"BFloat16Storage", SIGE_DTYPE_BF16}, {"DoubleStorage", SIGE_DTYPE_F64},
  {"LongStorage", SIGE_DTYPE_I64},   {"IntStorage", SIGE_DTYPE_I32},
  {"ShortStorage", SIGE_DTYPE_I16},  {"CharStorage", SIGE_DTYPE_I8},
  {"ByteStorage", SIGE_DTYPE_U8},    {"BoolStorage", SIGE_DTYPE_BOOL},
  /* torch >= 2 may name the untyped byte storage; its elements are bytes */
  {"UntypedStorage", SIGE_DTYPE_U8},
};

static const struct {
  const char *name;
  sige_dtype dtype;
} dtypes[] = {
  {"float32", SIGE_DTYPE_F32}, {"float", SIGE_DTYPE_F32},   {"float16", SIGE_DTYPE_F16},
  {"half", SIGE_DTYPE_F16},    {"bfloat16", SIGE_DTYPE_BF16}, {"float64", SIGE_DTYPE_F64},
  {"double", SIGE_DTYPE_F64},  {"int64", SIGE_DTYPE_I64},   {"long", SIGE_DTYPE_I64},
  {"int32", SIGE_DTYPE_I32},   {"int", SIGE_DTYPE_I32},     {"int16", SIGE_DTYPE_I16},
  {"short", SIGE_DTYPE_I16},   {"int8", SIGE_DTYPE_I8},     {"uint8", SIGE_DTYPE_U8},
  {"bool", SIGE_DTYPE_BOOL},
};

static sige_pv *make_global(sige_pg_kind kind, sige_dtype dtype, const char *module,
                            const char *name) {
  sige_pv *v = sige_pv_new(SIGE_PV_GLOBAL);
  v->g.kind = kind;
  v->g.dtype = dtype;
  v->g.name = g_strdup_printf("%s.%s", module, name);
  return v;
}

sige_pv *sige_pickle_global(const char *module, const char *name, const char *file,
                            GError **error) {
  if (!strcmp(module, "collections") && !strcmp(name, "OrderedDict"))
    return make_global(SIGE_PG_ORDERED_DICT, SIGE_DTYPE_F32, module, name);
  if (!strcmp(module, "_codecs") && !strcmp(name, "encode"))
    return make_global(SIGE_PG_CODECS_ENCODE, SIGE_DTYPE_U8, module, name);
  if ((!strcmp(module, "builtins") || !strcmp(module, "__builtin__")) && !strcmp(name, "bytes"))
    return make_global(SIGE_PG_BYTES, SIGE_DTYPE_U8, module, name);
  if (!strcmp(module, "torch._utils")) {
    if (!strcmp(name, "_rebuild_tensor_v2"))
      return make_global(SIGE_PG_REBUILD_TENSOR_V2, SIGE_DTYPE_F32, module, name);
    if (!strcmp(name, "_rebuild_parameter"))
      return make_global(SIGE_PG_REBUILD_PARAMETER, SIGE_DTYPE_F32, module, name);
    if (!strcmp(name, "_rebuild_parameter_with_state"))
      return make_global(SIGE_PG_REBUILD_PARAMETER_WITH_STATE, SIGE_DTYPE_F32, module, name);
  }
  if (!strcmp(module, "torch") || !strcmp(module, "torch.storage")) {
    for (guint i = 0; i < G_N_ELEMENTS(storage_types); i++)
      if (!strcmp(name, storage_types[i].name))
        return make_global(SIGE_PG_STORAGE_TYPE, storage_types[i].dtype, module, name);
  }
  if (!strcmp(module, "torch")) {
    for (guint i = 0; i < G_N_ELEMENTS(dtypes); i++)
      if (!strcmp(name, dtypes[i].name))
        return make_global(SIGE_PG_DTYPE, dtypes[i].dtype, module, name);
  }
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
              "%s: refused: the pickle references the global '%s.%s', which is not on the "
              "allow-list of a weights-only checkpoint (nothing was executed)",
              file, module, name);
  return NULL;
}

static gboolean int_tuple(const sige_pv *v, int *n, gint64 *out) {
  if (v->kind != SIGE_PV_TUPLE || v->items->len > SIGE_PICKLE_MAX_DIMS) return FALSE;
  *n = (int)v->items->len;
  for (int i = 0; i < *n; i++) {
    const sige_pv *e = v->items->pdata[i];
    if (e->kind != SIGE_PV_INT || e->i < 0) return FALSE;
    out[i] = e->i;
  }
  return TRUE;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]):
 * only the geometry is kept; it is checked against the storage when the
 * tensor is materialised (legacy storages are not read yet). */
static sige_pv *rebuild_tensor(const sige_pv *args, const char *file, GError **error) {
  const GPtrArray *a = args->items;
  if (a->len < 4 || a->len > 7) goto bad;
  const sige_pv *st = a->pdata[0], *off = a->pdata[1];
  if (st->kind != SIGE_PV_STORAGE || off->kind != SIGE_PV_INT || off->i < 0) goto bad;
  sige_pv *t = sige_pv_new(SIGE_PV_TENSOR);
  t->t.storage = st->storage;
  t->t.offset = off->i;
  int ns, nt;
  if (!int_tuple(a->pdata[2], &ns, t->t.shape) || !int_tuple(a->pdata[3], &nt, t->t.stride) ||
      ns != nt) {
    sige_pv_unref(t);
    goto bad;
  }
  t->t.ndim = ns;
  return t;
bad:
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
              "%s: torch._utils._rebuild_tensor_v2 with unexpected arguments (expected a "
              "storage, an offset and size/stride tuples of at most %d non-negative ints)",
              file, SIGE_PICKLE_MAX_DIMS);
  return NULL;
}

/* _codecs.encode(text, 'latin1'): each code point below 256 is one byte. */
static sige_pv *latin1_bytes(const sige_pv *text) {
  sige_pv *b = sige_pv_new(SIGE_PV_BYTES);
  b->s.data = g_malloc(text->s.len + 1);
  gsize n = 0;
  for (const char *p = text->s.data; p < text->s.data + text->s.len; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (c > 0xff) {
      sige_pv_unref(b);
      return NULL;
    }
    b->s.data[n++] = (char)c;
  }
  b->s.data[n] = 0;
  b->s.len = n;
  return b;
}

sige_pv *sige_pickle_reduce(const sige_pv *fn, const sige_pv *args, const char *file,
                            GError **error) {
  const GPtrArray *a = args->items;
  switch (fn->g.kind) {
    case SIGE_PG_ORDERED_DICT:
      /* OrderedDict() only: the items follow as SETITEMS */
      if (a->len == 0) return sige_pv_new(SIGE_PV_DICT);
      break;
    case SIGE_PG_REBUILD_TENSOR_V2: return rebuild_tensor(args, file, error);
    case SIGE_PG_REBUILD_PARAMETER:
    case SIGE_PG_REBUILD_PARAMETER_WITH_STATE:
      if (a->len >= 1 && ((const sige_pv *)a->pdata[0])->kind == SIGE_PV_TENSOR)
        return sige_pv_ref(a->pdata[0]);
      break;
    case SIGE_PG_CODECS_ENCODE: {
      const sige_pv *text = a->len == 2 ? a->pdata[0] : NULL, *enc = a->len == 2 ? a->pdata[1] : NULL;
      if (text && text->kind == SIGE_PV_STR && enc->kind == SIGE_PV_STR &&
          (!strcmp(enc->s.data, "latin1") || !strcmp(enc->s.data, "latin-1"))) {
        sige_pv *b = latin1_bytes(text);
        if (b) return b;
      }
      break;
    }
    case SIGE_PG_BYTES:
      if (a->len == 0) {
        sige_pv *b = sige_pv_new(SIGE_PV_BYTES);
        b->s.data = g_malloc0(1);
        return b;
      }
      break;
    default: break;
  }
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
              "%s: refused: REDUCE on '%s' with %u arguments is not allowed", file, fn->g.name,
              a->len);
  return NULL;
}
