#include "sige/rng.h"

#include <math.h>

void sige_rng_init(sige_rng *r, uint64_t seed) {
  r->state = seed;
  r->spare = 0.0;
  r->has_spare = FALSE;
}

uint64_t sige_rng_next(sige_rng *r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double sige_rng_uniform(sige_rng *r) {
  return (double)(sige_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double sige_rng_uniform_open0(sige_rng *r) {
  return ((double)(sige_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

double sige_rng_normal(sige_rng *r) {
  if (r->has_spare) {
    r->has_spare = FALSE;
    return r->spare;
  }
  const double radius = sqrt(-2.0 * log(sige_rng_uniform_open0(r)));
  const double angle = 2.0 * G_PI * sige_rng_uniform_open0(r);
  r->spare = radius * sin(angle);
  r->has_spare = TRUE;
  return radius * cos(angle);
}

int sige_rng_int(sige_rng *r, int n) { return (int)(sige_rng_uniform(r) * n); }
