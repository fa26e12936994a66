/* Images <-> model tensors (sige-app/pixels.h, image_files.h): palette
 * mapping, picture range, output rounding, the size checks, and round trips
 * through pixels and PNG files. */
#include "test_util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <png.h>
#include <string.h>

#include "app_test_models.h"
#include "sige-app/image_files.h"
#include "sige-app/palette.h"
#include "sige-app/pixels.h"
#include "sige-app/png_io.h"
#include "sige/error.h"

static void test_labels_rgb(void **state) {
  (void)state;
  const sige_palette *p = sige_palette_cityscapes();
  /* road (7), sky (23), and a colour one off sky */
  guint8 px[4 * 3];
  memcpy(px, p->entries[7].rgb, 3);
  memcpy(px + 3, p->entries[23].rgb, 3);
  memcpy(px + 6, p->entries[23].rgb, 3);
  memcpy(px + 9, p->entries[23].rgb, 3);
  px[11] ^= 1;
  sige_pixels in = {px, 2, 2, 3, 8};
  int64_t nearest = -1;
  g_autofree int32_t *l = sige_labels_from_pixels(&in, 35, &nearest, NULL);
  assert_non_null(l);
  assert_int_equal(l[0], 7);
  assert_int_equal(l[1], 23);
  assert_int_equal(l[3], 23);
  assert_int_equal(nearest, 1);
}


static void test_labels_rgba_and_gray(void **state) {
  (void)state;
  const sige_palette *p = sige_palette_cityscapes();
  guint8 px[2 * 4] = {0};
  memcpy(px, p->entries[26].rgb, 3);
  px[3] = 0; /* alpha does not matter */
  memcpy(px + 4, p->entries[11].rgb, 3);
  px[7] = 255;
  sige_pixels in = {px, 2, 1, 4, 8};
  int64_t nearest = -1;
  g_autofree int32_t *l = sige_labels_from_pixels(&in, 35, &nearest, NULL);
  assert_int_equal(l[0], 26);
  assert_int_equal(l[1], 11);
  assert_int_equal(nearest, 0);
  guint8 gray[3] = {0, 5, 34};
  sige_pixels g = {gray, 3, 1, 1, 8};
  g_autofree int32_t *lg = sige_labels_from_pixels(&g, 35, NULL, NULL);
  assert_int_equal(lg[2], 34);
  gray[2] = 40;
  GError *err = NULL;
  assert_null(sige_labels_from_pixels(&g, 35, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_FORMAT));
  assert_non_null(strstr(err->message, "(2, 0)"));
  g_error_free(err);
}


static void test_output_rounding(void **state) {
  (void)state;
  g_autoptr(sige_tensor) t = sige_tensor_new4(1, 3, 2, 3, NULL);
  const float vals[6] = {-1.5f, -1.0f, 0.0f, 0.00392f, 1.0f, 2.0f};
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 6; i++) t->data[c * 6 + i] = vals[i];
  guint8 out[6 * 4];
  assert_true(sige_pixels_from_output(t, (sige_rect){0, 0, 3, 2}, 4, out, NULL));
  for (int i = 0; i < 6; i++) {
    float v = (vals[i] + 1.0f) * 127.5f;
    v = v < 0 ? 0 : v > 255 ? 255 : v;
    assert_int_equal(out[i * 4], (int)lrintf(v));
    assert_int_equal(out[i * 4 + 3], 255);
  }
  /* a sub-rectangle, gray */
  guint8 g[2];
  assert_true(sige_pixels_from_output(t, (sige_rect){1, 1, 2, 1}, 1, g, NULL));
  assert_int_equal(g[0], out[4 * 4]);
  assert_false(sige_pixels_from_output(t, (sige_rect){2, 1, 2, 1}, 3, g, NULL));
}


