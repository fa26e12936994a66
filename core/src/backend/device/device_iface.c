/* The backend interface of the device backends (sim and CUDA alike: they
 * differ only in their primitives): memory through the caching allocator,
 * the ops of dev_*.c. */
#include "device_impl.h"
#include "../../sparse/sparse_internal.h"

static sige_dev_backend *dev(sige_backend *be) { return (sige_dev_backend *)be; }

static void dev_destroy(sige_backend *be) { sige_dev_destroy(dev(be)); }

void *sige_dev_mem_alloc(sige_backend *be, size_t bytes, gboolean zero, GError **error) {
  sige_dev_backend *d = dev(be);
  void *p = sige_dev_alloc(d, bytes ? bytes : 4, error);
  if (p && zero && bytes && !d->prims->zero(d, p, bytes)) {
    sige_dev_free(d, p);
    sige_dev_check(d, error);
    return NULL;
  }
  return p;
}

void sige_dev_mem_free(sige_backend *be, void *p) { sige_dev_free(dev(be), p); }

gboolean sige_dev_mem_upload(sige_backend *be, void *dst, const void *src, size_t bytes) {
  return dev(be)->prims->upload(dev(be), dst, src, bytes);
}

gboolean sige_dev_mem_download(sige_backend *be, void *dst, const void *src, size_t bytes) {
  return dev(be)->prims->download(dev(be), dst, src, bytes);
}

gboolean sige_dev_mem_copy(sige_backend *be, void *dst, const void *src, size_t bytes) {
  return dev(be)->prims->copy(dev(be), dst, src, bytes);
}

gboolean sige_dev_mem_convert(sige_backend *be, void *dst, sige_storage ds, const void *src,
                              sige_storage ss, size_t n) {
  return sige_dev_convert(dev(be), dst, ds, src, ss, n);
}

gboolean sige_dev_mem_check(sige_backend *be, GError **error) {
  return sige_dev_check(dev(be), error);
}

void sige_dev_activation(sige_ctx *ctx, const sige_tensor *x, sige_act act, sige_tensor *out) {
  sige_dev_channel_affine(ctx, x, NULL, NULL, FALSE, act, out);
}

void *sige_dev_undo_pack(sige_backend *be, void *base, int esize, int c, int w, size_t plane,
                         const int *tiles, int ntiles, size_t elems, GError **error) {
  return sige_dev_undo_save(dev(be), base, esize, c, w, plane, tiles, ntiles, elems, error);
}

/* the record carries its own copy of the tile table (uploaded with it) */
void sige_dev_undo_unpack(sige_backend *be, void *base, int esize, int c, int w, size_t plane,
                          const int *tiles, int ntiles, size_t elems, void *saved) {
  (void)c;
  (void)tiles;
  sige_dev_undo_restore(dev(be), base, esize, w, plane, ntiles, elems, saved);
}

const sige_backend_iface sige_device_iface = {
    .name = "device",
    .destroy = dev_destroy,
    SIGE_BACKEND_ENTRIES(sige_dev_mem, sige_dev)
};

/* the device keeps the unfused gather, im2col + SGEMM conv and scatter */
gboolean sige_dev_sparse_conv(sige_ctx *ctx, const sige_sparse_conv_io *io,
                              const sige_block_geometry *g, const sige_active_blocks *ab,
                              sige_tensor *dst, GError **error) {
  return sige_sparse_conv_unfused(ctx, io, g, ab, dst, error);
}
