/* The --device option shared by the commands that run models. */
#pragma once
#include <glib.h>

#include "sige/device.h"

/* name: auto, cpu, cuda (or sim, for tests); NULL: the SIGE_DEVICE
 * environment variable, else auto. */
gboolean sige_cli_device(const char *name, sige_device *device, GError **error);

#define SIGE_CLI_DEVICE_HELP "auto (default: CUDA when a device is present, else the CPU), cpu or cuda"
