/* The CPU backend: host memory (64-byte aligned) and the CPU ops of this
 * folder.  It keeps no state, so host memory needs no backend object
 * (backend_impl.h). */
#include <string.h>

#include "cpu_internal.h"
#include "sige/error.h"

void *sige_cpu_alloc(sige_backend *be, size_t bytes, gboolean zero, GError **error) {
  (void)be;
  void *p = sige_aligned_alloc(bytes);
  if (!p) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "out of memory allocating a tensor of %zu MiB",
                bytes >> 20);
    return NULL;
  }
  if (zero) memset(p, 0, bytes);
  return p;
}

void sige_cpu_free(sige_backend *be, void *p) {
  (void)be;
  sige_aligned_free(p);
}

/* upload, download and copy are all host memcpy */
gboolean sige_cpu_copy(sige_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  if (bytes) memcpy(dst, src, bytes);
  return TRUE;
}

gboolean sige_cpu_upload(sige_backend *be, void *dst, const void *src, size_t bytes) {
  return sige_cpu_copy(be, dst, src, bytes);
}

gboolean sige_cpu_download(sige_backend *be, void *dst, const void *src, size_t bytes) {
  return sige_cpu_copy(be, dst, src, bytes);
}

gboolean sige_cpu_convert(sige_backend *be, void *dst, sige_storage ds, const void *src,
                          sige_storage ss, size_t n) {
  (void)be;
  if (ds == ss)
    memcpy(dst, src, n * (ds == SIGE_STORAGE_F16 ? sizeof(uint16_t) : sizeof(float)));
  else if (ds == SIGE_STORAGE_F32)
    sige_f16_to_f32_n(src, dst, n);
  else
    sige_f32_to_f16_n(src, dst, n);
  return TRUE;
}

gboolean sige_cpu_check(sige_backend *be, GError **error) {
  (void)be;
  (void)error;
  return TRUE;
}

const sige_backend_iface sige_cpu_iface = {
    .name = "cpu",
    .destroy = NULL,
    SIGE_BACKEND_ENTRIES(sige_cpu, sige_cpu)
};
