/* A restricted unpickler for PyTorch checkpoints.
 *
 * It builds plain values (None, bools, ints, floats, strings, bytes, lists,
 * tuples, dicts) and the few torch objects a state dict needs: storages
 * (through persistent ids, resolved by the caller) and tensors (through
 * torch._utils._rebuild_tensor_v2 / _rebuild_parameter).  Nothing is ever
 * called: a GLOBAL outside a fixed allow-list is refused on sight, with the
 * global's name in the error, before any REDUCE could use it.
 *
 * Values never form cycles: a container becomes read-only once it is put into
 * another one, and nesting is capped, so freeing and walking them is bounded. */
#pragma once
#include <glib.h>
#include "weights_internal.h"

G_BEGIN_DECLS

#define SIGE_PICKLE_MAX_DIMS 8

/* A storage as the loader sees it: the caller owns it (and a reference to
 * where its bytes are); values only point to it.  `source` may stay NULL
 * until the loader finds the bytes (legacy files keep them after the
 * pickle). */
typedef struct {
  char *key;
  sige_dtype dtype;
  guint64 numel; /* elements of dtype */
  sige_weights_source *source;
  guint64 offset; /* of the storage's first byte in source */
  guint64 nbytes;
} sige_pickle_storage;

typedef enum {
  SIGE_PV_NONE, SIGE_PV_BOOL, SIGE_PV_INT, SIGE_PV_BIGINT, SIGE_PV_FLOAT, SIGE_PV_STR,
  SIGE_PV_BYTES, SIGE_PV_LIST, SIGE_PV_TUPLE, SIGE_PV_DICT, SIGE_PV_GLOBAL,
  SIGE_PV_STORAGE, SIGE_PV_TENSOR,
} sige_pv_kind;

/* The allowed globals. */
typedef enum {
  SIGE_PG_ORDERED_DICT, SIGE_PG_REBUILD_TENSOR_V2, SIGE_PG_REBUILD_PARAMETER,
  SIGE_PG_REBUILD_PARAMETER_WITH_STATE, SIGE_PG_STORAGE_TYPE, SIGE_PG_DTYPE,
  /* how protocol 2 spells bytes: _codecs.encode(str, 'latin1'), bytes() */
  SIGE_PG_CODECS_ENCODE, SIGE_PG_BYTES,
} sige_pg_kind;

typedef struct sige_pv sige_pv;
struct sige_pv {
  int refs;
  sige_pv_kind kind;
  gboolean frozen; /* inside a container: no more changes */
  int depth;       /* container nesting below this value */
  GHashTable *index; /* DICT: key bytes -> position in items */
  union {
    gboolean b;
    gint64 i;
    double f;
    struct { /* STR (UTF-8, NUL-terminated), BYTES, BIGINT (little-endian two's complement) */
      char *data;
      gsize len;
    } s;
    GPtrArray *items; /* LIST, TUPLE: sige_pv*; DICT: key, value, key, value, ... */
    struct {
      sige_pg_kind kind;
      sige_dtype dtype; /* STORAGE_TYPE, DTYPE */
      char *name;       /* module.name, for messages */
    } g;
    sige_pickle_storage *storage;
    struct {
      sige_pickle_storage *storage;
      gint64 offset;
      int ndim;
      gint64 shape[SIGE_PICKLE_MAX_DIMS];
      gint64 stride[SIGE_PICKLE_MAX_DIMS];
    } t;
  };
};

sige_pv *sige_pv_ref(sige_pv *v);
void sige_pv_unref(sige_pv *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_pv, sige_pv_unref)

const char *sige_pv_kind_name(sige_pv_kind k);
/* Dict lookup by string key; NULL when absent or d is not a dict. */
sige_pv *sige_pv_dict_get(const sige_pv *d, const char *key);

/* Resolves a persistent id (a tuple, typically ('storage', type, key, ...)).
 * Returns a new reference or NULL with error set. */
typedef sige_pv *(*sige_pickle_persistent_fn)(const sige_pv *pid, void *user, GError **error);

/* Unpickles one object from data[0..len).  *consumed (may be NULL) receives
 * the offset just past STOP.  `file` names the file in errors. */
sige_pv *sige_pickle_load(const guint8 *data, gsize len, gsize *consumed, const char *file,
                          sige_pickle_persistent_fn persistent, void *user, GError **error);

G_END_DECLS

/* ---- shared by pickle*.c only ------------------------------------------ */
G_BEGIN_DECLS
/* A fresh value (containers get their empty item array). */
sige_pv *sige_pv_new(sige_pv_kind kind);
/* Maps module.name to an allowed global; anything else is refused. */
sige_pv *sige_pickle_global(const char *module, const char *name, const char *file,
                            GError **error);
/* Applies an allowed callable to an argument tuple. */
sige_pv *sige_pickle_reduce(const sige_pv *callable, const sige_pv *args, const char *file,
                            GError **error);
/* Appends a key/value pair to a dict (replacing an equal key), taking both
 * references.  FALSE for keys that are neither strings nor ints. */
gboolean sige_pv_dict_set(sige_pv *d, sige_pv *key, sige_pv *value);
G_END_DECLS
