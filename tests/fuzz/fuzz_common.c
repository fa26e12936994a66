/* Helpers of the libFuzzer targets: temp file, result oracle, GLib setup. */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sige/tensor.h"

static char *temp_path;

static void remove_temp(void) {
  if (temp_path) unlink(temp_path);
}

const char *fuzz_write_temp(const char *suffix, const uint8_t *data, size_t size) {
  if (!temp_path) {
    /* One file per process: libFuzzer's -jobs/-fork workers run side by side. */
    const char *dir = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir();
    temp_path = g_strdup_printf("%s/sige-fuzz-%ld%s", dir, (long)getpid(), suffix);
    atexit(remove_temp);
  }
  FILE *f = fopen(temp_path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    fprintf(stderr, "fuzz: cannot write %s\n", temp_path);
    abort();
  }
  return temp_path;
}

void fuzz_check_result(sige_weights *w, GError *error) {
  if ((w == NULL) == (error == NULL)) {
    fprintf(stderr, "fuzz: loader returned %s with %s error\n", w ? "a table" : "NULL",
            error ? "an" : "no");
    abort();
  }
  if (error) {
    if (!error->message || !*error->message) abort();
    g_error_free(error);
    return;
  }
  guint n = 0;
  const char *const *names = sige_weights_names(w, &n);
  volatile float sink = 0.0f;
  for (guint i = 0; i < n; i++) {
    const sige_tensor *t = sige_weights_get(w, names[i]);
    if (!t) abort(); /* a listed name must be present */
    size_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
    if (numel != t->numel) abort();
    for (size_t k = 0; k < t->numel; k++) sink += t->data[k];
    (void)sige_dtype_name(sige_weights_dtype(w, names[i]));
  }
  (void)sink;
  sige_weights_free(w);
}

void fuzz_init_glib(void) {
  g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
}
