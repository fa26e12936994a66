/* The shared run of both front-ends without GIMP: snapshot, sparse pass,
 * nothing to do, what voids a snapshot (size, settings, reset), and
 * failures that must keep it (a corrupt model).  A tiny random DDPM UNet
 * written to a temporary safetensors file stands in for a real model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <glib/gstdio.h>
#include <math.h>

#include "random_weights.h"
#include "sige-plugin-files.h"
#include "sige-regen.h"
#include "sige/error.h"

static gchar *tmp_dir, *model_path;
static GPtrArray *messages;
static int waits;

static void on_message(const char *text, gpointer data) {
  (void)data;
  g_ptr_array_add(messages, g_strdup(text));
}

static void on_wait(sige_pass *p, const char *what, gpointer data) {
  (void)data;
  assert_non_null(what);
  waits++;
  while (!sige_pass_done(p)) g_usleep(1000);
}

static const sige_regen_host host = {.message = on_message, .wait = on_wait};

static int setup(void **state) {
  (void)state;
  tmp_dir = g_dir_make_tmp("sige-regen-XXXXXX", NULL);
  sige_ddpm_config c;
  sige_tiny_ddpm_config(&c);
  g_autoptr(sige_weights) w = sige_random_ddpm_weights(&c, 1, NULL);
  g_autoptr(GHashTable) meta = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(meta, "sige.image_size", "32");
  model_path = g_build_filename(tmp_dir, "tiny-unet.safetensors", NULL);
  assert_true(sige_weights_save_safetensors(w, model_path, SIGE_DTYPE_F32, meta, NULL));
  messages = g_ptr_array_new_with_free_func(g_free);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  g_unlink(model_path);
  g_rmdir(tmp_dir);
  g_free(model_path);
  g_free(tmp_dir);
  g_ptr_array_unref(messages);
  return 0;
}

static void settings(SigeSettings *s) {
  sige_settings_defaults(s);
  g_strlcpy(s->model, model_path, sizeof s->model);
  s->steps = 2;
  s->strength = 0.1;
  s->seed = 3;
  s->sampler = SIGE_SAMPLER_CHOICE_DDIM;
  s->threads = 1;
  s->threshold = 1.01; /* always sparse: the edits below are big for 32 x 32 */
}

static guint8 *picture(int w, int h, int bpp) {
  guint8 *px = g_malloc((size_t)w * h * bpp);
  for (int i = 0; i < w * h * bpp; i++) px[i] = (guint8)(i * 7 % 251);
  return px;
}

static sige_regen_result *run(int layer, const sige_pixels *src, const SigeSettings *s,
                              guint32 tag, GError **error) {
  const sige_regen_request rq = {.image_id = 1, .layer_id = layer, .tagged_session = tag,
                                 .source = src, .settings = s};
  return sige_regen_process(&rq, &host, error);
}

static const char *pass_kind(const sige_regen_result *r) { return r->full ? "full" : "sparse"; }

static void test_snapshot_sparse_none(void **state) {
  (void)state;
  SigeSettings s;
  settings(&s);
  g_autofree guint8 *px = picture(32, 32, 3);
  sige_pixels src = {px, 32, 32, 3};
  GError *err = NULL;

  waits = 0;
  sige_regen_result *r = run(10, &src, &s, 0, &err);
  assert_non_null(r);
  assert_string_equal(pass_kind(r), "full");
  assert_int_equal(r->width, 32);
  assert_int_equal(r->bpp, 3);
  assert_int_equal(r->changed.width, 32);
  assert_int_equal(r->entry->layer_id, 10);
  assert_int_equal(waits, 1);
  /* the snapshot's output is the image itself (SDEdit) */
  for (int i = 0; i < 32 * 32 * 3; i++) assert_true(abs(r->pixels[i] - px[i]) <= 1);
  g_autofree gchar *tag = sige_regen_tag_format(r->entry);
  const guint32 id = sige_regen_tag_parse(tag, strlen(tag));
  assert_int_equal(id, r->entry->id);
  r->entry->output_layer_id = 11;
  sige_regen_finish(r, (sige_rect){0, 0, 32, 32});

  /* an edit: a sparse pass of the same session, local */
  for (int y = 20; y < 26; y++) memset(px + (y * 32 + 20) * 3, 250, 6 * 3);
  r = run(10, &src, &s, id, &err);
  assert_non_null(r);
  assert_string_equal(pass_kind(r), "sparse");
  assert_int_equal(r->entry->id, id);
  assert_int_equal(r->entry->output_layer_id, 11);
  assert_true(r->changed.width > 0 && r->changed.width < 32);
  sige_regen_finish(r, r->changed);

  /* nothing changed: a sparse run that recomputes nothing */
  r = run(10, &src, &s, id, &err);
  assert_non_null(r);
  assert_false(r->full);
  assert_int_equal(r->changed.width, 0);
  sige_regen_finish(r, (sige_rect){0, 0, 0, 0});
  assert_int_equal(messages->len, 0);

  /* reset: the next run is a full pass */
  assert_true(sige_regen_reset(1, 10));
  assert_false(sige_regen_reset(1, 10));
  r = run(10, &src, &s, id, &err);
  assert_non_null(r);
  assert_true(r->full);
  assert_int_not_equal(r->entry->id, id);
  sige_regen_finish(r, (sige_rect){0, 0, 32, 32});
}

