/* libFuzzer target: a reference case's case.json, as `sige check-reference`
 * reads it (tools/harness/case_config.c): the size and nesting bounds
 * checked before json-glib parses (core/src/json_bounds.c), the parse, and
 * every reader of the sections (each model kind's config, prompts,
 * tolerances), whatever "model" says; then the parameter list each config
 * implies (the shapes a model of it would load), which is where the
 * numbers of a case.json become sizes.  Seeds: the published tiny cases.
 * Oracle: each call either succeeds or fails with a GError that has a
 * message; never a crash, a GLib critical (a type confusion in json-glib's
 * getters is one), UB, a leak or a large allocation. */
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "case_config.h"
#include "fuzz_common.h"
#include "sige/model.h"

static char *case_dir, *case_path;

static void remove_case(void) {
  if (case_path) g_unlink(case_path);
  if (case_dir) g_rmdir(case_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_init_glib();
  const char *base = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir();
  case_dir = g_strdup_printf("%s/sige-fuzz-case-%ld", base, (long)getpid());
  if (g_mkdir_with_parents(case_dir, 0700) != 0) abort();
  case_path = g_build_filename(case_dir, "case.json", NULL);
  atexit(remove_case);
  return 0;
}

static void check(gboolean ok, GError *error) {
  if (ok == (error != NULL)) abort();
  if (error) {
    if (!error->message || !*error->message) abort();
    g_error_free(error);
  }
}

/* The parameter list a config implies: shapes only, nothing is allocated
 * for the tensors themselves. */
static void params_of(sige_model_kind kind, const void *cfg) {
  GError *error = NULL;
  sige_param_list *l = sige_model_kind_params(kind, cfg, &error);
  check(l != NULL, error);
  if (l) {
    for (guint i = 0; i < sige_param_list_length(l); i++)
      if (!sige_param_list_get(l, i)) abort();
    sige_param_list_free(l);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *f = fopen(case_path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
  sige_case c;
  GError *error = NULL;
  const gboolean ok = sige_case_open(&c, case_dir, &error);
  check(ok, error);
  if (!ok) {
    sige_case_close(&c);
    return 0;
  }
  if (!c.kind) abort();
  sige_spade_config spade;
  sige_gancomp_config gancomp;
  sige_ddpm_config ddpm;
  sige_pd_config pd;
  sige_sd_unet_config sd;
  sige_clip_text_config clip;
  gboolean r;
  r = sige_case_spade_config(&c, &spade, &error), check(r, error), error = NULL;
  if (r) params_of(SIGE_MODEL_SPADE, &spade);
  r = sige_case_gancomp_config(&c, &gancomp, &error), check(r, error), error = NULL;
  if (r) params_of(SIGE_MODEL_GANCOMP_SPADE, &gancomp);
  r = sige_case_ddpm_config(&c, &ddpm, &error), check(r, error), error = NULL;
  if (r) params_of(SIGE_MODEL_DDPM_UNET, &ddpm);
  r = sige_case_pd_config(&c, &pd, &error), check(r, error), error = NULL;
  if (r) params_of(SIGE_MODEL_PD_UNET, &pd);
  r = sige_case_sd_unet_config(&c, &sd, &error), check(r, error), error = NULL;
  if (r) params_of(SIGE_MODEL_SD_UNET, &sd);
  r = sige_case_clip_text_config(&c, &clip, &error), check(r, error), error = NULL;
  if (r) params_of(SIGE_MODEL_CLIP_TEXT, &clip);
  char **prompts = sige_case_prompts(&c, &error);
  check(prompts != NULL, error), error = NULL;
  g_strfreev(prompts);
  static const char *const tolerances[] = {"sparse_vs_reference", "full_vs_dense", "dense"};
  for (size_t i = 0; i < G_N_ELEMENTS(tolerances); i++) {
    gboolean rel = FALSE;
    double v = 0;
    r = sige_case_tolerance(&c, tolerances[i], &rel, &v, &error);
    check(r, error), error = NULL;
    if (r && !(v > 0)) abort();
  }
  sige_case_close(&c);
  return 0;
}
