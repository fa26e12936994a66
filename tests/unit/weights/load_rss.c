/* Peak memory of loading a model: `load_rss FILE` loads it with
 * sige_model_load and prints the resident set before, after, and at its
 * peak (VmHWM); `load_rss --tensor-bytes FILE` prints the float32 bytes of
 * the tensors the model keeps (every tensor of the file but the
 * spectral-norm vectors weight_u / weight_v, which are folded into the
 * weight).  Built, not run by the suite: docs/PERFORMANCE.md ("Loading
 * weights: peak memory") runs it under /usr/bin/time -v.  Uses only the
 * API that existed before the weights index, so the same file measures
 * both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sige/model.h"
#include "sige/sd_checkpoint.h"
#include "sige/weights.h"

/* "VmRSS" or "VmHWM" from /proc/self/status, in KiB (-1 when absent). */
static long status_kib(const char *key) {
  g_autofree char *text = NULL;
  if (!g_file_get_contents("/proc/self/status", &text, NULL, NULL)) return -1;
  const char *p = strstr(text, key);
  return p ? atol(p + strlen(key) + 1) : -1;
}

static int tensor_bytes(const char *path) {
  g_autoptr(GError) error = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_any(path, &error);
  if (!w) {
    fprintf(stderr, "load_rss: %s\n", error->message);
    return 1;
  }
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  guint64 bytes = 0;
  for (guint i = 0; i < n; i++) {
    if (g_str_has_suffix(names[i], ".weight_u") || g_str_has_suffix(names[i], ".weight_v"))
      continue;
    bytes += (guint64)sige_weights_get(w, names[i])->numel * sizeof(float);
  }
  printf("tensor_bytes %" G_GUINT64_FORMAT " (%.1f MiB)\n", bytes, bytes / 1048576.0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--tensor-bytes")) return tensor_bytes(argv[2]);
  /* --sd-part unet|vae|text-encoder: one part of an SD checkpoint */
  const char *part_name = NULL;
  if (argc == 4 && !strcmp(argv[1], "--sd-part")) {
    part_name = argv[2];
    argv[1] = argv[3];
    argc = 2;
  }
  if (argc != 2) {
    fprintf(stderr, "usage: load_rss [--tensor-bytes | --sd-part PART] FILE\n");
    return 2;
  }
  long before = status_kib("VmRSS");
  g_autoptr(GError) error = NULL;
  sige_sd_part part = SIGE_SD_PART_UNET;
  if (part_name && !sige_sd_part_from_name(part_name, &part)) {
    fprintf(stderr, "load_rss: unknown SD part '%s'\n", part_name);
    return 2;
  }
  g_autoptr(sige_model) m = part_name ? sige_sd_load_model(argv[1], part, 0, &error)
                                      : sige_model_load(argv[1], &error);
  if (!m) {
    fprintf(stderr, "load_rss: %s\n", error->message);
    return 1;
  }
  printf("rss_before_kib %ld\nrss_after_kib %ld\npeak_kib %ld\nweight_bytes %zu\nkeep_half %d\n",
         before, status_kib("VmRSS"), status_kib("VmHWM"), sige_model_weight_bytes(m),
         sige_weights_keep_half());
  return 0;
}