static void test_what_voids_a_snapshot(void **state) {
  (void)state;
  SigeSettings s;
  settings(&s);
  g_autofree guint8 *px = picture(32, 32, 3);
  sige_pixels src = {px, 32, 32, 3};
  GError *err = NULL;
  sige_regen_result *r = run(20, &src, &s, 0, &err);
  assert_non_null(r);
  const guint32 id = r->entry->id;
  sige_regen_finish(r, (sige_rect){0, 0, 32, 32});

  /* other steps: a message naming them, and a new snapshot */
  g_ptr_array_set_size(messages, 0);
  s.steps = 1;
  r = run(20, &src, &s, id, &err);
  assert_non_null(r);
  assert_true(r->full);
  assert_int_equal(messages->len, 1);
  assert_non_null(strstr(g_ptr_array_index(messages, 0), "steps changed since the snapshot"));
  const guint32 id2 = r->entry->id;
  sige_regen_finish(r, (sige_rect){0, 0, 32, 32});

  /* a corrupt model: an error naming the file, and the snapshot stays */
  g_autofree gchar *corrupt = g_build_filename(tmp_dir, "corrupt.safetensors", NULL);
  assert_true(g_file_set_contents(corrupt, "\xff\xff\xff\xff\xff\xff\x00\x00{", 9, NULL));
  SigeSettings bad = s;
  g_strlcpy(bad.model, corrupt, sizeof bad.model);
  assert_null(run(20, &src, &bad, id2, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_FORMAT));
  assert_non_null(strstr(err->message, corrupt));
  g_clear_error(&err);
  g_unlink(corrupt);
  assert_non_null(sige_session_table_lookup(sige_regen_sessions(), id2));

  /* the wrong size for the model: an error naming both sizes */
  g_autofree guint8 *small = picture(16, 8, 3);
  sige_pixels src_small = {small, 16, 8, 3};
  assert_null(run(30, &src_small, &s, 0, &err));
  assert_non_null(strstr(err->message, "16 x 8"));
  assert_non_null(strstr(err->message, "32 x 32"));
  g_clear_error(&err);

  /* the layer changed type since the snapshot: a message and a new one */
  g_ptr_array_set_size(messages, 0);
  g_autofree guint8 *gray = picture(32, 32, 1);
  sige_pixels src_gray = {gray, 32, 32, 1};
  r = run(20, &src_gray, &s, id2, &err);
  assert_non_null(r);
  assert_true(r->full);
  assert_int_equal(r->bpp, 1);
  assert_int_equal(messages->len, 1);
  assert_non_null(strstr(g_ptr_array_index(messages, 0), "size or type changed"));
  sige_regen_finish(r, (sige_rect){0, 0, 32, 32});

  /* CUDA asked for where there is none (no GPU here, or no CUDA backend in
   * the build): a device error, never a silent fall back to the CPU */
  if (!sige_cuda_probe(NULL, NULL)) {
    s.device = SIGE_DEVICE_CUDA;
    assert_null(run(20, &src_gray, &s, 0, &err));
    assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_DEVICE));
    assert_non_null(strstr(err->message, "no CUDA device"));
    g_clear_error(&err);
  }
}

static void test_helpers(void **state) {
  (void)state;
  g_autofree gchar *name = sige_regen_output_name("/some/where/gaugan-demo.safetensors");
  assert_string_equal(name, "Sparse Regenerate (gaugan-demo)");
  assert_int_equal(sige_regen_tag_parse("17 512 256 3", 12), 17);
  assert_int_equal(sige_regen_tag_parse("junk", 4), 0);
  const guint8 full[4 * 3] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  g_autofree guint8 *part = sige_pixels_crop(full, 4, 1, (sige_rect){1, 1, 2, 2});
  const guint8 want[4] = {5, 6, 9, 10};
  assert_memory_equal(part, want, 4);
  /* the shipped data, found through the compile-time data folder */
  g_autofree gchar *model = sige_find_data_file(SIGE_DEFAULT_MODEL);
  assert_non_null(model);
  SigeSettings s;
  sige_settings_defaults(&s);
  g_autofree gchar *resolved = sige_resolve_model(&s);
  assert_string_equal(resolved, model);
  sige_settings_add_recent(&s, "/a");
  sige_settings_add_recent(&s, "/b");
  sige_settings_add_recent(&s, "/a");
  assert_string_equal(s.recent[0], "/a");
  assert_string_equal(s.recent[1], "/b");
  assert_string_equal(s.recent[2], "");
  /* the palette: written once, then left alone */
  g_autofree gchar *dir = g_dir_make_tmp("sige-palette-XXXXXX", NULL);
  g_autofree gchar *pal = g_build_filename(dir, "palettes", NULL);
  assert_true(sige_install_palette(pal));
  assert_false(sige_install_palette(pal));
  g_autofree gchar *gpl = g_build_filename(pal, "Cityscapes.gpl", NULL);
  g_unlink(gpl);
  g_rmdir(pal);
  g_rmdir(dir);
}

