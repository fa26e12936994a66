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
#include "sige-session-table.h"
#include "sige/error.h"
#include "sige/model.h"

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
  sige_pixels src = {px, 32, 32, 3, 8};
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
  sige_session_entry *entry = r->entry;
  sige_regen_finish(r, (sige_rect){0, 0, 32, 32});
  /* the session budget counts the model's weights beside the caches */
  {
    g_autoptr(sige_model) m = sige_model_load(model_path, NULL);
    assert_non_null(m);
    assert_true(sige_model_weight_bytes(m) > 0);
    assert_int_equal(entry->shared_bytes, sige_model_weight_bytes(m));
    assert_non_null(entry->shared);
  }

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
  sige_pixels src = {px, 32, 32, 3, 8};
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
  sige_pixels src_small = {small, 16, 8, 3, 8};
  assert_null(run(30, &src_small, &s, 0, &err));
  assert_non_null(strstr(err->message, "16 x 8"));
  assert_non_null(strstr(err->message, "32 x 32"));
  g_clear_error(&err);

  /* the layer changed type since the snapshot: a message and a new one */
  g_ptr_array_set_size(messages, 0);
  g_autofree guint8 *gray = picture(32, 32, 1);
  sige_pixels src_gray = {gray, 32, 32, 1, 8};
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
  g_autofree gchar *model = sige_find_data_file(SIGE_DEFAULT_LABEL_MODEL);
  assert_non_null(model);
  SigeSettings s;
  sige_settings_defaults(&s);
  g_autofree gchar *resolved = sige_resolve_model(&s, SIGE_INPUT_LABELS);
  assert_string_equal(resolved, model);
  /* a picture gets the church DDPM, shipped beside it */
  g_autofree gchar *picture_model = sige_find_data_file(SIGE_DEFAULT_PICTURE_MODEL);
  assert_non_null(picture_model);
  g_autofree gchar *for_picture = sige_resolve_model(&s, SIGE_INPUT_IMAGE);
  assert_string_equal(for_picture, picture_model);
  g_strlcpy(s.model, "/chosen.safetensors", sizeof s.model); /* a chosen model wins */
  g_autofree gchar *chosen = sige_resolve_model(&s, SIGE_INPUT_IMAGE);
  assert_string_equal(chosen, "/chosen.safetensors");
  s.model[0] = '\0';
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

/* Chebyshev distance from (x, y) to the rectangle [x0, x1) x [y0, y1). */
static int rect_dist(int x, int y, int x0, int y0, int x1, int y1) {
  const int dx = x < x0 ? x0 - x : x >= x1 ? x - x1 + 1 : 0;
  const int dy = y < y0 ? y0 - y : y >= y1 ? y - y1 + 1 : 0;
  return MAX(dx, dy);
}

/* Untouched pixels stay untouched: after a snapshot (DPM-Solver++, the
 * default) and a small edit, every pixel more than the margin from the edit
 * is bit-identical to the snapshot's output, although the sampler's own
 * result differs there (checked: that is what makes this test fail without
 * the compositing); undoing the edit on the source brings its pixels back. */
