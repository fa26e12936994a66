/* PNG reading and writing with libpng.  libpng reports errors by longjmp;
 * each setjmp lives in a small function whose state is kept in a struct
 * owned by the caller, so nothing touched after setjmp is an automatic
 * variable of that function (those would be indeterminate after longjmp). */
#include "sige-app/png_io.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sige/error.h"

typedef struct {
  png_structp png;
  png_infop info;
  FILE *fp;
  guint8 *pixels;
  png_bytep *rows;
  int expect_width, expect_height; /* 0: any size up to SIGE_PNG_MAX_PIXELS */
  gboolean size_refused;           /* the header's size was refused (s->msg) */
  gboolean keep_values;            /* gray samples unscaled (index maps) */
  int bits;                        /* out: 8, or 16 for an unscaled 16-bit gray map */
  char msg[256];
} png_state;

static void on_png_error(png_structp png, png_const_charp msg) {
  png_state *s = png_get_error_ptr(png);
  g_strlcpy(s->msg, msg ? msg : "unknown libpng error", sizeof s->msg);
  png_longjmp(png, 1);
}

/* Warnings (unknown chunks, bad gamma, ...) do not stop a read. */
static void on_png_warning(png_structp png, png_const_charp msg) {
  (void)png;
  g_debug("libpng: %s", msg);
}

static gboolean alloc_rows(png_state *s, int width, int height, int channels) {
  const size_t stride = (size_t)width * (size_t)channels;
  if ((size_t)height > G_MAXSIZE / stride) return FALSE;
  s->pixels = g_try_malloc(stride * (size_t)height);
  s->rows = g_try_new(png_bytep, (size_t)height);
  if (!s->pixels || !s->rows) return FALSE;
  for (int y = 0; y < height; y++) s->rows[y] = s->pixels + (size_t)y * stride;
  return TRUE;
}

/* Returns 0 on success, 1 on a libpng error (s->msg), 2 when out of memory. */
static int read_body(png_state *s, int want, int *width, int *height, int *channels) {
  if (setjmp(png_jmpbuf(s->png))) return 1;
  png_init_io(s->png, s->fp);
  png_set_sig_bytes(s->png, 8);
  /* A small file must not make a large allocation: text and other
   * ancillary chunks are skipped (their contents, compressed or not, are
   * never needed), any chunk libpng keeps is bounded, and the size in the
   * header is checked before a row is decoded. */
  static const png_byte text_chunks[] = "tEXt\0zTXt\0iTXt";
  png_set_keep_unknown_chunks(s->png, PNG_HANDLE_CHUNK_NEVER, text_chunks, 3);
  png_set_chunk_malloc_max(s->png, (png_alloc_size_t)1 << 20);
  png_set_chunk_cache_max(s->png, 256);
  png_read_info(s->png, s->info);
  {
    const png_uint_32 hw = png_get_image_width(s->png, s->info);
    const png_uint_32 hh = png_get_image_height(s->png, s->info);
    if (s->expect_width > 0 &&
        (hw != (png_uint_32)s->expect_width || hh != (png_uint_32)s->expect_height)) {
      g_snprintf(s->msg, sizeof s->msg,
                 "the image is %u x %u pixels but the model expects %d x %d. Scale it or choose "
                 "a model trained for this size",
                 (unsigned)hw, (unsigned)hh, s->expect_width, s->expect_height);
      s->size_refused = TRUE;
      return 1;
    }
    if ((guint64)hw * hh > SIGE_PNG_MAX_PIXELS) {
      g_snprintf(s->msg, sizeof s->msg,
                 "the image is %u x %u pixels, more than the %u megapixels this reader takes",
                 (unsigned)hw, (unsigned)hh, (unsigned)(SIGE_PNG_MAX_PIXELS >> 20));
      s->size_refused = TRUE;
      return 1;
    }
  }

  const int color = png_get_color_type(s->png, s->info);
  const gboolean stored_gray = (color & PNG_COLOR_MASK_COLOR) == 0;
  const int out = want ? want : (stored_gray ? 1 : 3);

  const int depth = png_get_bit_depth(s->png, s->info);
  /* an index map's gray values are ids: 1..8-bit samples one byte each and
   * 16-bit ones as host-order guint16, none scaled */
  const gboolean ids = s->keep_values && stored_gray && color != PNG_COLOR_TYPE_PALETTE;
  s->bits = ids && depth == 16 ? 16 : 8;
  if (ids) {
    if (depth < 8) png_set_packing(s->png);
    if (depth == 16 && G_BYTE_ORDER == G_LITTLE_ENDIAN) png_set_swap(s->png);
  } else {
    /* normalise everything to 8-bit gray or RGB without alpha */
    png_set_expand(s->png); /* palette -> RGB, low-bit gray -> 8 bits, tRNS -> alpha */
    png_set_scale_16(s->png);
  }
  png_set_strip_alpha(s->png);
  if (stored_gray && out == 3) png_set_gray_to_rgb(s->png);
  if (!stored_gray && out == 1)
    png_set_rgb_to_gray_fixed(s->png, 1, -1, -1); /* -1: libpng's default weights */
  const int passes = png_set_interlace_handling(s->png);
  (void)passes; /* png_read_image runs every pass itself */
  png_read_update_info(s->png, s->info);

  const int w = (int)png_get_image_width(s->png, s->info);
  const int h = (int)png_get_image_height(s->png, s->info);
  if (png_get_channels(s->png, s->info) != out || png_get_bit_depth(s->png, s->info) != s->bits) {
    g_snprintf(s->msg, sizeof s->msg, "unexpected layout after conversion (%d channels, %d bits)",
               png_get_channels(s->png, s->info), png_get_bit_depth(s->png, s->info));
    return 1;
  }
  const int bytes = out * (s->bits / 8);
  if (png_get_rowbytes(s->png, s->info) != (size_t)w * (size_t)bytes) {
    g_strlcpy(s->msg, "unexpected row size after conversion", sizeof s->msg);
    return 1;
  }
  if (!alloc_rows(s, w, h, bytes)) return 2;
  png_read_image(s->png, s->rows);
  png_read_end(s->png, NULL);
  *width = w;
  *height = h;
  *channels = out;
  return 0;
}

