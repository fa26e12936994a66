/* sige: the command-line front-end of Sparse Regenerate. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

int sige_cli_fail(GError *error) {
  fprintf(stderr, "sige: %s\n", error ? error->message : "unknown error");
  if (error) g_error_free(error);
  return 1;
}

static void usage(FILE *f) {
  fputs("Usage: sige COMMAND [OPTIONS]\n"
        "\n"
        "Commands:\n"
        "  render           render a label map with a GauGAN (SPADE) model\n"
        "  edit             regenerate only what changed between two label maps or pictures\n"
        "  inpaint          regenerate a masked area with a Stable Diffusion model (sd:)\n"
        "  check-reference  recompute a reference case and compare (see docs/)\n"
        "  bench            time dense vs sparse passes of full-size models\n"
        "  info             describe a weights file (safetensors or PyTorch checkpoint)\n"
        "  convert          convert a weights file to safetensors with canonical names\n"
        "\n"
        "Run 'sige COMMAND --help' for the options of a command.\n"
        "Environment: SIGE_NUM_THREADS sets the number of threads (default: all cores);\n"
        "SIGE_DEVICE the default of --device: auto (CUDA when a device is present), cpu or cuda.\n",
        f);
}

int main(int argc, char **argv) {
  /* Activations are large and short-lived: keep freed blocks in the heap
   * instead of returning them to the kernel, so that each new tensor does not
   * pay for page faults and zeroing (this halved a GauGAN pass here).  The
   * price is memory: freed activations stay between long-lived cache slots.
   * glibc's own variables override this: MALLOC_MMAP_THRESHOLD_=33554432
   * returns blocks of 32 MiB and more, less memory for more page faults
   * (measured in docs/PERFORMANCE.md, "Under 1 GB"). */
  if (!getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 1 << 30);
  if (!getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, 1 << 30);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "check-reference")) return sige_cmd_check_reference(argc - 1, argv + 1);
  if (!strcmp(cmd, "render")) return sige_cmd_render(argc - 1, argv + 1);
  if (!strcmp(cmd, "edit"))
    return sige_cli_model_is_sd(argc - 1, argv + 1) ? sige_cmd_edit_sd(argc - 1, argv + 1, FALSE)
                                                    : sige_cmd_edit(argc - 1, argv + 1);
  if (!strcmp(cmd, "inpaint")) return sige_cmd_edit_sd(argc - 1, argv + 1, TRUE);
  if (!strcmp(cmd, "bench")) return sige_cmd_bench(argc - 1, argv + 1);
  if (!strcmp(cmd, "info")) return sige_cmd_info(argc - 1, argv + 1);
  if (!strcmp(cmd, "convert")) return sige_cmd_convert(argc - 1, argv + 1);
  fprintf(stderr, "sige: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