static void test_untouched_stay(void **state) {
  (void)state;
  SigeSettings s;
  settings(&s);
  s.sampler = SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP;
  s.steps = 3;
  s.strength = 0.3;
  g_autofree guint8 *px = picture(32, 32, 3);
  g_autofree guint8 *orig = g_memdup2(px, 32 * 32 * 3);
  sige_pixels src = {px, 32, 32, 3, 8};
  GError *err = NULL;
  sige_regen_result *r = run(40, &src, &s, 0, &err);
  assert_non_null(r);
  assert_true(r->full);
  const guint32 id = r->entry->id;
  g_autofree guint8 *before = g_memdup2(r->pixels, 32 * 32 * 3);
  sige_regen_finish(r, (sige_rect){0, 0, 32, 32});

  const int margin = sige_edit_margin(32, 32);
  assert_int_equal(margin, 4);
  for (int y = 4; y < 7; y++) memset(px + (y * 32 + 4) * 3, 240, 3 * 3);
  r = run(40, &src, &s, id, &err);
  if (!r) fail_msg("%s", err->message);
  assert_false(r->full);
  int far = 0, near_changed = 0;
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 32; x++) {
      const int i = (y * 32 + x) * 3;
      if (rect_dist(x, y, 4, 4, 7, 7) > margin) {
        far++;
        if (memcmp(r->pixels + i, before + i, 3))
          fail_msg("pixel (%d, %d), %d from the edit, changed", x, y, rect_dist(x, y, 4, 4, 7, 7));
      } else {
        near_changed += memcmp(r->pixels + i, before + i, 3) != 0;
      }
    }
  assert_int_equal(far, 32 * 32 - 11 * 11); /* the reach [0, 11) is clipped at 0 */
  assert_true(near_changed > 0); /* the edit shows */
  /* the rectangle the run changed lies within the edit's reach */
  assert_true(r->changed.width > 0);
  assert_true(r->changed.x >= 0 && r->changed.x + r->changed.width <= 7 + margin);
  assert_true(r->changed.y >= 0 && r->changed.y + r->changed.height <= 7 + margin);
  /* the engine's own output (sige edit, check-reference) keeps the trace */
  const sige_tensor *eng = sige_session_output(sige_regen_entry_session(r->entry));
  g_autofree guint8 *raw = g_malloc(32 * 32 * 3);
  assert_true(sige_pixels_from_output(eng, (sige_rect){0, 0, 32, 32}, 3, raw, NULL));
  int raw_far_diff = 0;
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 32; x++)
      if (rect_dist(x, y, 4, 4, 7, 7) > margin)
        raw_far_diff += memcmp(raw + (y * 32 + x) * 3, before + (y * 32 + x) * 3, 3) != 0;
  print_message("# engine output: %d of %d far pixels differ from the snapshot's\n", raw_far_diff,
                far);
  assert_true(raw_far_diff > 0);
  sige_regen_finish(r, (sige_rect){0, 0, 32, 32});

  /* the edit undone on the source: the snapshot's pixels come back */
  memcpy(px, orig, 32 * 32 * 3);
  r = run(40, &src, &s, id, &err);
  if (!r) fail_msg("%s", err->message);
  assert_memory_equal(r->pixels, before, 32 * 32 * 3);
  sige_regen_finish(r, (sige_rect){0, 0, 32, 32});
}

/* The reach: a changed pixel grown by the margin, a square, clipped. */
static void test_keep_untouched_geometry(void **state) {
  (void)state;
  enum { W = 20, H = 12 };
  guint8 base_src[W * H], src_px[W * H], base_out[W * H], out[W * H];
  memset(base_src, 10, sizeof base_src);
  memcpy(src_px, base_src, sizeof src_px);
  memset(base_out, 1, sizeof base_out);
  src_px[5 * W + 1] = 11; /* (1, 5) */
  memset(out, 2, sizeof out);
  const sige_pixels src = {src_px, W, H, 1, 8};
  const gint64 kept = sige_pixels_keep_untouched(&src, base_src, base_out, out, 3);
  int inside = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      const gboolean reach = abs(x - 1) <= 3 && abs(y - 5) <= 3;
      assert_int_equal(out[y * W + x], reach ? 2 : 1);
      inside += reach;
    }
  assert_int_equal(inside, 5 * 7);
  assert_int_equal(kept, W * H - inside);
  /* nothing changed: everything kept */
  memcpy(src_px, base_src, sizeof src_px);
  memset(out, 2, sizeof out);
  assert_int_equal(sige_pixels_keep_untouched(&src, base_src, base_out, out, 3), W * H);
  assert_memory_equal(out, base_out, sizeof out);
  assert_int_equal(sige_edit_margin(256, 256), 16);
  assert_int_equal(sige_edit_margin(512, 256), 16);
  assert_int_equal(sige_edit_margin(32, 32), 4);
}