/* What the GIMP front-ends do around a run: an output layer's tag, its
 * opacity, the note after a picture model's snapshot, and the values the
 * dialogs show in place of the scripts' stand-ins. */
static void test_around_a_run(void **state) {
  (void)state;
  assert_int_equal(sige_regen_output_source_parse("12", 2), 12);
  assert_int_equal(sige_regen_output_source_parse("12", 3), 12); /* with its NUL */
  assert_int_equal(sige_regen_output_source_parse("12x", 3), 0);
  assert_int_equal(sige_regen_output_source_parse("", 0), 0);
  assert_int_equal(sige_regen_output_source_parse("-4", 2), 0);
  assert_int_equal(sige_regen_output_source_parse("99999999999", 11), 0);

  SigeSettings s;
  settings(&s);
  s.steps = 0;
  s.strength = 0;
  s.seed = -1;
  s.sampler = SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP;
  /* no session yet: the sampler's defaults and seed 0 */
  sige_generation_values v;
  sige_regen_generation_values(model_path, &s, 1, 30, &v);
  assert_int_equal(v.steps, 10);
  assert_true(fabs(v.strength - 0.75) < 1e-9);
  assert_int_equal(v.seed, 0);
  /* an explicit value is shown as it is */
  s.steps = 4;
  s.strength = 0.3;
  s.seed = 5;
  sige_regen_generation_values(model_path, &s, 1, 30, &v);
  assert_int_equal(v.steps, 4);
  assert_true(fabs(v.strength - 0.3) < 1e-9);
  assert_int_equal(v.seed, 5);

  /* the first run of a picture model: a snapshot that looks like its input,
   * so the user is told what to do next; the opaque output */
  g_autofree guint8 *px = picture(32, 32, 3);
  sige_pixels src = {px, 32, 32, 3};
  GError *err = NULL;
  sige_regen_result *r = run(30, &src, &s, 0, &err);
  assert_non_null(r);
  assert_true(r->full);
  g_autofree gchar *note = sige_regen_run_note(r, "church");
  assert_non_null(note);
  assert_non_null(strstr(note, "snapshot taken"));
  assert_non_null(strstr(note, "\"church\""));
  assert_non_null(strchr(note, '\n')); /* two lines: not a status-bar message */
  assert_true(sige_regen_output_opacity(r) == 100.0);
  sige_regen_finish(r, (sige_rect){0, 0, 32, 32});
  r = run(30, &src, &s, 0, &err);
  assert_non_null(r);
  assert_false(r->full);
  assert_null(sige_regen_run_note(r, "church"));
  sige_regen_finish(r, (sige_rect){0, 0, 0, 0});

  /* seed -1 shows the session's, not -1 */
  s.seed = -1;
  s.steps = 0;
  s.strength = 0;
  sige_regen_generation_values(model_path, &s, 1, 30, &v);
  assert_int_equal(v.seed, 5);
  assert_int_equal(v.steps, 10);

  /* back from the dialog: untouched values keep their stand-ins */
  const sige_generation_values same = v;
  sige_regen_generation_store(&v, &same, &s);
  assert_int_equal(s.steps, 0);
  assert_true(s.strength == 0);
  assert_int_equal(s.seed, -1);
  const sige_generation_values changed = {12, 0.5, 9};
  sige_regen_generation_store(&v, &changed, &s);
  assert_int_equal(s.steps, 12);
  assert_true(fabs(s.strength - 0.5) < 1e-9);
  assert_int_equal(s.seed, 9);
  assert_true(sige_regen_reset(1, 30));

  /* a label model's output lets the labels show through; no note */
  const sige_regen_result labels = {.full = TRUE, .mode = SIGE_INPUT_LABELS};
  assert_true(sige_regen_output_opacity(&labels) > 0 && sige_regen_output_opacity(&labels) < 100);
  assert_null(sige_regen_run_note(&labels, "labels"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_helpers),
      cmocka_unit_test(test_snapshot_sparse_none),
      cmocka_unit_test(test_what_voids_a_snapshot),
      cmocka_unit_test(test_around_a_run),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
