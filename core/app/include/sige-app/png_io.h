/* PNG files through libpng: any stored format in, 8-bit gray or RGB out. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* Reads any PNG (1..16-bit gray, gray+alpha, RGB, RGBA, palette, interlaced)
 * into 8-bit pixels, row-major, `*channels` bytes per pixel.
 * want_channels: 1 (gray; colour is converted with libpng's default weights),
 * 3 (RGB; gray is replicated), or 0 (as stored: 1 for gray(+alpha), 3
 * otherwise).  Alpha is dropped, 16-bit samples are scaled to 8 bits.
 * *pixels is g_malloc'ed (free with g_free).  Errors (SIGE_ERROR_IO,
 * SIGE_ERROR_FORMAT, SIGE_ERROR_NOMEM, SIGE_ERROR_INVALID) name the file. */
gboolean sige_png_read(const char *path, int want_channels, guint8 **pixels, int *width,
                       int *height, int *channels, GError **error);

/* The most pixels sige_png_read takes (64 Mi: 192 MiB as RGB); a larger
 * size in the header is refused before any row is decoded. */
#define SIGE_PNG_MAX_PIXELS ((guint64)1 << 26)

/* sige_png_read of an image that must be expect_width x expect_height (a
 * model's input; 0 x 0: any size): another size in the header is refused
 * (SIGE_ERROR_SHAPE, naming both sizes) before any row is decoded, so a
 * small compressed file never costs a large allocation. */
gboolean sige_png_read_sized(const char *path, int want_channels, int expect_width,
                             int expect_height, guint8 **pixels, int *width, int *height,
                             int *channels, GError **error);

/* sige_png_read_sized(path, 0, ...) of a label or instance map: gray files
 * keep their stored values unscaled, so that class ids and Cityscapes
 * instanceIds (class * 1000 + n) come through as they are.  1, 2, 4 and
 * 8-bit gray: one byte per pixel, *bits = 8; 16-bit gray: one host-order
 * guint16 per pixel, *bits = 16.  Colour and palette files read as 8-bit
 * RGB (*bits = 8), as sige_png_read_sized reads them. */
gboolean sige_png_read_index_map(const char *path, int expect_width, int expect_height,
                                 guint8 **pixels, int *width, int *height, int *channels,
                                 int *bits, GError **error);

/* Whether sige_png_write could write `path` (its folder exists and takes a
 * new file; path is not a folder), checked before any computation so that a
 * bad output path costs nothing.  Nothing is left behind. */
gboolean sige_png_check_writable(const char *path, GError **error);

/* Writes 8-bit gray (channels 1) or RGB (channels 3) pixels.  The data goes
 * to a temporary file in the same folder that is renamed over `path` only
 * once complete, so a failure never leaves a half-written file.  The output
 * holds no timestamp: the same pixels give the same bytes. */
gboolean sige_png_write(const char *path, const guint8 *pixels, int width, int height,
                        int channels, GError **error);

G_END_DECLS
