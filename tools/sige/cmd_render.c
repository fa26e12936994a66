/* sige render: one dense pass of a GauGAN model on a label map. */
#include <stdio.h>

#include "cli_input.h"
#include "cli_output.h"
#include "commands.h"
#include "sige-app/image_files.h"
#include "sige-app/model_spec.h"
#include "sige-app/names.h"
#include "sige-app/png_io.h"
#include "sige/context.h"
#include "sige/error.h"

int sige_cmd_render(int argc, char **argv) {
  g_autofree char *model_path = NULL, *labels = NULL, *instance = NULL, *out_path = NULL,
                  *device_name = NULL;
  int threads = 0;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
       "weights (safetensors; default: the shipped street GauGAN)", "FILE"},
      {"labels", 'l', 0, G_OPTION_ARG_FILENAME, &labels, "label map PNG", "FILE"},
      {"instance", 'i', 0, G_OPTION_ARG_FILENAME, &instance, "instance-id PNG (optional)", "FILE"},
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "output PNG", "FILE"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "threads", "N"},
      {"device", 'd', 0, G_OPTION_ARG_STRING, &device_name, SIGE_CLI_DEVICE_HELP, "DEVICE"},
      {NULL}};
  g_autoptr(GOptionContext) oc = g_option_context_new("");
  g_option_context_set_summary(oc, "Render a label map with a GauGAN (SPADE) model.");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &error)) return sige_cli_fail(error);
  if (!labels || !out_path) {
    fprintf(stderr, "sige render: --labels and --out are required\n");
    return 2;
  }
  /* before the model loads and runs, not after */
  if (!sige_png_check_writable(out_path, &error)) return sige_cli_fail(error);
  sige_device device;
  if (!sige_device_from_option("--device", device_name, &device, &error)) return sige_cli_fail(error);
  if (!model_path && !(model_path = sige_cli_default_model(SIGE_INPUT_LABELS, &error)))
    return sige_cli_fail(error);
  /* made before the model loads: the loading is the window over which
   * sige_ctx_fit_threads sees what else keeps the CPUs busy */
  g_autoptr(sige_ctx) ctx = sige_ctx_new_device(threads, device, &error);
  if (!ctx) return sige_cli_fail(error);
  g_autoptr(sige_model) model = sige_model_load_spec(model_path, &error);
  if (!model) return sige_cli_fail(error);
  if (sige_model_input_kind(model, NULL) != SIGE_INPUT_LABELS)
    return sige_cli_fail(g_error_new(SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
                                     "label maps are inputs of SPADE (GauGAN) models; this model "
                                     "is a %s (use sige edit)",
                                     sige_model_kind_name(sige_model_get_kind(model))));
  g_autoptr(sige_tensor) sem = sige_cli_read_input(model, labels, instance, &error);
  if (!sem) return sige_cli_fail(error);
  g_autoptr(sige_tensor) img = NULL;
  gint64 t0 = g_get_monotonic_time();
  if (threads <= 0) sige_ctx_fit_threads(ctx); /* --threads N is kept as given */
  if (!sige_model_forward_dense(model, ctx, sem, 0, &img, &error)) return sige_cli_fail(error);
  double ms = (g_get_monotonic_time() - t0) / 1e3;
  if (!sige_cli_write_png(img, out_path, &error)) return sige_cli_fail(error);
  printf("rendered %s -> %s (%dx%d) in %.1f ms, %.2f GMACs\ndevice: %s\n", labels, out_path,
         SIGE_W(img), SIGE_H(img), ms, sige_ctx_macs(ctx) / 1e9, sige_ctx_device_info(ctx));
  return 0;
}
