/* The plug-in's run with a Stable Diffusion checkpoint, without GIMP: the
 * snapshot, a sparse edit against a fresh dense run of the edited picture,
 * nothing to do, cancel keeping the session, inpainting from a selection,
 * settings that void the snapshot, and the refusals (size, gray layer,
 * sampler).  The checkpoint is made by make_sd_tiny (argv[1]) from the
 * reference weights; 256 x 256 pictures (at 128 x 128 the reach of any
 * edit is the whole picture), 4 DDIM steps at strength 0.5 (2 denoising
 * steps) keep a run within seconds on 2 cores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <glib/gstdio.h>
#include <math.h>

#include "sige-app/sd_app.h"
#include "sige-plugin-files.h"
#include "sige-regen.h"
#include "sige-session-table.h"
#include "sige/error.h"

#define W 256
#define H 256

static const char *maker;
static gchar *tmp_dir, *ck_path, *model;
static GPtrArray *messages;
static gboolean cancel_next;
static int max_permille_seen;

static void on_message(const char *text, gpointer data) {
  (void)data;
  g_ptr_array_add(messages, g_strdup(text));
}

static void on_wait(sige_pass *p, const char *what, gpointer data) {
  (void)data, (void)what;
  if (cancel_next) sige_pass_cancel(p);
  while (!sige_pass_done(p)) {
    max_permille_seen = MAX(max_permille_seen, (int)(sige_pass_fraction(p) * 1000));
    g_usleep(1000);
  }
}

static const sige_regen_host host = {.message = on_message, .wait = on_wait};

static gboolean said(const char *part) {
  for (guint i = 0; i < messages->len; i++)
    if (strstr(messages->pdata[i], part)) return TRUE;
  return FALSE;
}

static int setup(void **state) {
  (void)state;
  tmp_dir = g_dir_make_tmp("sige-regen-sd-XXXXXX", NULL);
  ck_path = g_build_filename(tmp_dir, "tiny-sd.safetensors", NULL);
  const char *ref = g_getenv("SIGE_REFERENCE_DIR");
  assert_non_null(ref);
  const gchar *argv[] = {maker, ref, ck_path, NULL};
  gint status = 1;
  g_autoptr(GError) e = NULL;
  if (!g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status,
                    &e) ||
      status != 0) {
    fprintf(stderr, "make_sd_tiny failed: %s\n", e ? e->message : "exit status");
    return -1;
  }
  model = g_strconcat("sd:", ck_path, NULL);
  messages = g_ptr_array_new_with_free_func(g_free);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  g_unlink(ck_path);
  g_rmdir(tmp_dir);
  g_free(ck_path);
  g_free(model);
  g_free(tmp_dir);
  g_ptr_array_unref(messages);
  return 0;
}

static void settings(SigeSettings *s) {
  sige_settings_defaults(s);
  g_strlcpy(s->model, model, sizeof s->model);
  g_strlcpy(s->prompt, "a church", sizeof s->prompt);
  s->steps = 4;
  s->strength = 0.5;
  s->seed = 3;
  s->threads = 2;
}

/* a smooth picture (what SD takes), and the same with a red square */
static guint8 *picture(int w, int h, int bpp) {
  guint8 *px = g_malloc((size_t)w * h * bpp);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < bpp; c++)
        px[((size_t)y * w + x) * bpp + c] =
            (guint8)(c == 0 ? 2 * x : c == 1 ? 2 * y : 128 + 60 * sin(x / 5.0));
  return px;
}

static void paint_square(guint8 *px, int x0, int y0, int n) {
  for (int y = y0; y < y0 + n; y++)
    for (int x = x0; x < x0 + n; x++) {
      guint8 *p = px + ((size_t)y * W + x) * 3;
      p[0] = 250, p[1] = 20, p[2] = 20;
    }
}

static sige_regen_result *run(int layer, const sige_pixels *src, const sige_pixels *mask,
                              const SigeSettings *s, GError **error) {
  const sige_regen_request rq = {.image_id = 1, .layer_id = layer, .source = src,
                                 .settings = s, .mask = mask, .layer_name = "picture"};
  return sige_regen_process(&rq, &host, error);
}

/* max |a - b| over the pixels inside (inside TRUE) or outside the square
 * [x0, x1) x [y0, y1); *mean over the same pixels */
static int max_diff(const guint8 *a, const guint8 *b, int x0, int y0, int x1, int y1,
                    gboolean inside, double *mean) {
  int m = 0;
  double sum = 0;
  gint64 n = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      const gboolean in = x >= x0 && x < x1 && y >= y0 && y < y1;
      if (in != inside) continue;
      for (int c = 0; c < 3; c++) {
        const int d = abs(a[((size_t)y * W + x) * 3 + c] - b[((size_t)y * W + x) * 3 + c]);
        m = MAX(m, d);
        sum += d;
        n++;
      }
    }
  if (mean) *mean = n ? sum / n : 0;
  return m;
}

