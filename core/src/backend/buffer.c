/* buffer.h: the tensors' and contexts' view of backends, handed to the
 * owning backend's iface. */
#include "backend_impl.h"
#include "sige/error.h"

void *sige_buffer_alloc(sige_backend *be, size_t bytes, gboolean zero, GError **error) {
  return sige_backend_iface_of(be)->alloc(be, bytes, zero, error);
}

void sige_buffer_free(sige_backend *be, void *p) {
  if (p) sige_backend_iface_of(be)->free(be, p);
}

gboolean sige_buffer_check(sige_backend *be, GError **error) {
  return sige_backend_iface_of(be)->check(be, error);
}

gboolean sige_buffer_copy_bytes(sige_backend *dst_be, void *dst, sige_backend *src_be,
                                const void *src, size_t bytes) {
  if (dst_be == src_be) return sige_backend_iface_of(dst_be)->copy(dst_be, dst, src, bytes);
  /* one side is the host (the caller pairs at most one device) */
  if (dst_be) return dst_be->iface->upload(dst_be, dst, src, bytes);
  return src_be->iface->download(src_be, dst, src, bytes);
}

static size_t elem_bytes(sige_storage s) { return s == SIGE_STORAGE_F16 ? 2 : 4; }

gboolean sige_buffer_copy_elems(sige_backend *dst_be, void *dst, sige_storage ds,
                                sige_backend *src_be, const void *src, sige_storage ss, size_t n,
                                GError **error) {
  if (dst_be == src_be) {
    const sige_backend_iface *b = sige_backend_iface_of(dst_be);
    b->convert(dst_be, dst, ds, src, ss, n);
    return b->check(dst_be, error);
  }
  if (dst_be && src_be) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "copy between tensors of two different devices");
    return FALSE;
  }
  /* host <-> a backend that is not the host's: move the elements as they
   * are, convert where they are not on the host (a device converts in its
   * own kernels, as it would any other copy) */
  sige_backend *be = dst_be ? dst_be : src_be;
  const sige_backend_iface *b = be->iface;
  const sige_storage dev_storage = dst_be ? ds : ss;
  const sige_storage host_storage = dst_be ? ss : ds;
  const size_t host_bytes = n * elem_bytes(host_storage);
  void *tmp = NULL;
  if (dev_storage != host_storage &&
      !(tmp = b->alloc(be, host_bytes ? host_bytes : 4, FALSE, error)))
    return FALSE;
  if (dst_be) {
    if (b->upload(be, tmp ? tmp : dst, src, host_bytes) && tmp)
      b->convert(be, dst, ds, tmp, ss, n);
  } else {
    if (!tmp || b->convert(be, tmp, ds, src, ss, n))
      b->download(be, dst, tmp ? tmp : src, host_bytes);
  }
  if (tmp) b->free(be, tmp);
  return b->check(be, error); /* a failure above was latched */
}