static void test_image_pixels(void **state) {
  (void)state;
  /* RGBA: alpha ignored; the CLI's v / 127.5 - 1 */
  guint8 rgba[2 * 4] = {0, 255, 128, 7, 10, 20, 30, 0};
  sige_pixels in = {rgba, 2, 1, 4, 8};
  g_autoptr(sige_tensor) t = sige_image_from_pixels(&in, NULL);
  assert_non_null(t);
  assert_int_equal(SIGE_C(t), 3);
  assert_int_equal(SIGE_W(t), 2);
  assert_float_equal(t->data[0], -1.0f, 0);
  assert_float_equal(t->data[2], 1.0f, 0);     /* G of pixel 0 */
  assert_float_equal(t->data[4], 128 / 127.5f - 1.0f, 0);
  assert_float_equal(t->data[5], 30 / 127.5f - 1.0f, 0);
  /* gray (+ alpha): replicated into the three channels */
  guint8 ga[2 * 2] = {51, 0, 204, 255};
  sige_pixels g = {ga, 2, 1, 2, 8};
  g_autoptr(sige_tensor) tg = sige_image_from_pixels(&g, NULL);
  for (int c = 0; c < 3; c++) {
    assert_float_equal(tg->data[c * 2], 51 / 127.5f - 1.0f, 0);
    assert_float_equal(tg->data[c * 2 + 1], 204 / 127.5f - 1.0f, 0);
  }
  /* and back: the output rounding gives the pixels again */
  guint8 back[2 * 3];
  assert_true(sige_pixels_from_output(t, (sige_rect){0, 0, 2, 1}, 3, back, NULL));
  const guint8 want[6] = {0, 255, 128, 10, 20, 30};
  assert_memory_equal(back, want, 6);
}

/* A DDPM UNet small enough to build in a unit test (random weights). */

