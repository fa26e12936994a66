/* The session table: ids, lookups, LRU eviction under the budget, dropping
 * an image's sessions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sige-session-table.h"

static int freed[64];

static void count_free(gpointer p) { freed[GPOINTER_TO_INT(p)]++; }

static void reset(void) { memset(freed, 0, sizeof freed); }

static void test_insert_lookup(void **state) {
  (void)state;
  reset();
  g_autoptr(sige_session_table) t = sige_session_table_new(1000);
  sige_session_entry *a = sige_session_table_insert(t, 1, 10, 64, 32, 3, GINT_TO_POINTER(1), 100, count_free);
  sige_session_entry *b = sige_session_table_insert(t, 1, 11, 64, 32, 3, GINT_TO_POINTER(2), 100, count_free);
  assert_true(a->id > 0 && b->id > a->id);
  assert_ptr_equal(sige_session_table_lookup(t, a->id), a);
  assert_ptr_equal(sige_session_table_find(t, 1, 11), b);
  assert_null(sige_session_table_find(t, 2, 11));
  assert_int_equal(a->output_layer_id, -1);
  assert_int_equal(sige_session_table_bytes(t), 200);
  /* same image and layer: replaces, and the old id is dead */
  guint32 old = a->id;
  sige_session_entry *c = sige_session_table_insert(t, 1, 10, 64, 32, 3, GINT_TO_POINTER(3), 50, count_free);
  assert_int_equal(freed[1], 1);
  assert_null(sige_session_table_lookup(t, old));
  assert_true(c->id != old);
  assert_int_equal(sige_session_table_size(t), 2);
}

static void test_ids_never_reused(void **state) {
  (void)state;
  reset();
  g_autoptr(sige_session_table) t = sige_session_table_new(1000);
  sige_session_entry *a = sige_session_table_insert(t, 1, 10, 1, 1, 1, GINT_TO_POINTER(1), 1, count_free);
  guint32 id = a->id;
  assert_true(sige_session_table_remove(t, id));
  assert_false(sige_session_table_remove(t, id));
  sige_session_entry *b = sige_session_table_insert(t, 1, 10, 1, 1, 1, GINT_TO_POINTER(2), 1, count_free);
  assert_true(b->id != id);
}

static void test_lru_eviction(void **state) {
  (void)state;
  reset();
  g_autoptr(sige_session_table) t = sige_session_table_new(250);
  sige_session_entry *a = sige_session_table_insert(t, 1, 1, 1, 1, 1, GINT_TO_POINTER(1), 100, count_free);
  sige_session_entry *b = sige_session_table_insert(t, 1, 2, 1, 1, 1, GINT_TO_POINTER(2), 100, count_free);
  guint32 ida = a->id, idb = b->id;
  sige_session_table_lookup(t, ida); /* a is now more recent than b */
  sige_session_entry *c = sige_session_table_insert(t, 1, 3, 1, 1, 1, GINT_TO_POINTER(3), 100, count_free);
  assert_int_equal(sige_session_table_evict(t, c->id), 1);
  assert_int_equal(freed[2], 1); /* b, the least recently used */
  assert_null(sige_session_table_lookup(t, idb));
  assert_non_null(sige_session_table_lookup(t, ida));
  /* the protected entry survives even when it alone is over the budget */
  sige_session_table_set_bytes(t, c, 1000);
  guint32 idc = c->id;
  assert_int_equal(sige_session_table_evict(t, idc), 1);
  assert_int_equal(freed[1], 1);
  assert_non_null(sige_session_table_lookup(t, idc));
  assert_int_equal(sige_session_table_size(t), 1);
}

/* Shared bytes (a model's weights) count once per key, and eviction frees
 * them only with the last entry that shares them. */
static void test_shared_bytes(void **state) {
  (void)state;
  reset();
  static const int model_x = 1, model_y = 2; /* two keys */
  g_autoptr(sige_session_table) t = sige_session_table_new(10000);
  sige_session_entry *a = sige_session_table_insert(t, 1, 1, 1, 1, 1, GINT_TO_POINTER(1), 100, count_free);
  sige_session_entry *b = sige_session_table_insert(t, 1, 2, 1, 1, 1, GINT_TO_POINTER(2), 100, count_free);
  sige_session_entry *c = sige_session_table_insert(t, 1, 3, 1, 1, 1, GINT_TO_POINTER(3), 100, count_free);
  sige_session_table_set_shared(t, a, &model_x, 600);
  sige_session_table_set_shared(t, b, &model_x, 600);
  sige_session_table_set_shared(t, c, &model_y, 500);
  assert_int_equal(sige_session_table_bytes(t), 300 + 600 + 500);
  /* over a budget of 1000: a goes (oldest), x is still b's, so b goes too */
  const guint32 ida = a->id, idb = b->id, idc = c->id;
  sige_session_table_set_budget(t, 1000);
  assert_int_equal(sige_session_table_evict(t, idc), 2);
  assert_null(sige_session_table_lookup(t, ida));
  assert_null(sige_session_table_lookup(t, idb));
  assert_int_equal(sige_session_table_bytes(t), 100 + 500);
  /* the caches alone fit: without the weights nothing would go */
  sige_session_entry *d = sige_session_table_insert(t, 1, 4, 1, 1, 1, GINT_TO_POINTER(4), 100, count_free);
  sige_session_table_set_shared(t, d, &model_x, 600);
  assert_int_equal(sige_session_table_evict(t, d->id), 1);
  assert_null(sige_session_table_lookup(t, idc));
  /* NULL: nothing shared */
  sige_session_table_set_shared(t, d, NULL, 600);
  assert_int_equal(sige_session_table_bytes(t), 100);
}

static void test_drop_image(void **state) {
  (void)state;
  reset();
  sige_session_table *t = sige_session_table_new(1000);
  sige_session_table_insert(t, 1, 1, 1, 1, 1, GINT_TO_POINTER(1), 1, count_free);
  sige_session_table_insert(t, 2, 2, 1, 1, 1, GINT_TO_POINTER(2), 1, count_free);
  sige_session_table_insert(t, 1, 3, 1, 1, 1, GINT_TO_POINTER(3), 1, count_free);
  assert_int_equal(sige_session_table_drop_image(t, 1), 2);
  assert_int_equal(freed[1] + freed[3], 2);
  assert_int_equal(sige_session_table_size(t), 1);
  sige_session_table_free(t);
  assert_int_equal(freed[2], 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_insert_lookup),
      cmocka_unit_test(test_ids_never_reused),
      cmocka_unit_test(test_lru_eviction),
      cmocka_unit_test(test_shared_bytes),
      cmocka_unit_test(test_drop_image),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
