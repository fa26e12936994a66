/* Private to the PyTorch checkpoint reader (torch_*.c). */
#pragma once
#include "pickle.h"
#include "weights_internal.h"

G_BEGIN_DECLS

typedef struct sige_torch_loader sige_torch_loader;
/* Reads the bytes of a storage met for the first time (zip files read them
 * on demand; legacy files later, after the pickle). */
typedef gboolean (*sige_torch_read_fn)(sige_torch_loader *l, sige_pickle_storage *s,
                                       GError **error);

struct sige_torch_loader {
  const char *file;       /* display name for errors */
  GHashTable *storages;   /* key -> sige_pickle_storage* (owned) */
  sige_torch_read_fn read; /* NULL: bytes attached later */
  gboolean legacy;        /* persistent ids carry a sixth item (view metadata) */
  void *impl;
};

void sige_torch_loader_init(sige_torch_loader *l, const char *file);
void sige_torch_loader_clear(sige_torch_loader *l);
/* The persistent-id resolver given to sige_pickle_load. */
sige_pv *sige_torch_persistent(const sige_pv *pid, void *user, GError **error);
/* Picks the state dict inside the checkpoint object and records its tensors
 * in an index (names with any "module." prefix removed). */
sige_weights *sige_torch_to_weights(sige_torch_loader *l, const sige_pv *root, const char *path,
                                    const char *format, GError **error);

sige_weights *sige_torch_load_zip(const char *path, const char *file, GError **error);
sige_weights *sige_torch_load_legacy(const char *path, const char *file, GError **error);

G_END_DECLS
