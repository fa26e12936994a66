#include "sige-model-cache.h"

#include <glib/gstdio.h>
#include <sys/stat.h>

#include "sige-app/model_spec.h"
#include "sige-i18n.h"

struct sige_model_ref {
  int refs;
  char *path;
  gint64 mtime;
  goffset size;
  sige_model *model;
};

static GHashTable *cache; /* path -> sige_model_ref (weak: removed at the last unref) */

static void file_stamp(const char *path, gint64 *mtime, goffset *size) {
  GStatBuf st;
  if (g_stat(path, &st) == 0) {
    *mtime = (gint64)st.st_mtime;
    *size = st.st_size;
  } else {
    *mtime = -1;
    *size = -1;
  }
}

sige_model_ref *sige_model_cache_get(const char *path, GError **error) {
  if (!cache) cache = g_hash_table_new(g_str_hash, g_str_equal);
  g_auto(sige_model_spec) spec = {0};
  if (!sige_model_spec_parse(path, &spec, error)) return NULL;
  gint64 mtime;
  goffset size;
  file_stamp(spec.path, &mtime, &size);
  sige_model_ref *r = g_hash_table_lookup(cache, path);
  if (r && r->mtime == mtime && r->size == size) return sige_model_ref_ref(r);
  if (r) g_hash_table_remove(cache, path); /* stale: sessions keep the old one alive */
  sige_model *m = sige_model_spec_load(&spec, error);
  if (!m) return NULL;
  r = g_new0(sige_model_ref, 1);
  r->refs = 1;
  r->path = g_strdup(path);
  r->mtime = mtime;
  r->size = size;
  r->model = m;
  g_hash_table_insert(cache, r->path, r);
  return r;
}

sige_model_ref *sige_model_ref_ref(sige_model_ref *r) {
  r->refs++;
  return r;
}

void sige_model_ref_unref(sige_model_ref *r) {
  if (!r || --r->refs > 0) return;
  if (cache && g_hash_table_lookup(cache, r->path) == r) g_hash_table_remove(cache, r->path);
  sige_model_free(r->model);
  g_free(r->path);
  g_free(r);
}

const sige_model *sige_model_ref_model(const sige_model_ref *r) { return r->model; }
const char *sige_model_ref_path(const sige_model_ref *r) { return r->path; }
size_t sige_model_ref_bytes(const sige_model_ref *r) { return r->size > 0 ? (size_t)r->size : 0; }

char *sige_model_describe(const sige_model *m) {
  int64_t s[4];
  sige_model_input_shape(m, s);
  const sige_spade_config *sc = sige_model_spade_config(m);
  if (sc)
    return g_strdup_printf(_("GauGAN (SPADE), %d x %d pixels, %d classes%s"), (int)s[3],
                           (int)s[2], sc->label_nc,
                           sc->contain_instance ? _(", instance edges") : "");
  if (sige_model_ddpm_config(m))
    return g_strdup_printf(_("DDPM UNet, %d x %d pixels"), (int)s[3], (int)s[2]);
  return g_strdup(sige_model_kind_name(sige_model_get_kind(m)));
}
