/* The backend interface of the device backends (sim and CUDA alike: they
 * differ only in their primitives): memory through the caching allocator,
 * the ops of dev_*.c. */
#include "device_impl.h"

static sige_dev_backend *dev(sige_backend *be) { return (sige_dev_backend *)be; }

static void dev_destroy(sige_backend *be) { sige_dev_destroy(dev(be)); }

static void *dev_alloc(sige_backend *be, size_t bytes, gboolean zero, GError **error) {
  sige_dev_backend *d = dev(be);
  void *p = sige_dev_alloc(d, bytes ? bytes : 4, error);
  if (p && zero && bytes && !d->prims->zero(d, p, bytes)) {
    sige_dev_free(d, p);
    sige_dev_check(d, error);
    return NULL;
  }
  return p;
}

static void dev_free(sige_backend *be, void *p) { sige_dev_free(dev(be), p); }

static gboolean dev_upload(sige_backend *be, void *dst, const void *src, size_t bytes) {
  return dev(be)->prims->upload(dev(be), dst, src, bytes);
}

static gboolean dev_download(sige_backend *be, void *dst, const void *src, size_t bytes) {
  return dev(be)->prims->download(dev(be), dst, src, bytes);
}

static gboolean dev_copy(sige_backend *be, void *dst, const void *src, size_t bytes) {
  return dev(be)->prims->copy(dev(be), dst, src, bytes);
}

static gboolean dev_convert(sige_backend *be, void *dst, sige_storage ds, const void *src,
                            sige_storage ss, size_t n) {
  return sige_dev_convert(dev(be), dst, ds, src, ss, n);
}

static gboolean dev_check(sige_backend *be, GError **error) {
  return sige_dev_check(dev(be), error);
}

static void dev_activation(sige_ctx *ctx, const sige_tensor *x, sige_act act, sige_tensor *out) {
  sige_dev_affine(ctx, x, NULL, NULL, FALSE, act, out);
}

static void *dev_undo_pack(sige_backend *be, void *base, int esize, int c, int w, size_t plane,
                           const int *tiles, int ntiles, size_t elems, GError **error) {
  return sige_dev_undo_save(dev(be), base, esize, c, w, plane, tiles, ntiles, elems, error);
}

/* the record carries its own copy of the tile table (uploaded with it) */
static void dev_undo_unpack(sige_backend *be, void *base, int esize, int c, int w, size_t plane,
                            const int *tiles, int ntiles, size_t elems, void *saved) {
  (void)c;
  (void)tiles;
  sige_dev_undo_restore(dev(be), base, esize, w, plane, ntiles, elems, saved);
}

const sige_backend_iface sige_device_iface = {
    .name = "device",
    .destroy = dev_destroy,
    .alloc = dev_alloc,
    .free = dev_free,
    .upload = dev_upload,
    .download = dev_download,
    .copy = dev_copy,
    .convert = dev_convert,
    .check = dev_check,
    .conv2d = sige_dev_conv2d,
    .linear = sige_dev_linear,
    .activation = dev_activation,
    .channel_affine = sige_dev_affine,
    .binary = sige_dev_binary,
    .concat_channels = sige_dev_concat_channels,
    .group_norm_affine = sige_dev_group_norm_affine,
    .channel_moments = sige_dev_channel_moments,
    .resize_nearest = sige_dev_resize_nearest,
    .resize_bilinear = sige_dev_resize_bilinear,
    .avg_pool2x2 = sige_dev_avg_pool2x2,
    .attention = sige_dev_attention,
    .multihead_attention = sige_dev_multihead_attention,
    .materialize = sige_dev_materialize,
    .gather = sige_dev_gather,
    .scatter = sige_dev_scatter,
    .scatter_block_residual = sige_dev_scatter_block_residual,
    .undo_pack = dev_undo_pack,
    .undo_unpack = dev_undo_unpack,
};
