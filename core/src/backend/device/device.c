/* The device backends' state: creation, latched failures, the caching
 * allocator, parameter mirrors, the argument arena and scratch buffers. */
#include <stdarg.h>
#include <string.h>

#include "device_impl.h"
#include "sige/error.h"

_Static_assert((int)SIGE_ACT_NONE == SIGE_K_ACT_NONE && (int)SIGE_ACT_RELU == SIGE_K_ACT_RELU &&
                   (int)SIGE_ACT_LEAKY_RELU == SIGE_K_ACT_LEAKY_RELU &&
                   (int)SIGE_ACT_SWISH == SIGE_K_ACT_SWISH &&
                   (int)SIGE_ACT_TANH == SIGE_K_ACT_TANH &&
                   (int)SIGE_ACT_SIGMOID == SIGE_K_ACT_SIGMOID &&
                   (int)SIGE_ACT_QUICK_GELU == SIGE_K_ACT_QUICK_GELU,
               "kernels.h mirrors sige_act");

sige_backend *sige_device_backend_new(sige_device kind, int n_threads, GError **error) {
  sige_dev_backend *be = g_new0(sige_dev_backend, 1);
  be->base.iface = &sige_device_iface;
  be->base.device = kind;
  be->n_threads = n_threads > 0 ? n_threads : 1;
  be->mirrors = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
  be->pool = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                   (GDestroyNotify)g_ptr_array_unref);
  be->sizes = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
  gboolean ok = FALSE;
  if (kind == SIGE_DEVICE_SIM)
    ok = sige_sim_init(be, error);
  else if (kind == SIGE_DEVICE_CUDA)
    ok = sige_cuda_init(be, error);
  else
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "device %s has no backend",
                sige_device_name(kind));
  if (!ok) {
    g_hash_table_destroy(be->mirrors);
    g_hash_table_destroy(be->pool);
    g_hash_table_destroy(be->sizes);
    g_free(be);
    return NULL;
  }
  return &be->base;
}

typedef struct {
  void *dev;
  size_t bytes;
} mirror;

static void release_cached(sige_dev_backend *be) {
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init(&it, be->pool);
  while (g_hash_table_iter_next(&it, &key, &value)) {
    GPtrArray *list = value;
    for (guint i = 0; i < list->len; i++) be->prims->free(be, g_ptr_array_index(list, i));
  }
  g_hash_table_remove_all(be->pool);
  be->cached = 0;
}

/* The iface's destroy: everything the backend still holds. */
void sige_dev_destroy(sige_dev_backend *be) {
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init(&it, be->mirrors);
  while (g_hash_table_iter_next(&it, &key, &value)) sige_dev_free(be, ((mirror *)value)->dev);
  g_hash_table_remove_all(be->mirrors);
  sige_dev_free(be, be->args);
  for (int i = 0; i < SIGE_DEV_SCRATCH_SLOTS; i++) sige_dev_free(be, be->scratch[i]);
  if (g_hash_table_size(be->sizes))
    g_warning("device backend freed with %u blocks (%zu KiB) still allocated: tensors outlived "
              "their context", g_hash_table_size(be->sizes), be->in_use >> 10);
  release_cached(be);
  if (be->prims && be->prims->destroy) be->prims->destroy(be);
  g_hash_table_destroy(be->mirrors);
  g_hash_table_destroy(be->pool);
  g_hash_table_destroy(be->sizes);
  if (be->failure) g_error_free(be->failure);
  g_free(be->base.info);
  g_free(be);
}

gboolean sige_dev_fail(sige_dev_backend *be, const char *fmt, ...) {
  if (be->failure) return FALSE;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  be->failure = g_error_new(SIGE_ERROR, SIGE_ERROR_DEVICE, "%s: %s", be->prims->name, msg);
  return FALSE;
}

gboolean sige_dev_check(sige_dev_backend *be, GError **error) {
  if (!be || !be->failure) return TRUE;
  g_propagate_error(error, be->failure);
  be->failure = NULL;
  return FALSE;
}

/* Rounded sizes, so that blocks freed by one pass fit the next pass's
 * slightly different block batches: 4 KiB steps up to 1 MiB, then 2^k and
 * 1.5 * 2^k (at most a third wasted). */
