/* exp(x) for float32 in a form the compiler vectorises: range reduction by
 * ln 2 and a degree-6 polynomial (the Cephes expf coefficients), maximum
 * relative error about 2e-7, i.e. within 2 ulp of expf.  The activations
 * (swish, sigmoid) spend most of their time in exp; the libm call cannot be
 * vectorised without -ffast-math. */
#pragma once
#include <stdint.h>
#include <string.h>

static inline float sige_fast_expf(float x) {
  /* below -88 the result flushes to 0; above 88.7 the exponent field
   * saturates to all ones, i.e. +inf, as expf overflows (so that swish and
   * sigmoid of large negative inputs give exactly -0 and 0, like torch) */
  x = x < -88.0f ? -88.0f : x;
  x = x > 89.0f ? 89.0f : x;
  /* round to nearest by the 1.5 * 2^23 trick: branch-free, |x * log2 e| < 2^22 */
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r2 + r + 1.0f;
  const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return e * scale;
}