static void test_img2img(void **state) {
  (void)state;
  SigeSettings s;
  settings(&s);
  g_autofree guint8 *a = picture(W, H, 3);
  sige_pixels src = {a, W, H, 3, 8};
  GError *err = NULL;

  /* the snapshot: a full SD img2img of the layer, with progress */
  max_permille_seen = 0;
  sige_regen_result *r = run(10, &src, NULL, &s, &err);
  assert_non_null(r);
  assert_true(r->full);
  assert_int_equal(r->changed.width, W);
  assert_int_equal(r->bpp, 3);
  double mean = 0;
  assert_true(max_diff(r->pixels, a, 0, 0, 0, 0, FALSE, &mean) > 0); /* redrawn */
  g_autofree guint8 *snap = g_memdup2(r->pixels, W * H * 3);
  g_autofree gchar *note = sige_regen_run_note(r, "picture");
  assert_non_null(strstr(note, "Stable Diffusion"));
  const guint32 id = r->entry->id;
  sige_regen_finish(r, (sige_rect){0, 0, W, H});

  /* an edit: a sparse run of the same session */
  g_autofree guint8 *b = g_memdup2(a, W * H * 3);
  paint_square(b, 8, 8, 8);
  sige_pixels edited = {b, W, H, 3, 8};
  r = run(10, &edited, NULL, &s, &err);
  assert_non_null(r);
  assert_false(r->full);
  assert_int_equal(r->entry->id, id);
  assert_true(r->changed.width > 0);
  /* The reach: the square dilated by the UNet's 5 latent pixels (40 px)
   * and the decoder's 40 more, cells of the mask pyramid on top; beyond
   * 128 px right and below nothing is recomputed, so the snapshot's
   * pixels stay bit for bit (cached blocks). */
  assert_true(r->changed.x + r->changed.width <= 128 && r->changed.y + r->changed.height <= 128);
  assert_int_equal(max_diff(r->pixels, snap, 0, 0, 128, 128, FALSE, NULL), 0);
  assert_true(max_diff(r->pixels, snap, 8, 8, 16, 16, TRUE, NULL) > 0);
  g_autofree guint8 *sparse = g_memdup2(r->pixels, W * H * 3);
  sige_regen_finish(r, r->changed);

  /* a fresh dense run of the edited picture (another layer: its own
   * snapshot, full passes).  SIGE's sparse passes keep the snapshot's
   * normalisation statistics and, far off, its attention keys, so the two
   * differ by a few levels: measured on this tiny model max inside the
   * square 2, anywhere 3, mean 0.075 of 255 (sige edit --dense, another
   * picture and edit: max 14, mean 0.79).  Limits: 16 anywhere, mean 1. */
  r = run(20, &edited, NULL, &s, &err);
  assert_non_null(r);
  assert_true(r->full);
  const int in_max = max_diff(sparse, r->pixels, 8, 8, 16, 16, TRUE, NULL);
  const int out_max = max_diff(sparse, r->pixels, 8, 8, 16, 16, FALSE, &mean);
  fprintf(stderr, "# sparse vs dense: inside max %d, outside max %d, mean %.3f\n", in_max,
          out_max, mean);
  assert_true(in_max <= 16 && out_max <= 16 && mean <= 1.0);
  sige_regen_finish(r, (sige_rect){0, 0, W, H});

  /* nothing changed: nothing to do, the same output */
  r = run(10, &edited, NULL, &s, &err);
  assert_non_null(r);
  assert_false(r->full);
  assert_int_equal(r->changed.width, 0);
  assert_memory_equal(r->pixels, sparse, W * H * 3);
  sige_regen_finish(r, r->changed);

  /* cancel: an error, and the session as it was (the same edit again is
   * still nothing to do, the next edit sparse) */
  g_autofree guint8 *c = g_memdup2(b, W * H * 3);
  paint_square(c, 200, 200, 8);
  sige_pixels edited2 = {c, W, H, 3, 8};
  cancel_next = TRUE;
  assert_null(run(10, &edited2, NULL, &s, &err));
  cancel_next = FALSE;
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_CANCELLED));
  g_clear_error(&err);
  r = run(10, &edited, NULL, &s, &err);
  assert_non_null(r);
  assert_false(r->full);
  assert_int_equal(r->changed.width, 0);
  assert_memory_equal(r->pixels, sparse, W * H * 3);
  sige_regen_finish(r, r->changed);
  r = run(10, &edited2, NULL, &s, &err);
  assert_non_null(r);
  assert_false(r->full);
  /* The first square's area stays (the session went on from the first
   * edit).  Not bit for bit: the sparse passes of the second square move
   * a few values far from it by up to 2 levels (measured max 2, 0.06 % of
   * the values in 0..40; the dense middle block's fresh statistics reach
   * everywhere); the first square itself did not revert to the picture. */
  double mean0 = 0;
  assert_true(max_diff(r->pixels, sparse, 0, 0, 40, 40, TRUE, &mean0) <= 2 && mean0 < 0.01);
  assert_true(max_diff(r->pixels, a, 8, 8, 16, 16, TRUE, NULL) > 32);
  sige_regen_finish(r, r->changed);

  /* a cancelled new snapshot (another prompt) keeps the old session */
  g_strlcpy(s.prompt, "a red barn", sizeof s.prompt);
  cancel_next = TRUE;
  g_ptr_array_set_size(messages, 0);
  assert_null(run(10, &edited2, NULL, &s, &err));
  cancel_next = FALSE;
  assert_true(said("the prompt"));
  g_clear_error(&err);
  settings(&s);
  r = run(10, &edited2, NULL, &s, &err);
  assert_non_null(r);
  assert_int_equal(r->entry->id, id);
  assert_int_equal(r->changed.width, 0);
  sige_regen_finish(r, r->changed);

  /* each setting the caches depend on means a new snapshot */
  s.guidance = 3.0;
  g_ptr_array_set_size(messages, 0);
  r = run(10, &edited2, NULL, &s, &err);
  assert_non_null(r);
  assert_true(r->full);
  assert_true(said("guidance"));
  sige_regen_finish(r, (sige_rect){0, 0, W, H});
  assert_true(sige_regen_reset(1, 10));
  assert_true(sige_regen_reset(1, 20));
}

