/* PNG I/O: round trips, conversions between stored formats, and failures
 * that must come back as GErrors naming the file. */
#include "test_util.h"

#include <glib/gstdio.h>
#include <png.h>
#include <string.h>

#include "sige-app/png_io.h"
#include "sige/error.h"

static char *tmp_dir;

static int setup(void **state) {
  (void)state;
  tmp_dir = g_dir_make_tmp("sige-png-XXXXXX", NULL);
  return tmp_dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  GDir *d = g_dir_open(tmp_dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name(d))) {
    g_autofree char *p = g_build_filename(tmp_dir, name, NULL);
    g_unlink(p);
  }
  if (d) g_dir_close(d);
  g_rmdir(tmp_dir);
  g_free(tmp_dir);
  return 0;
}

static char *tmp_path(const char *name) { return g_build_filename(tmp_dir, name, NULL); }

static guint8 *random_pixels(size_t n, uint64_t seed) {
  sige_test_rng r = sige_test_rng_new(seed);
  guint8 *p = g_new(guint8, n);
  for (size_t i = 0; i < n; i++) p[i] = (guint8)(sige_test_rng_next(&r) >> 56);
  return p;
}

static void round_trip(int channels) {
  const int w = 37, h = 23; /* odd sizes catch stride mistakes */
  g_autofree guint8 *src = random_pixels((size_t)w * h * channels, 11 + channels);
  g_autofree char *path = tmp_path(channels == 1 ? "gray.png" : "rgb.png");
  GError *err = NULL;
  assert_true(sige_png_write(path, src, w, h, channels, &err));
  assert_null(err);
  guint8 *px = NULL;
  int rw = 0, rh = 0, rc = 0;
  assert_true(sige_png_read(path, 0, &px, &rw, &rh, &rc, &err));
  assert_int_equal(rw, w);
  assert_int_equal(rh, h);
  assert_int_equal(rc, channels);
  assert_memory_equal(px, src, (size_t)w * h * channels);
  g_free(px);
}

static void test_round_trip_gray(void **state) {
  (void)state;
  round_trip(1);
}

static void test_round_trip_rgb(void **state) {
  (void)state;
  round_trip(3);
}

static void test_overwrite_and_no_temp_left(void **state) {
  (void)state;
  g_autofree char *path = tmp_path("over.png");
  guint8 a[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, b[12] = {0};
  assert_true(sige_png_write(path, a, 2, 2, 3, NULL));
  assert_true(sige_png_write(path, b, 2, 2, 3, NULL));
  guint8 *px = NULL;
  int w, h, c;
  assert_true(sige_png_read(path, 3, &px, &w, &h, &c, NULL));
  assert_memory_equal(px, b, sizeof b);
  g_free(px);
  /* only over.png (and files of other tests) remain: no over.png.XXXXXX */
  GDir *d = g_dir_open(tmp_dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name(d))) assert_false(g_str_has_prefix(name, "over.png."));
  g_dir_close(d);
}

static void test_conversions(void **state) {
  (void)state;
  g_autofree char *path = tmp_path("conv.png");
  const guint8 gray[4] = {0, 100, 200, 255};
  assert_true(sige_png_write(path, gray, 2, 2, 1, NULL));
  guint8 *px = NULL;
  int w, h, c;
  assert_true(sige_png_read(path, 3, &px, &w, &h, &c, NULL));
  assert_int_equal(c, 3);
  for (int i = 0; i < 4; i++)
    for (int k = 0; k < 3; k++) assert_int_equal(px[3 * i + k], gray[i]);
  g_free(px);
  /* gray pixels stored as RGB come back unchanged when read as gray */
  const guint8 rgb[6] = {0, 0, 0, 77, 77, 77};
  assert_true(sige_png_write(path, rgb, 2, 1, 3, NULL));
  assert_true(sige_png_read(path, 1, &px, &w, &h, &c, NULL));
  assert_int_equal(c, 1);
  assert_int_equal(px[0], 0);
  assert_int_equal(px[1], 77);
  g_free(px);
}