/* No model chosen: a label map runs the street GauGAN, a picture the
 * church DDPM (SDEdit), each the shipped default for what the layer holds. */
static void test_default_model_by_layer(void **state) {
  (void)state;
  SigeSettings s;
  sige_settings_defaults(&s);
  s.threads = 1;
  s.steps = 2; /* DPM-Solver++'s least: 1 UNet evaluation at noise level 100 */
  s.strength = 0.1;
  GError *err = NULL;
  g_autofree guint8 *labels = g_malloc(512 * 256 * 3); /* the street model's size */
  const guint8 road[3] = {128, 64, 128}, car[3] = {0, 0, 142};
  for (int i = 0; i < 512 * 256; i++) memcpy(labels + 3 * i, i % 512 < 320 ? road : car, 3);
  const sige_pixels lab = {labels, 512, 256, 3, 8};
  sige_regen_result *r = run(60, &lab, &s, 0, &err);
  if (!r) fail_msg("%s", err->message);
  assert_int_equal(r->mode, SIGE_INPUT_LABELS);
  assert_true(g_str_has_suffix(r->model_path, "/" SIGE_DEFAULT_LABEL_MODEL));
  sige_regen_result_free(r);
  g_autofree guint8 *photo = picture(256, 256, 3); /* the church model's size */
  const sige_pixels pic = {photo, 256, 256, 3, 8};
  r = run(61, &pic, &s, 0, &err);
  if (!r) fail_msg("%s", err->message);
  assert_int_equal(r->mode, SIGE_INPUT_IMAGE);
  assert_true(g_str_has_suffix(r->model_path, "/" SIGE_DEFAULT_PICTURE_MODEL));
  sige_regen_result_free(r);
}

/* A photo on the GauGAN model: refused before any pass (no wait, no
 * session), with how many pixels are far from the palette. */
static void test_photo_as_labels(void **state) {
  (void)state;
  SigeSettings s;
  sige_settings_defaults(&s);
  g_autofree gchar *gaugan = g_build_filename(SIGE_SOURCE_DIR, "data", "models",
                                              "gaugan-demo.safetensors", NULL);
  g_strlcpy(s.model, gaugan, sizeof s.model);
  s.threads = 1;
  g_autofree guint8 *px = g_malloc(512 * 256 * 3);
  for (int i = 0; i < 512 * 256; i++) /* 255, 255, 255 is 127 levels from parking */
    px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = i % 5 ? 255 : 70; /* 20 % building */
  sige_pixels src = {px, 512, 256, 3, 8};
  const guint n_sessions = sige_session_table_size(sige_regen_sessions());
  waits = 0;
  g_ptr_array_set_size(messages, 0);
  GError *err = NULL;
  assert_null(run(50, &src, &s, 0, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_FORMAT));
  if (!strstr(err->message, "104857 of its 131072 pixels (80 %)"))
    fail_msg("%s", err->message);
  g_clear_error(&err);
  assert_int_equal(waits, 0);
  assert_int_equal(messages->len, 0);
  assert_int_equal(sige_session_table_size(sige_regen_sessions()), n_sessions);
  /* 20 % far: it runs, with the nearest-colour note */
  for (int i = 0; i < 512 * 256; i++)
    if (i % 5 >= 2) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = 70;
  sige_regen_result *r = run(50, &src, &s, 0, &err);
  if (!r) fail_msg("%s", err->message);
  assert_int_equal(waits, 1);
  assert_int_equal(messages->len, 1);
  assert_non_null(strstr(g_ptr_array_index(messages, 0), "20.00 %"));
  sige_regen_finish(r, (sige_rect){0, 0, 512, 256});
  assert_true(sige_regen_reset(1, 50));
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
  sige_pixels src = {px, 32, 32, 3, 8};
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
      cmocka_unit_test(test_keep_untouched_geometry),
      cmocka_unit_test(test_untouched_stay),
      cmocka_unit_test(test_default_model_by_layer), cmocka_unit_test(test_photo_as_labels),
      cmocka_unit_test(test_around_a_run),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