gboolean sige_png_read(const char *path, int want_channels, guint8 **pixels, int *width,
                       int *height, int *channels, GError **error) {
  return sige_png_read_sized(path, want_channels, 0, 0, pixels, width, height, channels, error);
}

static gboolean read_file(const char *path, int want_channels, int expect_width, int expect_height,
                          gboolean keep_values, guint8 **pixels, int *width, int *height,
                          int *channels, int *bits, GError **error) {
  g_return_val_if_fail(path && pixels && width && height && channels, FALSE);
  *pixels = NULL;
  if (want_channels != 0 && want_channels != 1 && want_channels != 3) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "%s: cannot read a PNG as %d channels (1, 3 or 0 for as stored)", path,
                want_channels);
    return FALSE;
  }
  png_state s = {.expect_width = expect_width > 0 && expect_height > 0 ? expect_width : 0,
                 .expect_height = expect_height,
                 .keep_values = keep_values};
  s.fp = g_fopen(path, "rb");
  if (!s.fp) {
    int e = errno;
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot open: %s", path, g_strerror(e));
    return FALSE;
  }
  png_byte sig[8];
  if (fread(sig, 1, sizeof sig, s.fp) != sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
    gboolean io = ferror(s.fp) != 0;
    fclose(s.fp);
    g_set_error(error, SIGE_ERROR, io ? SIGE_ERROR_IO : SIGE_ERROR_FORMAT,
                io ? "%s: read error" : "%s: not a PNG file", path);
    return FALSE;
  }
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, on_png_error, on_png_warning);
  if (s.png) s.info = png_create_info_struct(s.png);
  int rc = 2;
  if (s.png && s.info) rc = read_body(&s, want_channels, width, height, channels);
  png_destroy_read_struct(s.png ? &s.png : NULL, s.info ? &s.info : NULL, NULL);
  fclose(s.fp);
  g_free(s.rows);
  if (rc != 0) {
    g_free(s.pixels);
    if (rc == 2)
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "%s: out of memory reading the image",
                  path);
    else if (s.size_refused)
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE, "%s: %s", path, s.msg);
    else
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: invalid PNG: %s", path, s.msg);
    return FALSE;
  }
  *pixels = s.pixels;
  if (bits) *bits = s.bits;
  return TRUE;
}

