/* The CPU backend: host memory (64-byte aligned) and the CPU ops of this
 * folder.  It keeps no state, so host memory needs no backend object
 * (backend_impl.h). */
#include <string.h>

#include "cpu_internal.h"
#include "sige/error.h"

static void *cpu_alloc(sige_backend *be, size_t bytes, gboolean zero, GError **error) {
  (void)be;
  void *p = sige_aligned_alloc(bytes);
  if (!p) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "out of memory allocating a tensor of %zu MiB",
                bytes >> 20);
    return NULL;
  }
  if (zero) memset(p, 0, bytes);
  return p;
}

static void cpu_free(sige_backend *be, void *p) {
  (void)be;
  sige_aligned_free(p);
}

/* upload, download and copy are all host memcpy */
static gboolean cpu_copy(sige_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  if (bytes) memcpy(dst, src, bytes);
  return TRUE;
}

static gboolean cpu_convert(sige_backend *be, void *dst, sige_storage ds, const void *src,
                            sige_storage ss, size_t n) {
  (void)be;
  if (ds == ss)
    memcpy(dst, src, n * (ds == SIGE_STORAGE_F16 ? sizeof(uint16_t) : sizeof(float)));
  else if (ds == SIGE_STORAGE_F32)
    sige_f16_to_f32_n(src, dst, n);
  else
    sige_f32_to_f16_n(src, dst, n);
  return TRUE;
}

static gboolean cpu_check(sige_backend *be, GError **error) {
  (void)be;
  (void)error;
  return TRUE;
}

const sige_backend_iface sige_cpu_iface = {
    .name = "cpu",
    .destroy = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .convert = cpu_convert,
    .check = cpu_check,
    .conv2d = sige_cpu_conv2d,
    .linear = sige_cpu_linear,
    .activation = sige_cpu_activation,
    .channel_affine = sige_cpu_channel_affine,
    .binary = sige_cpu_binary,
    .concat_channels = sige_cpu_concat_channels,
    .group_norm_affine = sige_cpu_group_norm_affine,
    .channel_moments = sige_cpu_channel_moments,
    .resize_nearest = sige_cpu_resize_nearest,
    .resize_bilinear = sige_cpu_resize_bilinear,
    .avg_pool2x2 = sige_cpu_avg_pool2x2,
    .attention = sige_cpu_attention,
    .multihead_attention = sige_cpu_multihead_attention,
    .materialize = sige_cpu_materialize,
    .gather = sige_cpu_gather,
    .scatter = sige_cpu_scatter,
    .scatter_block_residual = sige_cpu_scatter_block_residual,
    .undo_pack = sige_cpu_undo_pack,
    .undo_unpack = sige_cpu_undo_unpack,
};
