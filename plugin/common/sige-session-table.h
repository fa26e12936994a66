/* Editing sessions of the plug-in, one per (image, layer), with an LRU
 * eviction under a memory budget.
 *
 * The table knows nothing about GIMP or libsige sessions: an entry holds an
 * opaque payload, its size in bytes and a destroy function, so that a GIMP 3
 * front-end (or a unit test) can reuse it as is.  What several sessions
 * share (a model's weights) is counted once: an entry names it by a key
 * and its size, and the total adds each key's size once, so that evicting
 * the last session of a model counts the model's memory as freed.  Ids are never reused, so a
 * stale id kept in a layer parasite can never find somebody else's session. */
#pragma once
#include <glib.h>
#include <stddef.h>

G_BEGIN_DECLS

typedef struct sige_session_table sige_session_table;

typedef struct {
  guint32 id;           /* > 0, unique for the table's lifetime */
  int image_id;         /* the image and layer the session belongs to */
  int layer_id;
  int width, height;    /* of the layer at the snapshot */
  int bpp;              /* bytes per pixel of the layer at the snapshot */
  gpointer payload;     /* owned, freed with payload_free */
  size_t bytes;         /* what the payload holds; counts against the budget */
  int output_layer_id;  /* the front-end's output layer, or -1 */
  gconstpointer shared; /* what the payload shares with other entries (a model), or NULL */
  size_t shared_bytes;  /* its size, counted once however many entries share it */
  /* private */
  guint64 last_used;
  GDestroyNotify payload_free;
} sige_session_entry;

sige_session_table *sige_session_table_new(size_t budget_bytes);
void sige_session_table_free(sige_session_table *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_session_table, sige_session_table_free)

void sige_session_table_set_budget(sige_session_table *t, size_t budget_bytes);
size_t sige_session_table_budget(const sige_session_table *t);

/* Adds an entry (replacing any for the same image and layer) and marks it the
 * most recently used.  Returns the entry, owned by the table. */
sige_session_entry *sige_session_table_insert(sige_session_table *t, int image_id, int layer_id,
                                              int width, int height, int bpp, gpointer payload,
                                              size_t bytes, GDestroyNotify payload_free);

/* The entry with this id, or NULL; a hit becomes the most recently used. */
sige_session_entry *sige_session_table_lookup(sige_session_table *t, guint32 id);
/* The entry for this image and layer, or NULL (does not touch the LRU order). */
sige_session_entry *sige_session_table_find(sige_session_table *t, int image_id, int layer_id);

void sige_session_table_set_bytes(sige_session_table *t, sige_session_entry *e, size_t bytes);
/* The entry shares `key` (a loaded model, say), of `bytes` bytes, with the
 * entries that name the same key; NULL: nothing shared. */
void sige_session_table_set_shared(sige_session_table *t, sige_session_entry *e,
                                   gconstpointer key, size_t bytes);
gboolean sige_session_table_remove(sige_session_table *t, guint32 id);
/* Removes every session of an image (the image was closed).  Returns how many. */
guint sige_session_table_drop_image(sige_session_table *t, int image_id);
/* Removes entries for which keep() returns FALSE (e.g. images that are gone). */
guint sige_session_table_prune(sige_session_table *t,
                               gboolean (*keep)(const sige_session_entry *e, gpointer data),
                               gpointer data);

/* Evicts least recently used entries, never `protect_id`, until the total is
 * within the budget.  Returns how many were evicted. */
guint sige_session_table_evict(sige_session_table *t, guint32 protect_id);

/* The entries' own bytes plus each shared key's bytes once. */
size_t sige_session_table_bytes(const sige_session_table *t);
guint sige_session_table_size(const sige_session_table *t);

G_END_DECLS
