/* Small models for the application layer's tests: random weights (the
 * harness's), small enough to build and run in a unit test. */
#pragma once
#include "random_weights.h"
#include "sige/model.h"

static inline sige_model *app_test_ddpm(void) {
  GError *e = NULL;
  sige_model *m = sige_tiny_ddpm_model(1, &e);
  if (!m) fail_msg("%s", e->message);
  return m;
}

static inline sige_model *app_test_pd(void) {
  sige_pd_config c;
  sige_pd_config_init(&c);
  c.ch = 32, c.n_ch_mult = 2, c.ch_mult[0] = 1, c.ch_mult[1] = 1;
  c.num_res_blocks = 1, c.n_attn_resolutions = 0, c.image_size = 32, c.temb_ch = 64;
  c.head_dim = 32; /* the middle attention block still exists: one head of 32 */
  g_autoptr(sige_weights) w = sige_random_pd_weights(&c, 3, NULL);
  assert_non_null(w);
  GError *e = NULL;
  sige_model *m = sige_model_new_pd(&c, w, &e);
  if (!m) fail_msg("%s", e->message);
  return m;
}

/* The shipped GauGAN demo model (data/models). */
static inline sige_model *app_test_gaugan(void) {
  GError *e = NULL;
  sige_model *m = sige_model_load(SIGE_SOURCE_DIR "/data/models/gaugan-demo.safetensors", &e);
  if (!m) fail_msg("%s", e->message);
  return m;
}