/* Palette and 16-bit gray+alpha files, written with libpng's simplified API. */
static void test_other_stored_formats(void **state) {
  (void)state;
  g_autofree char *pal = tmp_path("palette.png");
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = 3;
  img.height = 1;
  img.format = PNG_FORMAT_RGB_COLORMAP;
  img.colormap_entries = 3;
  const guint8 cmap[9] = {128, 64, 128, 70, 130, 180, 0, 0, 142};
  const guint8 idx[3] = {2, 0, 1};
  assert_true(png_image_write_to_file(&img, pal, 0, idx, 0, cmap));
  guint8 *px = NULL;
  int w, h, c;
  GError *err = NULL;
  assert_true(sige_png_read(pal, 0, &px, &w, &h, &c, &err));
  assert_int_equal(c, 3);
  const guint8 want[9] = {0, 0, 142, 128, 64, 128, 70, 130, 180};
  assert_memory_equal(px, want, 9);
  g_free(px);

  g_autofree char *g16 = tmp_path("gray16.png");
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = 2;
  img.height = 1;
  img.format = PNG_FORMAT_LINEAR_Y_ALPHA;
  const guint16 ga[4] = {65535, 65535, 0, 65535};
  assert_true(png_image_write_to_file(&img, g16, 0, ga, 0, NULL));
  assert_true(sige_png_read(g16, 0, &px, &w, &h, &c, &err));
  assert_int_equal(c, 1);
  assert_int_equal(px[0], 255);
  assert_int_equal(px[1], 0);
  g_free(px);
}

static void expect_read_error(const char *path, int code) {
  guint8 *px = (guint8 *)"x";
  int w, h, c;
  GError *err = NULL;
  assert_false(sige_png_read(path, 0, &px, &w, &h, &c, &err));
  assert_null(px);
  assert_non_null(err);
  assert_true(err->domain == SIGE_ERROR);
  assert_int_equal(err->code, code);
  assert_non_null(strstr(err->message, path));
  g_error_free(err);
}

static void test_missing_file(void **state) {
  (void)state;
  g_autofree char *path = tmp_path("does-not-exist.png");
  expect_read_error(path, SIGE_ERROR_IO);
}

static void test_random_bytes(void **state) {
  (void)state;
  g_autofree char *path = tmp_path("random.png");
  g_autofree guint8 *junk = random_pixels(500, 5);
  assert_true(g_file_set_contents(path, (const char *)junk, 500, NULL));
  expect_read_error(path, SIGE_ERROR_FORMAT);
  /* a PNG signature followed by garbage */
  memcpy(junk, "\x89PNG\r\n\x1a\n", 8);
  assert_true(g_file_set_contents(path, (const char *)junk, 500, NULL));
  expect_read_error(path, SIGE_ERROR_FORMAT);
}

static void test_truncated_and_corrupt(void **state) {
  (void)state;
  const int w = 64, h = 64;
  g_autofree guint8 *src = random_pixels((size_t)w * h * 3, 9);
  g_autofree char *path = tmp_path("cut.png");
  assert_true(sige_png_write(path, src, w, h, 3, NULL));
  g_autofree char *bytes = NULL;
  gsize len = 0;
  assert_true(g_file_get_contents(path, &bytes, &len, NULL));
  const gsize cuts[] = {8, 20, 40, len / 2, len - 13};
  for (size_t i = 0; i < G_N_ELEMENTS(cuts); i++) {
    assert_true(g_file_set_contents(path, bytes, (gssize)cuts[i], NULL));
    expect_read_error(path, SIGE_ERROR_FORMAT);
  }
  /* a flipped byte inside the image data breaks its CRC */
  bytes[len / 2] ^= 0x5a;
  assert_true(g_file_set_contents(path, bytes, (gssize)len, NULL));
  expect_read_error(path, SIGE_ERROR_FORMAT);
  /* a file cut inside its signature */
  assert_true(g_file_set_contents(path, bytes, 4, NULL));
  expect_read_error(path, SIGE_ERROR_FORMAT);
}

