/* The settings keyfile that outlives a GIMP session: a round trip keeps
 * every value, a missing file is a silent first start, and a corrupt file
 * or a bad value gives the defaults for what could not be read plus a
 * warning naming the file and the key (never a crash, never a failure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <glib/gstdio.h>

#include "sige-settings.h"

static gchar *tmp_path(void) {
  static gchar *dir;
  if (!dir) dir = g_dir_make_tmp("sige-settings-XXXXXX", NULL);
  assert_non_null(dir);
  return g_build_filename(dir, SIGE_SETTINGS_FILE, NULL);
}

static void write_file(const gchar *path, const gchar *text, gssize n) {
  assert_true(g_file_set_contents(path, text, n, NULL));
}

static void test_round_trip(void **state) {
  (void)state;
  g_autofree gchar *path = tmp_path();
  SigeSettings a, b;
  sige_settings_defaults(&a);
  g_strlcpy(a.model, "/models/kirche \xc3\xa4/weights.safetensors", SIGE_PATH_MAX);
  a.steps = 25;
  a.strength = 0.4;
  a.seed = 1234567;
  a.sampler = SIGE_SAMPLER_CHOICE_DDIM;
  a.threshold = 0.35;
  a.precision = SIGE_PRECISION_F16;
  a.device = SIGE_DEVICE_CPU;
  a.threads = 3;
  a.budget_mib = 777;
  a.instance_layer = 42; /* per run: not kept */
  /* Stable Diffusion: prompts with the keyfile's separators and a newline */
  g_strlcpy(a.prompt, "a church; at night,\nstars \xe2\x98\x85 = 1", SIGE_PROMPT_MAX);
  g_strlcpy(a.negative_prompt, "blurry #low quality", SIGE_PROMPT_MAX);
  a.guidance = 4.25;
  a.sd_sampler = SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP;
  /* a ';' is the keyfile's list separator: it must survive in a path */
  sige_settings_add_recent(&a, "/m/church/weights.safetensors");
  sige_settings_add_recent(&a, "/m/odd;name/weights.safetensors");
  sige_settings_add_recent(&a, "/m/bedroom/weights.safetensors");
  g_autoptr(GError) e = NULL;
  assert_true(sige_settings_save_file(&a, path, &e));
  assert_null(e);
  assert_true(sige_settings_load_file(&b, path, &e));
  assert_null(e);
  g_autofree gchar *text = NULL;
  assert_true(g_file_get_contents(path, &text, NULL, NULL));
  assert_non_null(strstr(text, "\nthreshold=0.35\n")); /* readable by a person */
  assert_string_equal(b.model, a.model);
  assert_int_equal(b.steps, 25);
  assert_true(b.strength == 0.4);
  assert_int_equal(b.seed, 1234567);
  assert_int_equal(b.sampler, SIGE_SAMPLER_CHOICE_DDIM);
  assert_true(b.threshold == 0.35);
  assert_int_equal(b.precision, SIGE_PRECISION_F16);
  assert_string_equal(b.prompt, a.prompt);
  assert_string_equal(b.negative_prompt, a.negative_prompt);
  assert_true(b.guidance == 4.25);
  assert_int_equal(b.sd_sampler, SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP);
  assert_int_equal(b.device, SIGE_DEVICE_CPU);
  assert_int_equal(b.threads, 3);
  assert_int_equal(b.budget_mib, 777);
  assert_int_equal(b.instance_layer, -1);
  for (int i = 0; i < SIGE_N_RECENT; i++) assert_string_equal(b.recent[i], a.recent[i]);
  assert_string_equal(b.recent[0], "/m/bedroom/weights.safetensors");
  assert_string_equal(b.recent[1], "/m/odd;name/weights.safetensors");
  assert_string_equal(b.recent[3], "");
  /* the other devices too (stored by name, not by enum value) */
  a.device = SIGE_DEVICE_CUDA;
  assert_true(sige_settings_save_file(&a, path, NULL));
  assert_true(sige_settings_load_file(&b, path, NULL));
  assert_int_equal(b.device, SIGE_DEVICE_CUDA);
  g_unlink(path);
}

static void assert_defaults(const SigeSettings *s) {
  SigeSettings d;
  sige_settings_defaults(&d);
  assert_memory_equal(s, &d, sizeof d);
}

