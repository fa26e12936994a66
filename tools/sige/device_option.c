#include "device_option.h"

gboolean sige_cli_device(const char *name, sige_device *device, GError **error) {
  if (!name) name = g_getenv("SIGE_DEVICE");
  if (!name || !*name) name = "auto";
  return sige_device_parse(name, device, error);
}
