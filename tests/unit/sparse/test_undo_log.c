/* The undo log restores cached activations byte for byte after in-place
 * scatters, including overlapping saves and whole-tensor saves. */
#include "sparse_test_util.h"

#define C 3
#define H 13
#define W 11

static void test_rollback_blocks(void **state) {
  (void)state;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(0);
  sige_test_rng r = sige_test_rng_new(3);
  g_autoptr(sige_tensor) cache = sp_new4(1, C, H, W);
  sp_fill(cache, &r, -1.0f, 1.0f);
  g_autoptr(sige_tensor) before = sige_tensor_dup(cache, NULL);
  g_autoptr(sige_tensor) small = sp_new4(1, 2, 4, 4);
  sp_fill(small, &r, -1.0f, 1.0f);
  g_autoptr(sige_tensor) small_before = sige_tensor_dup(small, NULL);

  sige_block_geometry g3, g1;
  sige_block_geometry_init(&g3, 3, 1, 1, 6);
  sige_block_geometry_init(&g1, 1, 1, 0, 4);
  g_autoptr(sige_mask) m = sige_mask_new(H, W);
  m->data[0] = m->data[H * W - 1] = m->data[6 * W + 4] = 1;
  g_autoptr(sige_active_blocks) ab3 = sige_reduce_mask(m, &g3);
  g_autoptr(sige_active_blocks) ab1 = sige_reduce_mask(m, &g1);
  g_autoptr(sige_tensor) b3 = sp_new_blocks(ab3->n, C, g3.out_block);
  g_autoptr(sige_tensor) b1 = sp_new_blocks(ab1->n, C, g1.out_block);
  sp_fill(b3, &r, 5.0f, 6.0f);
  sp_fill(b1, &r, 7.0f, 8.0f);

  g_autoptr(sige_undo_log) log = sige_undo_log_new();
  assert_int_equal(sige_undo_log_bytes(log), 0);
  GError *err = NULL;
  assert_true(sige_undo_log_save_blocks(log, cache, &g3, ab3, &err));
  const size_t after_one = sige_undo_log_bytes(log);
  assert_true(after_one >= sizeof(float) * C * 16); /* at least one full tile */
  assert_true(after_one < sizeof(float) * C * H * W); /* never a full copy */
  sige_scatter(ctx, b3, &g3, ab3, NULL, NULL, cache);
  assert_memory_not_equal(cache->data, before->data, cache->numel * sizeof(float));

  /* a second, overlapping save: rollback must still end at the oldest bytes */
  assert_true(sige_undo_log_save_blocks(log, cache, &g1, ab1, &err));
  sige_scatter(ctx, b1, &g1, ab1, NULL, NULL, cache);
  assert_true(sige_undo_log_save_tensor(log, small, &err));
  assert_true(sige_undo_log_bytes(log) >
              after_one + sizeof(float) * small->numel);
  sp_fill_value(small, 0.0f);

  sige_undo_log_rollback(log);
  assert_null(err);
  assert_memory_equal(cache->data, before->data, cache->numel * sizeof(float));
  assert_memory_equal(small->data, small_before->data, small->numel * sizeof(float));
  assert_int_equal(sige_undo_log_bytes(log), 0);

  /* clear forgets: a rollback afterwards changes nothing */
  assert_true(sige_undo_log_save_blocks(log, cache, &g3, ab3, &err));
  sige_scatter(ctx, b3, &g3, ab3, NULL, NULL, cache);
  g_autoptr(sige_tensor) committed = sige_tensor_dup(cache, NULL);
  sige_undo_log_clear(log);
  assert_int_equal(sige_undo_log_bytes(log), 0);
  sige_undo_log_rollback(log);
  assert_memory_equal(cache->data, committed->data, cache->numel * sizeof(float));
}

static void test_empty_blocks(void **state) {
  (void)state;
  g_autoptr(sige_tensor) cache = sp_new4(1, C, H, W);
  sige_block_geometry g;
  sige_block_geometry_init(&g, 3, 1, 1, 6);
  g_autoptr(sige_mask) m = sige_mask_new(H, W);
  g_autoptr(sige_active_blocks) ab = sige_reduce_mask(m, &g);
  assert_int_equal(ab->n, 0);
  g_autoptr(sige_undo_log) log = sige_undo_log_new();
  assert_true(sige_undo_log_save_blocks(log, cache, &g, ab, NULL));
  sige_undo_log_rollback(log);
  assert_int_equal(sige_undo_log_bytes(log), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rollback_blocks),
      cmocka_unit_test(test_empty_blocks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
