/* Backends as contexts hold them: device names, creation, and the CUDA
 * stand-ins of a build without the CUDA executor. */
#include "backend_impl.h"
#include "sige/error.h"

const char *sige_device_name(sige_device d) {
  switch (d) {
    case SIGE_DEVICE_CPU: return "cpu";
    case SIGE_DEVICE_CUDA: return "cuda";
    case SIGE_DEVICE_AUTO: return "auto";
    case SIGE_DEVICE_SIM: return "sim";
  }
  return "unknown";
}

gboolean sige_device_parse(const char *name, sige_device *d, GError **error) {
  static const sige_device all[] = {SIGE_DEVICE_AUTO, SIGE_DEVICE_CPU, SIGE_DEVICE_CUDA,
                                    SIGE_DEVICE_SIM};
  for (guint i = 0; name && i < G_N_ELEMENTS(all); i++)
    if (!g_ascii_strcasecmp(name, sige_device_name(all[i]))) {
      *d = all[i];
      return TRUE;
    }
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              "unknown device '%s': expected auto, cpu or cuda (or sim, for tests)",
              name ? name : "");
  return FALSE;
}

#ifndef SIGE_HAVE_CUDA
gboolean sige_cuda_built(void) { return FALSE; }

gboolean sige_cuda_probe(char **description, GError **error) {
  if (description) *description = NULL;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_DEVICE,
              "no CUDA device: this build of libsige has no CUDA backend (configure it with "
              "-Dcuda=enabled where nvcc and cuBLAS are installed)");
  return FALSE;
}

#endif


sige_backend *sige_backend_new(sige_device device, int n_threads, GError **error) {
  if (device != SIGE_DEVICE_SIM && device != SIGE_DEVICE_CUDA) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "device %s has no backend object",
                sige_device_name(device));
    return NULL;
  }
  return sige_device_backend_new(device, n_threads, error);
}

void sige_backend_free(sige_backend *be) {
  if (be && be->iface->destroy) be->iface->destroy(be);
}

sige_device sige_backend_device(const sige_backend *be) {
  return be ? be->device : SIGE_DEVICE_CPU;
}

const char *sige_backend_info(const sige_backend *be) { return be ? be->info : "cpu"; }
