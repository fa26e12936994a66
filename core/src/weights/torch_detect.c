/* Which reader a file needs, told from its first bytes rather than its
 * extension (.pth, .ckpt and .bin are all used for both torch formats). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sige/error.h"
#include "torch_internal.h"

typedef enum { KIND_UNKNOWN, KIND_ZIP, KIND_PICKLE, KIND_SAFETENSORS } file_kind;

static file_kind sniff(const char *path, const char *file, GError **error, gboolean *io_ok) {
  *io_ok = FALSE;
  FILE *f = fopen(path, "rb");
  if (!f) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_IO, "%s: cannot open: %s", file, g_strerror(errno));
    return KIND_UNKNOWN;
  }
  guint8 head[9] = {0};
  size_t n = fread(head, 1, sizeof head, f);
  fclose(f);
  *io_ok = TRUE;
  if (n >= 4 && memcmp(head, "PK\x03\x04", 4) == 0) return KIND_ZIP;
  if (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5) return KIND_PICKLE;
  /* safetensors: an 8-byte little-endian header length, then '{' */
  if (n == 9 && head[8] == '{') return KIND_SAFETENSORS;
  return KIND_UNKNOWN;
}

/* torch_only: a safetensors file is refused like any other non-torch file,
 * for callers that asked for a PyTorch checkpoint by name. */
static sige_weights *load_sniffed(const char *path, gboolean torch_only, GError **error) {
  g_autofree char *file = sige_weights_display_name(path);
  gboolean io_ok;
  file_kind k = sniff(path, file, error, &io_ok);
  if (!io_ok) return NULL;
  switch (k) {
    case KIND_ZIP: return sige_torch_load_zip(path, file, error);
    case KIND_PICKLE: return sige_torch_load_legacy(path, file, error);
    case KIND_SAFETENSORS: {
      if (torch_only) break;
      sige_weights *w = sige_weights_load_safetensors(path, error);
      if (w) sige_weights_set_metadata(w, "sige.source.format", "safetensors");
      return w;
    }
    case KIND_UNKNOWN: break;
  }
  if (torch_only)
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: not a PyTorch checkpoint (neither a zip file nor a pickle)", file);
  else
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: unknown weights format (expected safetensors, or a PyTorch .pth/.ckpt/.bin "
                "checkpoint in zip or legacy form)", file);
  return NULL;
}

sige_weights *sige_weights_load_torch(const char *path, GError **error) {
  g_return_val_if_fail(path != NULL, NULL);
  return load_sniffed(path, TRUE, error);
}

sige_weights *sige_weights_load_file(const char *path, GError **error) {
  g_return_val_if_fail(path != NULL, NULL);
  return load_sniffed(path, FALSE, error);
}

sige_weights *sige_weights_load_any(const char *path, GError **error) {
  sige_weights *w = sige_weights_load_file(path, error);
  if (w && !sige_weights_canonicalize(&w, error)) {
    sige_weights_free(w);
    return NULL;
  }
  return w;
}
