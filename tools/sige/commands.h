/* Subcommands of the sige tool. Each returns the process exit status. */
#pragma once
#include <glib.h>

int sige_cmd_check_reference(int argc, char **argv);
int sige_cmd_render(int argc, char **argv);
int sige_cmd_edit(int argc, char **argv);
int sige_cmd_bench(int argc, char **argv);
int sige_cmd_info(int argc, char **argv);
int sige_cmd_convert(int argc, char **argv);
/* Stable Diffusion (--model sd:...): sige edit (img2img) and sige inpaint. */
int sige_cmd_edit_sd(int argc, char **argv, gboolean inpaint);
/* Whether the arguments name an sd: model. */
gboolean sige_cli_model_is_sd(int argc, char **argv);

/* Prints "sige: <message>" to stderr and returns the exit status 1. */
int sige_cli_fail(GError *error);

/* --device: parsed by sige_device_from_option (sige-app/names.h). */
#define SIGE_CLI_DEVICE_HELP "auto (default: $SIGE_DEVICE, else CUDA when a device is present, else the CPU), cpu or cuda"
