/* Random weights laid out exactly as the model loaders look them up: the
 * model's own parameter list (sige_model_kind_params), walked once. */
#include "random_weights.h"

#include <math.h>

#include "sige/error.h"

/* Convs and linears N(0, 1/fan_in), biases N(0, 0.01^2), norms and
 * BatchNorm statistics at identity. */
static void fill(sige_rng *rng, const sige_param *p, sige_tensor *t) {
  double std = 0.0, value = 0.0;
  switch (p->role) {
    case SIGE_PARAM_WEIGHT: std = 1.0 / sqrt((double)p->fan_in); break;
    case SIGE_PARAM_BIAS: std = 0.01; break;
    case SIGE_PARAM_NORM_WEIGHT:
    case SIGE_PARAM_RUNNING_VAR: value = 1.0; break;
    case SIGE_PARAM_NORM_BIAS:
    case SIGE_PARAM_RUNNING_MEAN: break;
  }
  for (size_t i = 0; i < t->numel; i++)
    t->data[i] = (float)(std > 0.0 ? std * sige_rng_normal(rng) : value);
}

sige_weights *sige_random_model_weights(sige_model_kind kind, const void *cfg, uint64_t seed,
                                        GError **error) {
  g_autoptr(sige_param_list) l = sige_model_kind_params(kind, cfg, error);
  if (!l) return NULL;
  g_autoptr(sige_weights) w = sige_weights_new();
  sige_rng rng;
  sige_rng_init(&rng, seed);
  for (guint i = 0; i < sige_param_list_length(l); i++) {
    const sige_param *p = sige_param_list_get(l, i);
    sige_tensor *t = sige_tensor_new(p->ndim, p->shape, error);
    if (!t) return NULL;
    fill(&rng, p, t);
    sige_weights_insert(w, p->key, t);
  }
  return g_steal_pointer(&w);
}

sige_weights *sige_random_spade_weights(const sige_spade_config *cfg, uint64_t seed,
                                        GError **error) {
  return sige_random_model_weights(SIGE_MODEL_SPADE, cfg, seed, error);
}

sige_weights *sige_random_gancomp_weights(const sige_gancomp_config *cfg, uint64_t seed,
                                          GError **error) {
  return sige_random_model_weights(SIGE_MODEL_GANCOMP_SPADE, cfg, seed, error);
}

sige_weights *sige_random_ddpm_weights(const sige_ddpm_config *cfg, uint64_t seed,
                                       GError **error) {
  return sige_random_model_weights(SIGE_MODEL_DDPM_UNET, cfg, seed, error);
}

sige_weights *sige_random_pd_weights(const sige_pd_config *cfg, uint64_t seed, GError **error) {
  return sige_random_model_weights(SIGE_MODEL_PD_UNET, cfg, seed, error);
}

void sige_tiny_ddpm_config(sige_ddpm_config *c) {
  sige_ddpm_config_init(c);
  c->ch = 32;
  c->n_ch_mult = 2;
  c->ch_mult[0] = c->ch_mult[1] = 1;
  c->num_res_blocks = 1;
  c->n_attn_resolutions = 0;
  c->image_size = 32;
}

sige_model *sige_tiny_ddpm_model(uint64_t seed, GError **error) {
  sige_ddpm_config c;
  sige_tiny_ddpm_config(&c);
  g_autoptr(sige_weights) w = sige_random_ddpm_weights(&c, seed, error);
  return w ? sige_model_new_ddpm(&c, w, error) : NULL;
}