static void test_inpaint(void **state) {
  (void)state;
  SigeSettings s;
  settings(&s);
  g_autofree guint8 *a = picture(W, H, 3);
  sige_pixels src = {a, W, H, 3, 8};
  g_autofree guint8 *sel = g_malloc0(W * H);
  for (int y = 224; y < 240; y++) memset(sel + y * W + 224, 255, 16);
  sige_pixels mask = {sel, W, H, 1, 8};
  GError *err = NULL;
  g_ptr_array_set_size(messages, 0);

  /* the first run with a selection: the inpainting snapshot, then the
   * selection inpainted; the layer itself outside it */
  sige_regen_result *r = run(30, &src, &mask, &s, &err);
  assert_non_null(r);
  assert_true(r->full);
  assert_true(max_diff(r->pixels, a, 224, 224, 240, 240, TRUE, NULL) > 0);
  /* outside the selection the layer's pixels exactly */
  assert_int_equal(max_diff(r->pixels, a, 224, 224, 240, 240, FALSE, NULL), 0);
  sige_regen_finish(r, (sige_rect){0, 0, W, H});

  /* another selection: sparse; the first selection's area is the layer
   * again (each inpainting is one of the layer) */
  memset(sel, 0, W * H);
  for (int y = 8; y < 24; y++) memset(sel + y * W + 8, 255, 16);
  r = run(30, &src, &mask, &s, &err);
  assert_non_null(r);
  assert_false(r->full);
  assert_true(max_diff(r->pixels, a, 8, 8, 24, 24, TRUE, NULL) > 0);
  assert_int_equal(max_diff(r->pixels, a, 8, 8, 24, 24, FALSE, NULL), 0);
  /* the changed rectangle: both selections (the first's back to the layer) */
  assert_true(r->changed.x == 8 && r->changed.y == 8 && r->changed.width == 232 &&
              r->changed.height == 232);
  sige_regen_finish(r, r->changed);

  /* no selection: img2img, a new snapshot, said */
  g_ptr_array_set_size(messages, 0);
  r = run(30, &src, NULL, &s, &err);
  assert_non_null(r);
  assert_true(r->full);
  assert_true(said("no selection"));
  sige_regen_finish(r, (sige_rect){0, 0, W, H});
  assert_true(sige_regen_reset(1, 30));
}

