/* The undo log's records on the CPU: the tiles' rows copied out channel by
 * channel, tiles in raster order within a channel (the walk of the scatter
 * kernels, so neighbouring tiles share cache lines). */
#include "../../short_copy.h"
#include "cpu_internal.h"
#include "sige/error.h"

/* save: base -> saved; else saved -> base. */
static void copy_tiles(char *base, size_t es, int c, int w, size_t plane, const int *tiles,
                       int ntiles, char *saved, gboolean save) {
  char *s = saved;
  for (int ch = 0; ch < c; ch++) {
    for (int k = 0; k < ntiles; k++) {
      const int *t = tiles + 4 * k; /* r0, c0, rows, cols */
      const size_t row_bytes = (size_t)t[3] * es;
      char *p = base + ((size_t)ch * plane + (size_t)t[0] * w + t[1]) * es;
      for (int i = 0; i < t[2]; i++, p += (size_t)w * es, s += row_bytes) {
        if (save)
          sige_copy_row_bytes(s, p, row_bytes);
        else
          sige_copy_row_bytes(p, s, row_bytes);
      }
    }
  }
}

void *sige_cpu_undo_pack(sige_backend *be, void *base, int esize, int c, int w, size_t plane,
                         const int *tiles, int ntiles, size_t elems, GError **error) {
  (void)be;
  char *saved = sige_aligned_alloc(elems * (size_t)esize);
  if (!saved) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM,
                "out of memory saving %zu KiB of cached activations for undo",
                elems * (size_t)esize >> 10);
    return NULL;
  }
  copy_tiles(base, (size_t)esize, c, w, plane, tiles, ntiles, saved, TRUE);
  return saved;
}

void sige_cpu_undo_unpack(sige_backend *be, void *base, int esize, int c, int w, size_t plane,
                          const int *tiles, int ntiles, size_t elems, void *saved) {
  (void)be;
  (void)elems;
  copy_tiles(base, (size_t)esize, c, w, plane, tiles, ntiles, saved, FALSE);
}