static void test_ddpm_input(void **state) {
  (void)state;
  g_autoptr(sige_model) m = app_test_ddpm();
  assert_int_equal(sige_model_input_kind(m, NULL), SIGE_INPUT_IMAGE);
  GError *err = NULL;
  /* the input: the layer's pixels, at the model's size only */
  g_autofree guint8 *px = g_malloc0(33 * 32 * 3);
  sige_pixels bad = {px, 33, 32, 3, 8};
  assert_null(sige_model_input_from_pixels(m, &bad, NULL, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  assert_non_null(strstr(err->message, "33 x 32"));
  assert_non_null(strstr(err->message, "32 x 32"));
  g_clear_error(&err);
  sige_pixels good = {px, 32, 32, 1, 8};
  g_autoptr(sige_tensor) in = sige_model_input_from_pixels(m, &good, NULL, NULL, &err);
  assert_non_null(in);
  assert_int_equal(SIGE_C(in), 3);
  assert_float_equal(in->data[0], -1.0f, 0);
}

/* Every setting the per-step caches depend on voids the snapshot; the
 * options come from the app layer's rules. */

/* A label map: the size check names both sizes, the semantic input is one-hot
 * over the model's classes, and the instance map must match the label map. */
static void test_label_input(void **state) {
  (void)state;
  g_autoptr(sige_model) m = app_test_gaugan();
  GError *err = NULL;
  int64_t s[4];
  sige_model_input_shape(m, s);
  const int W = (int)s[3], H = (int)s[2];
  g_autofree guint8 *px = g_malloc0((size_t)(W + 1) * H * 3);
  sige_pixels bad = {px, W + 1, H, 3, 8};
  assert_null(sige_model_input_from_pixels(m, &bad, NULL, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  g_autofree char *want = g_strdup_printf("%d x %d", W, H);
  assert_non_null(strstr(err->message, want));
  g_clear_error(&err);
  /* road everywhere, one sky pixel */
  const sige_palette *p = sige_palette_cityscapes();
  for (int i = 0; i < W * H; i++) memcpy(px + 3 * i, p->entries[7].rgb, 3);
  memcpy(px + 3 * (W + 2), p->entries[23].rgb, 3);
  sige_pixels good = {px, W, H, 3, 8};
  sige_input_report rep = {-1, -1, -1};
  g_autoptr(sige_tensor) in = sige_model_input_from_pixels(m, &good, NULL, &rep, &err);
  assert_non_null(in);
  assert_int_equal(rep.n_nearest, 0);
  assert_int_equal(rep.n_pixels, (int64_t)W * H);
  assert_int_equal(SIGE_W(in), W);
  assert_int_equal(SIGE_H(in), H);
  const size_t plane = (size_t)W * H;
  assert_float_equal(in->data[7 * plane], 1.0f, 0);
  assert_float_equal(in->data[23 * plane], 0.0f, 0);
  assert_float_equal(in->data[23 * plane + W + 2], 1.0f, 0);
  /* an instance map of another size */
  guint8 one[3] = {0, 0, 0};
  sige_pixels inst = {one, 1, 1, 3, 8};
  const sige_spade_config *cfg = sige_model_spade_config(m);
  if (cfg->contain_instance) {
    assert_null(sige_model_input_from_pixels(m, &good, &inst, NULL, &err));
    assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
    assert_non_null(strstr(err->message, "instance map is 1 x 1"));
    g_clear_error(&err);
  }
}

/* A photo given as a label map is refused before any pass, with how many
 * pixels are far from the palette; a real label map passes even with soft
 * edges: the shipped street map blurred (3x3 box, twice), and one half
 * far exactly (the limit is "more than half"). */
static void test_photo_refused(void **state) {
  (void)state;
  g_autoptr(sige_model) m = app_test_gaugan();
  int64_t s[4];
  sige_model_input_shape(m, s);
  const int W = (int)s[3], H = (int)s[2];
  const size_t n = (size_t)W * H;
  g_autofree guint8 *px = g_malloc(n * 3);
  /* a gradient photo: every colour at least 25 levels from the palette? the
   * count is checked against a brute-force distance below */
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      guint8 *p = px + 3 * ((size_t)y * W + x);
      p[0] = (guint8)(30 + x * 200 / W), p[1] = (guint8)(200 - y * 150 / H), p[2] = 225;
    }
  const sige_palette *pal = sige_palette_cityscapes();
  int64_t want = 0;
  for (size_t i = 0; i < n; i++) {
    int best = G_MAXINT;
    for (int k = 0; k < pal->n; k++) {
      int d = 0;
      for (int c = 0; c < 3; c++) d += (px[3 * i + c] - pal->entries[k].rgb[c]) *
                                       (px[3 * i + c] - pal->entries[k].rgb[c]);
      best = MIN(best, d);
    }
    want += best > SIGE_LABEL_FAR_DISTANCE * SIGE_LABEL_FAR_DISTANCE;
  }
  assert_true(want > (int64_t)n * 9 / 10);
  sige_pixels photo = {px, W, H, 3, 8};
  assert_int_equal(sige_labels_count_far(&photo), want);
  /* what a layer with no model chosen gets: the picture model */
  assert_int_equal(sige_pixels_guess_input_kind(&photo), SIGE_INPUT_IMAGE);
  assert_string_equal(sige_default_model_name(SIGE_INPUT_IMAGE), "ddpm-church.safetensors");
  const sige_pixels as_gray = {px, W, H, 1, 8}; /* gray values are class ids */
  assert_int_equal(sige_pixels_guess_input_kind(&as_gray), SIGE_INPUT_LABELS);
  sige_input_report rep = {-1, -1, -1};
  GError *err = NULL;
  assert_null(sige_model_input_from_pixels(m, &photo, NULL, &rep, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_FORMAT));
  g_autofree char *count = g_strdup_printf("%" G_GINT64_FORMAT " of its %zu pixels (%.0f %%)",
                                           want, n, 100.0 * want / n);
  if (!strstr(err->message, count)) fail_msg("%s lacks \"%s\"", err->message, count);
  assert_non_null(strstr(err->message, "DDPM"));
  assert_int_equal(rep.n_far, want);
  g_clear_error(&err);

  /* exactly half far: accepted, every far pixel counted as nearest */
  const sige_palette_entry *road = &pal->entries[7];
  for (size_t i = 0; i < n; i++) {
    guint8 *p = px + 3 * i;
    if (i < n / 2) memcpy(p, road->rgb, 3);
    else p[0] = 255, p[1] = 255, p[2] = 255; /* 127 levels from parking */
  }
  {
    g_autoptr(sige_tensor) t = sige_model_input_from_pixels(m, &photo, NULL, &rep, &err);
    if (!t) fail_msg("%s", err->message);
    assert_int_equal(rep.n_far, (int64_t)(n - n / 2));
    /* half far is still a label map, and gets the label model */
    assert_int_equal(sige_pixels_guess_input_kind(&photo), SIGE_INPUT_LABELS);
    assert_string_equal(sige_default_model_name(SIGE_INPUT_LABELS), "gaugan-street.safetensors");
    assert_int_equal(rep.n_nearest, (int64_t)(n - n / 2));
  }
  px[3 * (n / 2 - 1)] = 255, px[3 * (n / 2 - 1) + 1] = 255, px[3 * (n / 2 - 1) + 2] = 255;
  assert_null(sige_model_input_from_pixels(m, &photo, NULL, NULL, &err));
  g_clear_error(&err);

  /* the shipped label map with soft edges everywhere */
  g_autofree guint8 *lab = NULL;
  int lw, lh, lc;
  assert_true(sige_png_read(SIGE_SOURCE_DIR "/data/examples/street_labels.png", 3, &lab, &lw, &lh,
                            &lc, NULL));
  assert_int_equal(lw, W);
  assert_int_equal(lh, H);
  g_autofree guint8 *tmp = g_malloc(n * 3);
  for (int pass = 0; pass < 2; pass++) {
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        for (int c = 0; c < 3; c++) {
          int sum = 0, cnt = 0;
          for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
              const int yy = y + dy, xx = x + dx;
              if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
              sum += lab[3 * ((size_t)yy * W + xx) + c], cnt++;
            }
          tmp[3 * ((size_t)y * W + x) + c] = (guint8)((sum + cnt / 2) / cnt);
        }
    memcpy(lab, tmp, n * 3);
  }
  sige_pixels soft = {lab, W, H, 3, 8};
  g_autoptr(sige_tensor) t = sige_model_input_from_pixels(m, &soft, NULL, &rep, &err);
  if (!t) fail_msg("%s", err->message);
  assert_true(rep.n_far > 0);                 /* the edges are soft ... */
  assert_true(rep.n_far < (int64_t)n / 10);   /* ... and few */
  print_message("# blurred street map: %.1f %% far, %.1f %% nearest\n", 100.0 * rep.n_far / n,
                100.0 * rep.n_nearest / n);
}

/* Pixels -> model range -> PNG file -> pixels again, for RGB and gray. */
/* A gray PNG of any bit depth with the given values, unscaled (libpng's
 * low-level API: the simplified one writes neither 4-bit nor raw 16-bit). */
static void write_gray_png(const char *path, int w, int h, int depth, const guint16 *v) {
  FILE *fp = g_fopen(path, "wb");
  assert_non_null(fp);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  assert_false(setjmp(png_jmpbuf(png)));
  png_init_io(png, fp);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const size_t row_bytes = depth == 16 ? 2 * (size_t)w : ((size_t)w * depth + 7) / 8;
  g_autofree guint8 *row = g_new0(guint8, row_bytes);
  for (int y = 0; y < h; y++) {
    memset(row, 0, row_bytes);
    for (int x = 0; x < w; x++) {
      const guint16 val = v[(size_t)y * w + x];
      if (depth == 16) {
        row[2 * x] = (guint8)(val >> 8), row[2 * x + 1] = (guint8)val;
      } else { /* big-endian bit order within a byte, as the PNG format packs */
        const int per = 8 / depth, shift = (per - 1 - x % per) * depth;
        row[x / per] |= (guint8)((val & ((1 << depth) - 1)) << shift);
      }
    }
    png_write_row(png, row);
  }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  fclose(fp);
}

/* Gray label and instance maps are ids at any bit depth: 16-bit class ids
 * and Cityscapes instanceIds (class * 1000 + n) must not be scaled to 8
 * bits (that made every class 0 and merged the instances), nor 4-bit ids
 * expanded to 0..255 (id 7 became 119). */
static void test_index_maps(void **state) {
  (void)state;
  g_autoptr(sige_model) m = app_test_gaugan(); /* 512 x 256, 35 labels + edges */
  g_autofree char *dir = g_dir_make_tmp("sige-app-XXXXXX", NULL);
  g_autofree char *lab_path = g_build_filename(dir, "labels.png", NULL);
  g_autofree char *inst_path = g_build_filename(dir, "instances.png", NULL);
  const int W = 512, H = 256;
  g_autofree guint16 *lab = g_new(guint16, W * H), *inst = g_new(guint16, W * H);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      lab[y * W + x] = x < 256 ? 7 : (x < 384 ? 13 : 11); /* road | fence | building: 4-bit ids */
      inst[y * W + x] = x < 256 ? 7 : (x < 384 ? 26001 : 26002);
    }
  write_gray_png(inst_path, W, H, 16, inst);
  for (int depth = 4; depth <= 16; depth *= 2) {
    write_gray_png(lab_path, W, H, depth, lab);
    GError *err = NULL;
    g_autoptr(sige_tensor) t = sige_model_input_from_png(m, lab_path, inst_path, NULL, &err);
    if (!t) fail_msg("%d-bit: %s", depth, err->message);
    const size_t plane = (size_t)W * H;
    assert_float_equal(t->data[7 * plane + 10 * W + 100], 1.0f, 0);
    assert_float_equal(t->data[13 * plane + 10 * W + 300], 1.0f, 0);
    assert_float_equal(t->data[11 * plane + 10 * W + 450], 1.0f, 0);
    assert_float_equal(t->data[0 * plane + 10 * W + 100], 0.0f, 0);
    const float *edge = t->data + 35 * plane;
    /* the two instances of the 16-bit instance map meet at x = 383 | 384 */
    assert_float_equal(edge[10 * W + 383], 1.0f, 0);
    assert_float_equal(edge[10 * W + 384], 1.0f, 0);
    assert_float_equal(edge[10 * W + 300], 0.0f, 0);
  }
  /* an id the model does not know is refused, naming the pixel */
  lab[5 * W + 9] = 4000;
  write_gray_png(lab_path, W, H, 16, lab);
  GError *err = NULL;
  assert_null(sige_model_input_from_png(m, lab_path, NULL, NULL, &err));
  assert_non_null(strstr(err->message, "(9, 5)"));
  assert_non_null(strstr(err->message, "4000"));
  g_clear_error(&err);
  g_unlink(lab_path);
  g_unlink(inst_path);
  g_rmdir(dir);
}

static void test_png_round_trip(void **state) {
  (void)state;
  g_autoptr(sige_model) m = app_test_ddpm(); /* a 32 x 32 picture model */
  g_autofree char *dir = g_dir_make_tmp("sige-app-XXXXXX", NULL);
  assert_non_null(dir);
  g_autofree char *in_path = g_build_filename(dir, "in.png", NULL);
  g_autofree char *out_path = g_build_filename(dir, "out.png", NULL);
  guint8 rgb[32 * 32 * 3];
  for (int i = 0; i < 32 * 32 * 3; i++) rgb[i] = (guint8)(i * 37 + 11);
  for (int channels = 1; channels <= 3; channels += 2) {
    assert_true(sige_png_write(in_path, rgb, 32, 32, channels, NULL));
    GError *err = NULL;
    g_autoptr(sige_tensor) t = sige_model_input_from_png(m, in_path, NULL, NULL, &err);
    if (!t) fail_msg("%s", err->message);
    assert_true(sige_output_write_png(t, out_path, &err));
    g_autofree guint8 *back = NULL;
    int w, h, ch;
    assert_true(sige_png_read(out_path, 3, &back, &w, &h, &ch, NULL));
    assert_int_equal(w, 32);
    assert_int_equal(h, 32);
    for (int i = 0; i < 32 * 32; i++)
      for (int c = 0; c < 3; c++)
        assert_int_equal(back[3 * i + c], rgb[channels == 1 ? i : 3 * i + c]);
  }
  /* errors name the file */
  GError *err = NULL;
  g_autofree char *missing = g_build_filename(dir, "missing.png", NULL);
  assert_null(sige_model_input_from_png(m, missing, NULL, NULL, &err));
  assert_non_null(strstr(err->message, "missing.png"));
  g_clear_error(&err);
  guint8 small[4 * 4 * 3] = {0};
  assert_true(sige_png_write(in_path, small, 4, 4, 3, NULL));
  assert_null(sige_model_input_from_png(m, in_path, NULL, NULL, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  assert_non_null(strstr(err->message, "in.png: "));
  g_clear_error(&err);
  g_unlink(in_path);
  g_unlink(out_path);
  g_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_labels_rgb),     cmocka_unit_test(test_labels_rgba_and_gray),
      cmocka_unit_test(test_output_rounding), cmocka_unit_test(test_image_pixels),
      cmocka_unit_test(test_ddpm_input),     cmocka_unit_test(test_label_input),
      cmocka_unit_test(test_png_round_trip), cmocka_unit_test(test_photo_refused),
      cmocka_unit_test(test_index_maps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