static void test_refusals(void **state) {
  (void)state;
  SigeSettings s;
  settings(&s);
  GError *err = NULL;
  g_autofree guint8 *odd = picture(100, 100, 3);
  sige_pixels o = {odd, 100, 100, 3, 8};
  assert_null(run(40, &o, NULL, &s, &err));
  assert_non_null(strstr(err->message, "\"picture\" is 100 x 100"));
  assert_non_null(strstr(err->message, "multiples of 8"));
  assert_non_null(strstr(err->message, "96 x 96"));
  g_clear_error(&err);

  g_autofree guint8 *gray = picture(W, H, 1);
  sige_pixels g = {gray, W, H, 1, 8};
  assert_null(run(40, &g, NULL, &s, &err));
  assert_non_null(strstr(err->message, "RGB"));
  g_clear_error(&err);

  /* a session first; the sampler is a setting the caches depend on, so
   * DPM-Solver++ takes a new snapshot, and so does going back to DDIM */
  g_autofree guint8 *a = picture(W, H, 3);
  sige_pixels src = {a, W, H, 3, 8};
  sige_regen_result *r = run(40, &src, NULL, &s, &err);
  assert_non_null(r);
  sige_regen_finish(r, (sige_rect){0, 0, W, H});
  s.sd_sampler = SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP;
  r = run(40, &src, NULL, &s, &err);
  assert_non_null(r);
  assert_true(r->full);
  sige_regen_finish(r, (sige_rect){0, 0, W, H});
  s.sd_sampler = SIGE_SAMPLER_CHOICE_DDIM;
  r = run(40, &src, NULL, &s, &err);
  assert_non_null(r);
  assert_true(r->full);
  sige_regen_finish(r, (sige_rect){0, 0, W, H});

  /* a checkpoint that is not one */
  settings(&s);
  g_autofree gchar *bad = g_build_filename(tmp_dir, "bad.safetensors", NULL);
  assert_true(g_file_set_contents(bad, "not a checkpoint", -1, NULL));
  g_autofree gchar *spec = g_strconcat("sd:", bad, NULL);
  g_strlcpy(s.model, spec, sizeof s.model);
  assert_null(run(41, &src, NULL, &s, &err));
  assert_non_null(strstr(err->message, "bad.safetensors"));
  g_clear_error(&err);
  g_unlink(bad);

  /* an SD file without "sd:" is recognised; a DDPM file is not */
  assert_true(sige_regen_model_is_sd(ck_path));
  assert_true(sige_regen_model_is_sd(model));
  g_autofree gchar *ddpm = g_build_filename(g_getenv("SIGE_REFERENCE_DIR"), "ddpm-church-tiny",
                                            "weights.safetensors", NULL);
  assert_false(sige_regen_model_is_sd(ddpm));
  sige_regen_reset(1, 40);
}

static gboolean keep_none(const sige_session_entry *e, gpointer data) {
  (void)e, (void)data;
  return FALSE;
}

/* The session budget counts the models' weights, once for the sessions
 * that share them: two layers of one checkpoint and size hold the caches
 * of each plus the weights once, and a budget that holds the caches but
 * not the weights as well evicts the older session. */
static void test_budget_counts_weights(void **state) {
  (void)state;
  SigeSettings s;
  settings(&s);
  g_autofree guint8 *a = picture(W, H, 3);
  sige_pixels src = {a, W, H, 3, 8};
  GError *err = NULL;
  /* the other tests' sessions out of the way */
  sige_session_table_prune(sige_regen_sessions(), keep_none, NULL);
  for (int layer = 50; layer <= 51; layer++) {
    sige_regen_result *r = run(layer, &src, NULL, &s, &err);
    assert_non_null(r);
    sige_regen_finish(r, (sige_rect){0, 0, W, H});
  }
  /* what the parts hold, from a load of our own through the public API */
  g_autofree gchar *vocab = sige_find_data_file("bpe_simple_vocab_16e6.txt.gz");
  sige_sd_app_models m = {0};
  assert_true(sige_sd_app_load(ck_path, W, H, vocab, &m, &err));
  const size_t weights = sige_model_weight_bytes(m.unet) + sige_model_weight_bytes(m.encoder) +
                         sige_model_weight_bytes(m.decoder) + sige_model_weight_bytes(m.text);
  sige_sd_app_models_clear(&m);
  assert_true(weights > 1000000); /* the tiny checkpoint: about 7 MB of F16 */

  sige_session_table *t = sige_regen_sessions();
  sige_session_entry *e0 = sige_session_table_find(t, 1, 50);
  sige_session_entry *e1 = sige_session_table_find(t, 1, 51);
  assert_non_null(e0);
  assert_non_null(e1);
  assert_int_equal(e0->shared_bytes, weights);
  assert_ptr_equal(e0->shared, e1->shared);
  assert_int_equal(sige_session_table_size(t), 2);
  assert_int_equal(sige_session_table_bytes(t), e0->bytes + e1->bytes + weights);

  /* the caches fit, the caches and the weights do not: the older goes */
  sige_session_table_set_budget(t, e0->bytes + e1->bytes + weights - 1);
  const guint32 old_id = e0->id;
  assert_true(sige_session_table_evict(t, e1->id) >= 1);
  assert_null(sige_session_table_lookup(t, old_id));
  assert_non_null(sige_session_table_find(t, 1, 51));
  sige_regen_reset(1, 51);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_plugin_regen_sd MAKE_SD_TINY\n");
    return 2;
  }
  maker = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_img2img),
      cmocka_unit_test(test_inpaint),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_budget_counts_weights),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