static size_t size_class(size_t b) {
  if (b <= ((size_t)1 << 20)) return b < 4096 ? 4096 : (b + 4095) & ~(size_t)4095;
  size_t p = (size_t)1 << 20;
  while (p < b) {
    if (p + p / 2 >= b) return p + p / 2;
    p <<= 1;
  }
  return p;
}

void *sige_dev_alloc(sige_dev_backend *be, size_t bytes, GError **error) {
  gint64 cls = (gint64)size_class(bytes);
  void *p = NULL;
  GPtrArray *list = g_hash_table_lookup(be->pool, &cls);
  if (list && list->len) {
    p = g_ptr_array_steal_index_fast(list, list->len - 1);
    be->cached -= (size_t)cls;
  } else {
    p = be->prims->malloc(be, (size_t)cls);
    if (!p && be->cached) { /* blocks of other sizes may be what is in the way */
      release_cached(be);
      p = be->prims->malloc(be, (size_t)cls);
    }
  }
  if (!p) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM,
                "%s: out of device memory allocating %zu MiB (%zu MiB in use)", be->prims->name,
                (size_t)cls >> 20, be->in_use >> 20);
    return NULL;
  }
  g_hash_table_insert(be->sizes, p, g_memdup2(&cls, sizeof cls));
  be->in_use += (size_t)cls;
  return p;
}

void sige_dev_free(sige_dev_backend *be, void *p) {
  if (!p) return;
  gint64 *cls = g_hash_table_lookup(be->sizes, p);
  g_return_if_fail(cls != NULL);
  gint64 key = *cls;
  g_hash_table_remove(be->sizes, p);
  be->in_use -= (size_t)key;
  GPtrArray *list = g_hash_table_lookup(be->pool, &key);
  if (!list) {
    list = g_ptr_array_new();
    g_hash_table_insert(be->pool, g_memdup2(&key, sizeof key), list);
  }
  g_ptr_array_add(list, p);
  be->cached += (size_t)key;
}

const float *sige_dev_param(sige_dev_backend *be, const sige_tensor *t) {
  if (!t) return NULL;
  if (t->backend == &be->base && t->storage == SIGE_STORAGE_F32) return t->data;
  if (t->backend) {
    sige_dev_fail(be, "a parameter tensor is on another device or not float32");
    return NULL;
  }
  /* Half weights kept half on the host (sige_weights_keep_half) are
   * widened on upload: the device keeps float32, so its kernels and GEMMs
   * are those of float32 weights.  The mirror is keyed by the host data
   * and sized in float32 bytes. */
  const gboolean half = t->storage == SIGE_STORAGE_F16;
  const size_t bytes = t->numel * sizeof(float);
  mirror *m = g_hash_table_lookup(be->mirrors, t->data);
  if (m && m->bytes == bytes) return m->dev;
  if (m) { /* same address, other size: the old parameter is gone */
    sige_dev_free(be, m->dev);
    g_hash_table_remove(be->mirrors, t->data);
  }
  GError *err = NULL;
  void *dev = sige_dev_alloc(be, bytes, &err);
  if (!dev) {
    sige_dev_fail(be, "%s", err->message);
    g_error_free(err);
    return NULL;
  }
  float *wide = NULL;
  if (half && !(wide = g_try_malloc(bytes))) {
    sige_dev_free(be, dev);
    sige_dev_fail(be, "out of host memory widening a %zu MiB half-precision parameter",
                  bytes >> 20);
    return NULL;
  }
  if (half) sige_f16_to_f32_n(t->data16, wide, t->numel);
  /* the upload may reuse its source as soon as it returns */
  const gboolean up = be->prims->upload(be, dev, half ? wide : t->data, bytes);
  g_free(wide);
  if (!up) {
    sige_dev_free(be, dev);
    return NULL;
  }
  m = g_new(mirror, 1);
  m->dev = dev;
  m->bytes = bytes;
  g_hash_table_insert(be->mirrors, t->data, m);
  return dev;
}

#define ARG_ALIGN 16

