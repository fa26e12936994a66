#include "cublas_loader.h"

#include <string.h>

#include "sige/error.h"

/* cublas_v2.h maps several names to their _v2 symbols: expand the macro
 * before making the symbol's string. */
#define SYMBOL_(f) #f
#define SYMBOL(f) SYMBOL_(f)

static gboolean resolve(sige_cublas *lib, const char **missing) {
  struct {
    const char *name;
    gpointer *slot;
  } fns[] = {
      {SYMBOL(cublasCreate), (gpointer *)&lib->create},
      {SYMBOL(cublasDestroy), (gpointer *)&lib->destroy},
      {SYMBOL(cublasSetStream), (gpointer *)&lib->set_stream},
      {SYMBOL(cublasGetStatusString), (gpointer *)&lib->status_string},
      {SYMBOL(cublasSgemm), (gpointer *)&lib->sgemm},
      {SYMBOL(cublasSgemmStridedBatched), (gpointer *)&lib->sgemm_strided_batched},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(fns); i++)
    if (!g_module_symbol(lib->module, fns[i].name, fns[i].slot) || !*fns[i].slot) {
      *missing = fns[i].name;
      return FALSE;
    }
  return TRUE;
}

gboolean sige_cublas_open(sige_cublas *lib, const char *const *paths, GError **error) {
  static const char *const built[] = {
#ifdef SIGE_CUBLAS_PATH
      SIGE_CUBLAS_PATH,
#endif
#ifdef SIGE_CUBLAS_SONAME
      SIGE_CUBLAS_SONAME,
#endif
      "libcublas.so", NULL};
  memset(lib, 0, sizeof *lib);
  g_autoptr(GString) why = g_string_new(NULL);
  for (const char *const *p = paths ? paths : built; *p; p++) {
    /* local: cuBLAS's symbols stay out of the process's global scope */
    lib->module = g_module_open(*p, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
    if (!lib->module) {
      g_string_append_printf(why, "%s%s", why->len ? "; " : "", g_module_error());
      continue;
    }
    const char *missing = NULL;
    if (resolve(lib, &missing)) return TRUE;
    g_string_append_printf(why, "%s%s has no %s", why->len ? "; " : "", *p, missing);
    sige_cublas_close(lib);
  }
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_DEVICE, "cannot open cuBLAS: %s",
              why->len ? why->str : "no path to try");
  return FALSE;
}

void sige_cublas_close(sige_cublas *lib) {
  if (lib->module) g_module_close(lib->module);
  memset(lib, 0, sizeof *lib);
}
