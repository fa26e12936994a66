#include "sige-session-table.h"

struct sige_session_table {
  GHashTable *by_id; /* id -> entry */
  size_t budget;
  guint32 next_id;
  guint64 clock; /* a counter, not time: ties are impossible */
};

static void entry_free(gpointer p) {
  sige_session_entry *e = p;
  if (e->payload_free && e->payload) e->payload_free(e->payload);
  g_free(e);
}

sige_session_table *sige_session_table_new(size_t budget_bytes) {
  sige_session_table *t = g_new0(sige_session_table, 1);
  t->by_id = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, entry_free);
  t->budget = budget_bytes;
  t->next_id = 1;
  return t;
}

void sige_session_table_free(sige_session_table *t) {
  if (!t) return;
  g_hash_table_destroy(t->by_id);
  g_free(t);
}

void sige_session_table_set_budget(sige_session_table *t, size_t budget_bytes) {
  t->budget = budget_bytes;
}

size_t sige_session_table_budget(const sige_session_table *t) { return t->budget; }

sige_session_entry *sige_session_table_find(sige_session_table *t, int image_id, int layer_id) {
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, t->by_id);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    sige_session_entry *e = v;
    if (e->image_id == image_id && e->layer_id == layer_id) return e;
  }
  return NULL;
}

sige_session_entry *sige_session_table_insert(sige_session_table *t, int image_id, int layer_id,
                                              int width, int height, int bpp, gpointer payload,
                                              size_t bytes, GDestroyNotify payload_free) {
  sige_session_entry *old = sige_session_table_find(t, image_id, layer_id);
  if (old) sige_session_table_remove(t, old->id);
  sige_session_entry *e = g_new0(sige_session_entry, 1);
  e->id = t->next_id++;
  e->image_id = image_id;
  e->layer_id = layer_id;
  e->width = width;
  e->height = height;
  e->bpp = bpp;
  e->payload = payload;
  e->bytes = bytes;
  e->payload_free = payload_free;
  e->output_layer_id = -1;
  e->last_used = ++t->clock;
  g_hash_table_insert(t->by_id, GUINT_TO_POINTER(e->id), e);
  return e;
}

sige_session_entry *sige_session_table_lookup(sige_session_table *t, guint32 id) {
  sige_session_entry *e = g_hash_table_lookup(t->by_id, GUINT_TO_POINTER(id));
  if (e) e->last_used = ++t->clock;
  return e;
}

void sige_session_table_set_bytes(sige_session_table *t, sige_session_entry *e, size_t bytes) {
  (void)t;
  e->bytes = bytes;
}

void sige_session_table_set_shared(sige_session_table *t, sige_session_entry *e,
                                   gconstpointer key, size_t bytes) {
  (void)t;
  e->shared = key;
  e->shared_bytes = key ? bytes : 0;
}

gboolean sige_session_table_remove(sige_session_table *t, guint32 id) {
  return g_hash_table_remove(t->by_id, GUINT_TO_POINTER(id));
}

static gboolean other_image(const sige_session_entry *e, gpointer data) {
  return e->image_id != GPOINTER_TO_INT(data);
}

guint sige_session_table_drop_image(sige_session_table *t, int image_id) {
  return sige_session_table_prune(t, other_image, GINT_TO_POINTER(image_id));
}

guint sige_session_table_prune(sige_session_table *t,
                               gboolean (*keep)(const sige_session_entry *e, gpointer data),
                               gpointer data) {
  guint n = 0;
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, t->by_id);
  while (g_hash_table_iter_next(&it, NULL, &v))
    if (!keep(v, data)) {
      g_hash_table_iter_remove(&it);
      n++;
    }
  return n;
}

size_t sige_session_table_bytes(const sige_session_table *t) {
  size_t total = 0;
  g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, t->by_id);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    const sige_session_entry *e = v;
    total += e->bytes;
    if (e->shared && g_hash_table_add(seen, (gpointer)e->shared)) total += e->shared_bytes;
  }
  return total;
}

guint sige_session_table_size(const sige_session_table *t) { return g_hash_table_size(t->by_id); }

guint sige_session_table_evict(sige_session_table *t, guint32 protect_id) {
  guint n = 0;
  /* A handful of sessions at most (each holds hundreds of MiB), so a linear
   * scan per eviction is cheaper than keeping a list in order. */
  while (sige_session_table_bytes(t) > t->budget) {
    sige_session_entry *oldest = NULL;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, t->by_id);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
      sige_session_entry *e = v;
      if (e->id != protect_id && (!oldest || e->last_used < oldest->last_used)) oldest = e;
    }
    if (!oldest) break;
    sige_session_table_remove(t, oldest->id);
    n++;
  }
  return n;
}
