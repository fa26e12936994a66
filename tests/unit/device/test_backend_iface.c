/* The backend interface itself: every backend fills every entry of its
 * iface (a missing one would be a NULL call on the first op that needs it),
 * host memory maps to the CPU backend, a device context's tensors to the
 * device iface, and tensor memory goes through the buffer interface of the
 * backend that owns it. */
#include "test_util.h"

#include <string.h>

#include "backend/backend_impl.h"
#include "backend/device/device_impl.h"
#include "sige/context.h"
#include "sige/tensor.h"

/* Every entry from `first` (by offset) to the end of the struct: the iface
 * is a const char *name followed by function pointers only. */
static void assert_entries_set(const sige_backend_iface *iface, size_t first, const char *which) {
  const char *base = (const char *)iface;
  for (size_t at = first; at + sizeof(void (*)(void)) <= sizeof *iface;
       at += sizeof(void (*)(void))) {
    void (*fn)(void);
    memcpy(&fn, base + at, sizeof fn);
    if (!fn) fail_msg("%s iface: entry at byte %zu is NULL", which, at);
  }
}

static void test_every_entry_is_set(void **state) {
  (void)state;
  /* the CPU keeps no state: only its destroy may be NULL */
  assert_entries_set(&sige_cpu_iface, offsetof(sige_backend_iface, alloc), "cpu");
  assert_entries_set(&sige_device_iface, offsetof(sige_backend_iface, destroy), "device");
  assert_string_equal(sige_cpu_iface.name, "cpu");
}

static void test_host_memory_is_the_cpu_backend(void **state) {
  (void)state;
  assert_ptr_equal(sige_backend_iface_of(NULL), &sige_cpu_iface);
  g_autoptr(sige_tensor) t = sige_tensor_new4(1, 2, 3, 4, NULL);
  assert_null(t->backend);
  assert_ptr_equal(sige_tensor_iface(t), &sige_cpu_iface);
  assert_int_equal(sige_backend_device(NULL), SIGE_DEVICE_CPU);
}

static void test_device_tensors_dispatch_to_the_device(void **state) {
  (void)state;
  GError *error = NULL;
  g_autoptr(sige_ctx) ctx = sige_ctx_new_device(1, SIGE_DEVICE_SIM, &error);
  assert_null(error);
  sige_backend *be = sige_ctx_backend(ctx);
  assert_non_null(be);
  assert_int_equal(sige_backend_device(be), SIGE_DEVICE_SIM);
  assert_ptr_equal(sige_backend_iface_of(be), &sige_device_iface);
  assert_non_null(strstr(sige_backend_info(be), "sim"));

  g_autoptr(sige_tensor) host = sige_tensor_new4(1, 1, 2, 3, NULL);
  for (size_t i = 0; i < host->numel; i++) host->data[i] = (float)i - 2.5f;
  g_autoptr(sige_tensor) dev = sige_tensor_to_backend(be, host, &error);
  assert_null(error);
  assert_ptr_equal(dev->backend, be);
  assert_ptr_equal(sige_tensor_iface(dev), &sige_device_iface);
  /* the simulated device tags its addresses: this is not host memory */
  assert_true(((uintptr_t)dev->data & SIGE_SIM_TAG) != 0);

  /* F16 on the device, back as F32 on the host: the round trip converts on
   * the device and comes back exact for these values */
  g_autoptr(sige_tensor) dev16 = sige_tensor_to_f16(dev, &error);
  assert_null(error);
  g_autoptr(sige_tensor) dev32 = sige_tensor_to_f32(dev16, &error);
  assert_null(error);
  g_autoptr(sige_tensor) back = sige_tensor_to_host(dev32, &error);
  assert_null(error);
  assert_null(back->backend);
  assert_memory_equal(back->data, host->data, sige_tensor_bytes(host));
}

static void test_copy_between_two_devices_is_refused(void **state) {
  (void)state;
  GError *error = NULL;
  g_autoptr(sige_ctx) a = sige_ctx_new_device(1, SIGE_DEVICE_SIM, &error);
  g_autoptr(sige_ctx) b = sige_ctx_new_device(1, SIGE_DEVICE_SIM, &error);
  assert_null(error);
  g_autoptr(sige_tensor) host = sige_tensor_new4(1, 1, 2, 2, NULL);
  g_autoptr(sige_tensor) ta = sige_tensor_to_backend(sige_ctx_backend(a), host, NULL);
  g_autoptr(sige_tensor) tb = sige_tensor_to_backend(sige_ctx_backend(b), host, NULL);
  assert_false(sige_tensor_copy(ta, tb, &error));
  assert_non_null(error);
  g_clear_error(&error);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_entry_is_set),
      cmocka_unit_test(test_host_memory_is_the_cpu_backend),
      cmocka_unit_test(test_device_tensors_dispatch_to_the_device),
      cmocka_unit_test(test_copy_between_two_devices_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