gboolean sige_png_read_sized(const char *path, int want_channels, int expect_width,
                             int expect_height, guint8 **pixels, int *width, int *height,
                             int *channels, GError **error) {
  return read_file(path, want_channels, expect_width, expect_height, FALSE, pixels, width, height,
                   channels, NULL, error);
}

gboolean sige_png_read_index_map(const char *path, int expect_width, int expect_height,
                                 guint8 **pixels, int *width, int *height, int *channels,
                                 int *bits, GError **error) {
  g_return_val_if_fail(bits, FALSE);
  return read_file(path, 0, expect_width, expect_height, TRUE, pixels, width, height, channels,
                   bits, error);
}

static int write_body(png_state *s, const guint8 *pixels, int width, int height, int channels) {
  if (setjmp(png_jmpbuf(s->png))) return 1;
  png_init_io(s->png, s->fp);
  /* fixed settings (and no tIME chunk) keep the output byte-identical */
  png_set_compression_level(s->png, 9);
  png_set_IHDR(s->png, s->info, (png_uint_32)width, (png_uint_32)height, 8,
               channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(s->png, s->info);
  const size_t stride = (size_t)width * (size_t)channels;
  for (int y = 0; y < height; y++)
    png_write_row(s->png, (png_const_bytep)(pixels + (size_t)y * stride));
  png_write_end(s->png, NULL);
  return 0;
}

gboolean sige_png_check_writable(const char *path, GError **error) {
  g_return_val_if_fail(path, FALSE);
  /* the same temporary file sige_png_write makes, made and removed now */
  g_autofree char *tmp = g_strdup_printf("%s.XXXXXX", path);
  int fd = g_mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot write there: %s", path,
                g_strerror(e));
    return FALSE;
  }
  close(fd);
  g_unlink(tmp);
  if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: is a folder; give a file name", path);
    return FALSE;
  }
  return TRUE;
}

gboolean sige_png_write(const char *path, const guint8 *pixels, int width, int height,
                        int channels, GError **error) {
  g_return_val_if_fail(path && pixels, FALSE);
  if ((channels != 1 && channels != 3) || width <= 0 || height <= 0 ||
      width > (int)PNG_USER_WIDTH_MAX || height > (int)PNG_USER_HEIGHT_MAX) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "%s: cannot write a %dx%d image with %d channels (1 or 3)", path, width, height,
                channels);
    return FALSE;
  }
  g_autofree char *tmp = g_strdup_printf("%s.XXXXXX", path);
  int fd = g_mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot create a temporary file: %s", path,
                g_strerror(e));
    return FALSE;
  }
  /* mkstemp makes the file private; an image is an ordinary document */
  if (fchmod(fd, 0644) != 0) g_debug("%s: fchmod failed", tmp);
  png_state s = {0};
  s.fp = fdopen(fd, "wb");
  if (!s.fp) {
    int e = errno;
    close(fd);
    g_unlink(tmp);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: %s", path, g_strerror(e));
    return FALSE;
  }
  s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s, on_png_error, on_png_warning);
  if (s.png) s.info = png_create_info_struct(s.png);
  int rc = 2;
  if (s.png && s.info) rc = write_body(&s, pixels, width, height, channels);
  png_destroy_write_struct(s.png ? &s.png : NULL, s.info ? &s.info : NULL);
  int e = 0;
  if (rc == 0 && (fflush(s.fp) != 0 || fsync(fileno(s.fp)) != 0)) e = errno;
  if (fclose(s.fp) != 0 && rc == 0 && e == 0) e = errno;
  if (rc == 0 && e == 0 && g_rename(tmp, path) != 0) e = errno;
  if (rc != 0 || e != 0) {
    g_unlink(tmp);
    if (rc == 1)
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot write PNG: %s", path, s.msg);
    else if (rc == 2)
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "%s: out of memory", path);
    else
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot write: %s", path, g_strerror(e));
    return FALSE;
  }
  return TRUE;
}
