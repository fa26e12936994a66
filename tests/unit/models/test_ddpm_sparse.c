/* The DDPM UNet's sparse pass through the session, on the ddpm-church-tiny
 * reference case: the published-code mode (attention quirk on) is covered by
 * `sige check-reference`; here we check the engine's default (per-channel
 * frozen attention statistics) and the session's behaviour with a UNet. */
#include "test_util.h"

#include <math.h>
#include <string.h>

#include "sige/model.h"
#include "sige/session.h"
#include "sige/sparse.h"
#include "sige/weights.h"

typedef struct {
  sige_weights *io;
  sige_model *model, *model_quirk;
  sige_mask *mask;
  float t;
} fixture;

static sige_model *build(const sige_weights *w, gboolean quirk) {
  sige_ddpm_config c;
  sige_ddpm_config_init(&c);
  c.ch = 32; /* ddpm-church-tiny/case.json: the church architecture at ch 32 */
  c.published_attention_quirk = quirk;
  GError *error = NULL;
  sige_model *m = sige_model_new_ddpm(&c, w, &error);
  if (!m) fail_msg("%s", error->message);
  return m;
}

static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  g_autofree char *dir = g_build_filename(sige_test_reference_dir(), "ddpm-church-tiny", NULL);
  g_autofree char *wp = g_build_filename(dir, "weights.safetensors", NULL);
  g_autofree char *iop = g_build_filename(dir, "io.safetensors", NULL);
  GError *error = NULL;
  g_autoptr(sige_weights) w = sige_weights_load_safetensors(wp, &error);
  if (!w) fail_msg("%s", error->message);
  f->io = sige_weights_load_safetensors(iop, &error);
  if (!f->io) fail_msg("%s", error->message);
  f->model = build(w, FALSE);
  f->model_quirk = build(w, TRUE);
  g_autoptr(sige_mask) raw = sige_mask_from_diff(sige_weights_get(f->io, "x0_orig"),
                                                 sige_weights_get(f->io, "x0_edit"), 0.01f);
  f->mask = sige_mask_cross_dilate(raw, 5);
  f->t = sige_weights_get(f->io, "t")->data[0];
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  sige_weights_free(f->io);
  sige_model_free(f->model);
  sige_model_free(f->model_quirk);
  sige_mask_free(f->mask);
  g_free(f);
  return 0;
}

static sige_tensor *sparse_edit(fixture *f, const sige_model *m, uint64_t *macs,
                                uint64_t *dense_macs) {
  sige_session_options o;
  sige_session_options_init(&o);
  o.timestep = f->t;
  o.full_pass_above = 2.0;
  GError *error = NULL;
  g_autoptr(sige_session) s = sige_session_new(m, &o, &error);
  sige_tensor *out = NULL;
  if (!sige_session_snapshot(s, sige_weights_get(f->io, "xt_orig"), NULL, &error) ||
      !sige_session_regenerate_masked(s, sige_weights_get(f->io, "xt_edit"), f->mask, NULL, NULL,
                                      NULL, &out, NULL, &error))
    fail_msg("%s", error->message);
  *macs = sige_session_last_stats(s)->macs;
  *dense_macs = sige_session_last_stats(s)->dense_macs;
  return out;
}

static double max_abs(const sige_tensor *a, const sige_tensor *b) {
  double m = 0;
  for (size_t i = 0; i < a->numel; i++) m = fmax(m, fabs((double)a->data[i] - b->data[i]));
  return m;
}

/* Per-channel frozen statistics approximate the dense edit better than the
 * published code's channel-0 statistics, and the sparse pass really is
 * sparse. */
static void test_default_attention_statistics(void **state) {
  fixture *f = *state;
  uint64_t macs, dense_macs, macs_q, dense_q;
  g_autoptr(sige_tensor) ours = sparse_edit(f, f->model, &macs, &dense_macs);
  g_autoptr(sige_tensor) quirk = sparse_edit(f, f->model_quirk, &macs_q, &dense_q);
  const sige_tensor *dense = sige_weights_get(f->io, "out_dense_edit");
  const sige_tensor *ref = sige_weights_get(f->io, "out_sparse_edit");
  const double e_ours = max_abs(ours, dense), e_quirk = max_abs(quirk, dense);
  print_message("max |sparse - dense|: per-channel %.3e, published %.3e; MACs %.2f of %.2f G\n",
                e_ours, e_quirk, macs / 1e9, dense_macs / 1e9);
  /* the quirk mode is the reference (case.json: sparse_vs_reference abs 1e-3) */
  assert_true(max_abs(quirk, ref) < 1e-3);
  /* the two modes differ, so the flag does something */
  assert_true(max_abs(ours, quirk) > 1e-3);
  assert_true(e_ours < e_quirk);
  assert_int_equal(macs, macs_q);
  /* a 1.9 % edit: well under half of the dense MACs */
  assert_true(macs * 2 < dense_macs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_attention_statistics),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
