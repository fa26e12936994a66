/* The undo log of in-place cache writes.  Each record keeps the bytes a
 * write is about to overwrite; rollback copies them back newest first, so
 * overlapping records end with the oldest contents.  Records copy raw
 * elements, so an F16 cache is saved as halves (half the bytes) and restored
 * bit for bit.  The records of a cache on a device stay on that device. */
#include <string.h>

#include "../backend/backend_impl.h"
#include "sige/error.h"
#include "sparse_internal.h"

typedef struct {
  char *base;        /* the tensor's data */
  sige_backend *be;  /* its backend (NULL: host memory) */
  size_t esize;      /* bytes per element (float or half) */
  int c, w;          /* channels, row length of the tensor */
  size_t plane;      /* h * w */
  int n;             /* tiles; a whole-tensor record is one tile */
  sige_tile *tiles;
  char *saved;       /* the backend's record of the tiles' elements */
  size_t elems;
} undo_record;

struct sige_undo_log {
  GArray *records; /* of undo_record */
  size_t bytes;
};

static size_t record_bytes(const undo_record *r) {
  return r->elems * r->esize + (size_t)r->n * sizeof(sige_tile) + sizeof(undo_record);
}

static void record_clear(undo_record *r) {
  g_free(r->tiles);
  sige_buffer_free(r->be, r->saved);
}

sige_undo_log *sige_undo_log_new(void) {
  sige_undo_log *log = g_new0(sige_undo_log, 1);
  log->records = g_array_new(FALSE, FALSE, sizeof(undo_record));
  return log;
}

void sige_undo_log_clear(sige_undo_log *log) {
  g_return_if_fail(log != NULL);
  for (guint i = 0; i < log->records->len; i++)
    record_clear(&g_array_index(log->records, undo_record, i));
  g_array_set_size(log->records, 0);
  log->bytes = 0;
}

void sige_undo_log_free(sige_undo_log *log) {
  if (!log) return;
  sige_undo_log_clear(log);
  g_array_free(log->records, TRUE);
  g_free(log);
}

size_t sige_undo_log_bytes(const sige_undo_log *log) {
  g_return_val_if_fail(log != NULL, 0);
  return log->bytes;
}

/* The record's tiles as (r0, c0, rows, cols), as the backends take them. */
static int *tile_table(const undo_record *r) {
  int *table = g_new(int, 4 * (size_t)(r->n ? r->n : 1));
  for (int k = 0; k < r->n; k++) {
    table[4 * k] = r->tiles[k].r0;
    table[4 * k + 1] = r->tiles[k].c0;
    table[4 * k + 2] = r->tiles[k].rows;
    table[4 * k + 3] = r->tiles[k].cols;
  }
  return table;
}

/* Writes a record's elements back where they were saved from. */
static void restore(const undo_record *r) {
  g_autofree int *table = tile_table(r);
  sige_backend_iface_of(r->be)->undo_unpack(r->be, r->base, (int)r->esize, r->c, r->w, r->plane,
                                            table, r->n, r->elems, r->saved);
}

/* Saves the record's tiles through its tensor's backend and appends it. */
static gboolean push(sige_undo_log *log, undo_record *r, GError **error) {
  g_autofree int *table = tile_table(r);
  r->saved = sige_backend_iface_of(r->be)->undo_pack(r->be, r->base, (int)r->esize, r->c, r->w,
                                                     r->plane, table, r->n, r->elems, error);
  if (!r->saved) {
    record_clear(r);
    return FALSE;
  }
  g_array_append_val(log->records, *r);
  log->bytes += record_bytes(r);
  return TRUE;
}

gboolean sige_undo_log_save_blocks(sige_undo_log *log, sige_tensor *dst,
                                   const sige_block_geometry *g, const sige_active_blocks *ab,
                                   GError **error) {
  g_return_val_if_fail(log && dst && g && ab, FALSE);
  g_return_val_if_fail(dst->ndim == 4 && SIGE_N(dst) == 1 && dst->layout == SIGE_LAYOUT_NCHW,
                       FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  undo_record r = {0};
  r.base = (char *)dst->data;
  r.be = dst->backend;
  r.esize = sige_tensor_elem_size(dst);
  r.c = SIGE_C(dst);
  r.w = SIGE_W(dst);
  r.plane = (size_t)SIGE_H(dst) * (size_t)r.w;
  r.tiles = ab->n ? g_try_new(sige_tile, ab->n) : NULL;
  if (ab->n && !r.tiles) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "out of memory in the undo log");
    return FALSE;
  }
  /* only tiles that scatter would actually write (clipped, non-empty) */
  for (int k = 0; k < ab->n; k++) {
    sige_tile t = sige_block_tile(g, ab->corners + 2 * k, SIGE_H(dst), r.w);
    if (t.rows == 0) continue;
    r.tiles[r.n++] = t;
    r.elems += (size_t)t.rows * (size_t)t.cols * (size_t)r.c;
  }
  return push(log, &r, error);
}

gboolean sige_undo_log_save_tensor(sige_undo_log *log, sige_tensor *t, GError **error) {
  g_return_val_if_fail(log && t, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  /* the whole buffer as one row of one tile, whatever the shape */
  undo_record r = {0};
  r.base = (char *)t->data;
  r.be = t->backend;
  r.esize = sige_tensor_elem_size(t);
  r.c = 1;
  r.w = 0;
  r.plane = 0;
  r.n = 1;
  r.tiles = g_try_new0(sige_tile, 1);
  if (!r.tiles) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "out of memory in the undo log");
    return FALSE;
  }
  if (t->numel > (size_t)G_MAXINT) {
    g_free(r.tiles);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "tensor of %zu elements is too large for the undo log", t->numel);
    return FALSE;
  }
  r.tiles[0] = (sige_tile){.r0 = 0, .c0 = 0, .rows = t->numel ? 1 : 0, .cols = (int)t->numel};
  r.elems = t->numel;
  return push(log, &r, error);
}

void sige_undo_log_rollback(sige_undo_log *log) {
  g_return_if_fail(log != NULL);
  for (guint i = log->records->len; i-- > 0;)
    restore(&g_array_index(log->records, undo_record, i));
  sige_undo_log_clear(log);
}