static void test_missing_file(void **state) {
  (void)state;
  g_autofree gchar *path = tmp_path();
  g_unlink(path);
  SigeSettings s;
  g_autoptr(GError) e = NULL;
  assert_false(sige_settings_load_file(&s, path, &e));
  assert_null(e); /* the first start: nothing to warn about */
  assert_defaults(&s);
}

static void test_corrupt_file(void **state) {
  (void)state;
  g_autofree gchar *path = tmp_path();
  static const char garbage[] = "\x89PNG\r\n\x1a\n\0\xff\xfe[[[=\n";
  write_file(path, garbage, sizeof garbage);
  SigeSettings s;
  g_autoptr(GError) e = NULL;
  assert_false(sige_settings_load_file(&s, path, &e));
  assert_non_null(e);
  assert_non_null(strstr(e->message, path));
  assert_defaults(&s);
  g_clear_error(&e);
  /* a file of another program: no [settings] group */
  write_file(path, "[other]\nthreshold=0.3\n", -1);
  assert_false(sige_settings_load_file(&s, path, &e));
  assert_non_null(e);
  assert_non_null(strstr(e->message, "[settings]"));
  assert_defaults(&s);
  g_clear_error(&e);
  /* a truncated write of an old version (cut in the middle of a key) */
  write_file(path, "[settings]\nthreshold=0.3\ndevi", -1);
  assert_false(sige_settings_load_file(&s, path, &e));
  assert_non_null(e);
  assert_defaults(&s);
  g_clear_error(&e);
  /* a folder where the file should be */
  g_unlink(path);
  assert_int_equal(g_mkdir(path, 0700), 0);
  assert_false(sige_settings_load_file(&s, path, &e));
  assert_non_null(e);
  assert_defaults(&s);
  g_rmdir(path);
}

static void test_bad_values(void **state) {
  (void)state;
  g_autofree gchar *path = tmp_path();
  write_file(path,
             "[settings]\nthreshold=lots\ndevice=gpu\nbudget-mib=12\nsteps=10\n"
             "sampler=ddim\nstrength=nan\nrecent=/a/b/c.safetensors;\nguidance=101\n"
             "sd-sampler=euler\nprompt=a barn\n",
             -1);
  SigeSettings s, d;
  sige_settings_defaults(&d);
  g_autoptr(GError) e = NULL;
  assert_false(sige_settings_load_file(&s, path, &e));
  assert_non_null(e);
  /* each bad key is named, with the default used instead */
  assert_non_null(strstr(e->message, "threshold"));
  assert_non_null(strstr(e->message, "device: expected one of auto, cpu, cuda"));
  assert_non_null(strstr(e->message, "budget-mib"));
  assert_non_null(strstr(e->message, "strength"));
  assert_null(strstr(e->message, "steps"));
  assert_non_null(strstr(e->message, "guidance: expected a number from 0 to 100"));
  assert_non_null(strstr(e->message, "sd-sampler: expected one of dpm-solver++, ddim; using ddim"));
  assert_true(s.guidance == d.guidance);
  assert_int_equal(s.sd_sampler, SIGE_SAMPLER_CHOICE_DDIM);
  assert_string_equal(s.prompt, "a barn");
  assert_true(s.threshold == d.threshold);
  assert_int_equal(s.device, d.device);
  assert_int_equal(s.budget_mib, d.budget_mib);
  assert_true(s.strength == d.strength);
  /* the good ones are kept */
  assert_int_equal(s.steps, 10);
  assert_int_equal(s.sampler, SIGE_SAMPLER_CHOICE_DDIM);
  assert_string_equal(s.recent[0], "/a/b/c.safetensors");
  assert_string_equal(s.recent[1], "");
  g_unlink(path);
}

static void test_recent_label(void **state) {
  (void)state;
  g_autofree gchar *a = sige_settings_recent_label("/home/ann/models/church/weights.safetensors");
  g_autofree gchar *b = sige_settings_recent_label("/home/ann/models/bedroom/weights.safetensors");
  assert_string_equal(a, "weights.safetensors \u2014 \u2026/models/church");
  assert_string_equal(b, "weights.safetensors \u2014 \u2026/models/bedroom");
  g_autofree gchar *c = sige_settings_recent_label("/m/x.safetensors");
  assert_string_equal(c, "x.safetensors \u2014 /m");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_corrupt_file), cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_recent_label),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