gboolean sige_dev_args(sige_dev_backend *be, const sige_dev_arg *parts, int n, const void **dev) {
  size_t total = 0;
  for (int i = 0; i < n; i++)
    if (parts[i].host) total += (parts[i].bytes + ARG_ALIGN - 1) & ~(size_t)(ARG_ALIGN - 1);
  if (total > be->args_bytes) {
    /* the old arena may still be read by queued launches: freeing it to the
     * cache is safe, its next user is ordered after them */
    sige_dev_free(be, be->args);
    be->args = NULL;
    be->args_bytes = 0;
    size_t want = 64 << 10;
    while (want < total) want *= 2;
    GError *err = NULL;
    if (!(be->args = sige_dev_alloc(be, want, &err))) {
      sige_dev_fail(be, "%s", err->message);
      g_error_free(err);
      return FALSE;
    }
    be->args_bytes = want;
  }
  g_autofree char *pack = g_malloc(total ? total : 1);
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    if (!parts[i].host) {
      dev[i] = NULL;
      continue;
    }
    memcpy(pack + at, parts[i].host, parts[i].bytes);
    dev[i] = (const char *)be->args + at;
    at += (parts[i].bytes + ARG_ALIGN - 1) & ~(size_t)(ARG_ALIGN - 1);
  }
  return total == 0 || be->prims->upload(be, be->args, pack, total);
}

void *sige_dev_scratch(sige_dev_backend *be, int slot, size_t bytes) {
  g_return_val_if_fail(slot >= 0 && slot < SIGE_DEV_SCRATCH_SLOTS, NULL);
  if (be->scratch[slot] && be->scratch_bytes[slot] >= bytes) return be->scratch[slot];
  sige_dev_free(be, be->scratch[slot]);
  be->scratch[slot] = NULL;
  be->scratch_bytes[slot] = 0;
  GError *err = NULL;
  if (!(be->scratch[slot] = sige_dev_alloc(be, bytes ? bytes : 4, &err))) {
    sige_dev_fail(be, "%s", err->message);
    g_error_free(err);
    return NULL;
  }
  be->scratch_bytes[slot] = bytes;
  return be->scratch[slot];
}

gboolean sige_dev_launch(sige_dev_backend *be, sige_kernel k, const void *args, size_t n) {
  if (n == 0) return TRUE;
  if (n > SIGE_K_MAX_ELEMS)
    return sige_dev_fail(be, "kernel %d over %zu elements (at most 2^31 - 1)", (int)k, n);
  return be->prims->launch(be, k, args, n);
}

gboolean sige_dev_gemm_rm(sige_dev_backend *be, int transa, int transb, int m, int n, int k,
                          float alpha, const float *a, int lda, const float *b, int ldb,
                          float beta, float *c, int ldc) {
  if (m == 0 || n == 0) return TRUE;
  /* row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T */
  return be->prims->sgemm(be, transb, transa, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
}

gboolean sige_dev_gemm_rm_batched(sige_dev_backend *be, int transa, int transb, int m, int n, int k,
                                  float alpha, const float *a, int lda, long long stride_a,
                                  const float *b, int ldb, long long stride_b, float beta,
                                  float *c, int ldc, long long stride_c, int batch) {
  if (m == 0 || n == 0 || batch == 0) return TRUE;
  return be->prims->sgemm_batched(be, transb, transa, n, m, k, alpha, b, ldb, stride_b, a, lda,
                                  stride_a, beta, c, ldc, stride_c, batch);
}

sige_k_planes sige_dev_planes(const sige_tensor *t) {
  sige_k_planes p = {(int32_t)t->shape[0], (int32_t)t->shape[1],
                     (uint32_t)(t->shape[2] * t->shape[3]), t->layout == SIGE_LAYOUT_CNHW};
  return p;
}

gboolean sige_dev_on(sige_dev_backend *be, const sige_tensor *t, const char *op) {
  if (!t || t->backend == &be->base) return TRUE;
  return sige_dev_fail(be, "%s: a %s tensor where one on this device was expected", op,
                       t->backend ? "another device's" : "host");
}

/* Storage conversion of n elements, both on the device. */
gboolean sige_dev_convert(sige_dev_backend *be, void *dst, sige_storage ds, const void *src,
                          sige_storage ss, size_t n) {
  if (ds == ss) return be->prims->copy(be, dst, src, n * (ds == SIGE_STORAGE_F16 ? 2 : 4));
  sige_k_convert_args a = {src, dst};
  return sige_dev_launch(be, ds == SIGE_STORAGE_F16 ? SIGE_K_F32_TO_F16 : SIGE_K_F16_TO_F32, &a,
                         n);
}

#ifndef SIGE_HAVE_CUDA
gboolean sige_cuda_init(sige_dev_backend *be, GError **error) {
  (void)be;
  return sige_cuda_probe(NULL, error);
}
#endif
