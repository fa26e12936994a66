/* Seeded random weight tables for benchmarking full-size models without a
 * checkpoint (drawn from the seeded sige_rng of sige/rng.h). */
#pragma once
#include <glib.h>
#include <stdint.h>

#include "sige/model.h"
#include "sige/rng.h"
#include "sige/weights.h"

G_BEGIN_DECLS

/* Every tensor a model of this kind and config reads (its parameter list;
 * plain `.weight` names, no spectral norm), convs and linears drawn
 * N(0, 1/fan_in), biases N(0, 0.01^2), norms at identity.  cfg: the kind's
 * config struct. */
sige_weights *sige_random_model_weights(sige_model_kind kind, const void *cfg, uint64_t seed,
                                        GError **error);
/* The same, typed per model. */
sige_weights *sige_random_spade_weights(const sige_spade_config *cfg, uint64_t seed,
                                        GError **error);
sige_weights *sige_random_ddpm_weights(const sige_ddpm_config *cfg, uint64_t seed,
                                       GError **error);
sige_weights *sige_random_gancomp_weights(const sige_gancomp_config *cfg, uint64_t seed,
                                          GError **error);
sige_weights *sige_random_pd_weights(const sige_pd_config *cfg, uint64_t seed, GError **error);

/* A DDPM UNet small enough to build and run in a unit test: ch 32, two
 * levels of one residual block, no attention, 32x32 images. */
void sige_tiny_ddpm_config(sige_ddpm_config *c);
/* That UNet built with random weights of the given seed. */
sige_model *sige_tiny_ddpm_model(uint64_t seed, GError **error);

G_END_DECLS
