/* One row of a numerically stable softmax, in place: the CPU backend's
 * attention (cpu/attention.c) and the simulated device's softmax primitive
 * (device/sim.c) share it, so the simulated device matches the CPU to the
 * bit. */
#pragma once
#include <math.h>

static inline void sige_softmax_row(float *r, int cols) {
  float m = r[0];
  for (int j = 1; j < cols; j++) m = r[j] > m ? r[j] : m;
  /* Sum in double: rows can be thousands of terms long. */
  double sum = 0.0;
  for (int j = 0; j < cols; j++) {
    r[j] = expf(r[j] - m);
    sum += r[j];
  }
  const float inv = (float)(1.0 / sum);
  for (int j = 0; j < cols; j++) r[j] *= inv;
}
