/* The one seeded random generator of the project: splitmix64, the same
 * numbers on every machine, so that a seed names the same noise, weights or
 * test data everywhere.  Normals come from the Box-Muller transform in
 * double, two per pair of uniforms (the second kept for the next call). */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct {
  uint64_t state;
  double spare; /* the second Box-Muller deviate */
  gboolean has_spare;
} sige_rng;

void sige_rng_init(sige_rng *r, uint64_t seed);
uint64_t sige_rng_next(sige_rng *r);
double sige_rng_uniform(sige_rng *r);       /* [0, 1), 53 bits */
double sige_rng_uniform_open0(sige_rng *r); /* (0, 1]: never 0, so log() of it is finite */
double sige_rng_normal(sige_rng *r);        /* N(0, 1) */
int sige_rng_int(sige_rng *r, int n);       /* 0 .. n-1 (n > 0) */

G_END_DECLS