/* The start of a PNG whose header claims w x h gray pixels (w < 65535): the
 * signature, IHDR and an IDAT holding the first row as a stored deflate
 * block, then the file ends, as in a decompression bomb cut short. */
static void write_claimed_size(const char *path, png_uint_32 w, png_uint_32 h) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  assert_true(png && info);
  const size_t n = (size_t)w + 1; /* the filter byte, then the row */
  guint8 *idat = g_malloc0(7 + n);
  idat[0] = 0x78, idat[1] = 0x01; /* zlib header, no dictionary */
  idat[2] = 0x00;                 /* a stored block, not the last */
  idat[3] = n & 0xff, idat[4] = n >> 8, idat[5] = ~n & 0xff, idat[6] = (~n >> 8) & 0xff;
  if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing %s", path);
  png_init_io(png, fp);
  png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_chunk(png, (png_const_bytep) "IDAT", idat, 7 + n);
  png_destroy_write_struct(&png, &info);
  fclose(fp);
  g_free(idat);
}

/* The size in the header is checked before anything is decoded or
 * allocated: a model's input size, else SIGE_PNG_MAX_PIXELS. */
static void test_size_checked_first(void **state) {
  (void)state;
  g_autofree char *path = tmp_path("claims.png");
  write_claimed_size(path, 60000, 60000);
  guint8 *px = NULL;
  int w, h, c;
  GError *err = NULL;
  assert_false(sige_png_read_sized(path, 0, 512, 256, &px, &w, &h, &c, &err));
  assert_null(px);
  if (!g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE)) fail_msg("%s", err->message);
  assert_non_null(strstr(err->message, path));
  assert_non_null(strstr(err->message, "60000 x 60000"));
  assert_non_null(strstr(err->message, "512 x 256"));
  g_clear_error(&err);
  assert_false(sige_png_read(path, 0, &px, &w, &h, &c, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  assert_non_null(strstr(err->message, "64 megapixels"));
  g_clear_error(&err);
  /* the expected size itself reads */
  g_autofree guint8 *src = random_pixels(8 * 4 * 3, 3);
  g_autofree char *ok = tmp_path("sized.png");
  assert_true(sige_png_write(ok, src, 8, 4, 3, NULL));
  assert_true(sige_png_read_sized(ok, 0, 8, 4, &px, &w, &h, &c, &err));
  assert_memory_equal(px, src, 8 * 4 * 3);
  g_free(px);
  assert_false(sige_png_read_sized(ok, 0, 4, 8, &px, &w, &h, &c, &err));
  assert_true(g_error_matches(err, SIGE_ERROR, SIGE_ERROR_SHAPE));
  g_clear_error(&err);
}

static void test_write_errors(void **state) {
  (void)state;
  guint8 px[3] = {1, 2, 3};
  GError *err = NULL;
  g_autofree char *bad = tmp_path("no-such-dir/x.png");
  assert_false(sige_png_write(bad, px, 1, 1, 3, &err));
  assert_int_equal(err->code, SIGE_ERROR_IO);
  assert_non_null(strstr(err->message, bad));
  g_clear_error(&err);
  g_autofree char *path = tmp_path("bad-channels.png");
  assert_false(sige_png_write(path, px, 1, 1, 2, &err));
  assert_int_equal(err->code, SIGE_ERROR_INVALID);
  g_clear_error(&err);
  assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
  guint8 *out = NULL;
  int w, h, c;
  assert_false(sige_png_read(path, 2, &out, &w, &h, &c, &err));
  assert_int_equal(err->code, SIGE_ERROR_INVALID);
  g_clear_error(&err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_gray),
      cmocka_unit_test(test_round_trip_rgb),
      cmocka_unit_test(test_overwrite_and_no_temp_left),
      cmocka_unit_test(test_conversions),
      cmocka_unit_test(test_other_stored_formats),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_size_checked_first),
      cmocka_unit_test(test_random_bytes),
      cmocka_unit_test(test_truncated_and_corrupt),
      cmocka_unit_test(test_write_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
