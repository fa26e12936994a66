/* Where the bytes of weight index entries live.
 *
 * Files are read with pread rather than mapped: the bytes are copied once,
 * into the model's own tensors, so a mapping would save nothing, while its
 * pages would count in the resident set next to those tensors (twice the
 * model at peak for F32 files), and a file truncated by someone else after
 * it was opened would raise SIGBUS at the first touch of a lost page.  With
 * pread the same truncation is a short read, reported as an error. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "sige/error.h"
#include "weights_internal.h"

struct sige_weights_source {
  gint refs;
  int fd;       /* -1 for a buffer */
  GBytes *bytes; /* NULL for a file */
  guint64 size;
};

sige_weights_source *sige_weights_source_open(const char *path, GError **error) {
  int fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);
  struct stat st;
  int err = 0;
  const char *why = NULL;
  if (fd < 0 || fstat(fd, &st) != 0)
    err = errno;
  else if (!S_ISREG(st.st_mode))
    why = "not a regular file";
  if (err || why) {
    if (fd >= 0) close(fd);
    g_autofree char *disp = g_filename_display_name(path);
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot open: %s", disp,
                why ? why : g_strerror(err));
    return NULL;
  }
  sige_weights_source *s = g_new0(sige_weights_source, 1);
  s->refs = 1;
  s->fd = fd;
  s->size = (guint64)st.st_size;
  return s;
}

sige_weights_source *sige_weights_source_new_bytes(GBytes *bytes) {
  sige_weights_source *s = g_new0(sige_weights_source, 1);
  s->refs = 1;
  s->fd = -1;
  s->bytes = g_bytes_ref(bytes);
  s->size = g_bytes_get_size(bytes);
  return s;
}

sige_weights_source *sige_weights_source_ref(sige_weights_source *s) {
  if (s) g_atomic_int_inc(&s->refs);
  return s;
}

void sige_weights_source_unref(sige_weights_source *s) {
  if (!s || !g_atomic_int_dec_and_test(&s->refs)) return;
  if (s->fd >= 0) close(s->fd);
  if (s->bytes) g_bytes_unref(s->bytes);
  g_free(s);
}

guint64 sige_weights_source_size(const sige_weights_source *s) { return s->size; }

const guint8 *sige_weights_source_peek(const sige_weights_source *s) {
  return s->bytes ? g_bytes_get_data(s->bytes, NULL) : NULL;
}

gboolean sige_weights_source_read(const sige_weights_source *s, guint64 offset, void *dst,
                                  gsize n, const char *file, const char *tensor,
                                  GError **error) {
  if (offset > s->size || n > s->size - offset) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: tensor '%s': bytes [%" G_GUINT64_FORMAT ", +%" G_GSIZE_FORMAT
                ") lie outside the %" G_GUINT64_FORMAT " bytes of the file",
                file, tensor, offset, n, s->size);
    return FALSE;
  }
  if (s->bytes) {
    memcpy(dst, (const guint8 *)g_bytes_get_data(s->bytes, NULL) + offset, n);
    return TRUE;
  }
  guint8 *p = dst;
  while (n > 0) {
    /* pread returns at most about 2 GiB per call on Linux: loop */
    ssize_t got = pread(s->fd, p, MIN(n, (gsize)1 << 30), (off_t)offset);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      int err = errno;
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO,
                  "%s: tensor '%s': cannot read %" G_GSIZE_FORMAT " bytes at offset %"
                  G_GUINT64_FORMAT ": %s", file, tensor, n, offset,
                  got < 0 ? g_strerror(err) : "the file became shorter since it was opened");
      return FALSE;
    }
    p += got;
    n -= (gsize)got;
    offset += (guint64)got;
  }
  return TRUE;
}
