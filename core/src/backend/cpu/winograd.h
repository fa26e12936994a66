/* Winograd F(m x m, 3x3) convolution of the CPU backend (winograd.c) and
 * the rule that picks it (cpu/conv2d.c). */
#pragma once
#include <stdint.h>

#include "cpu_internal.h"

/* x, weight, bias, out as sige_cpu_conv2d; the conv is 3x3, stride 1,
 * groups 1; m is 4 or 2.  *mults: the multiplications the transformed
 * domain executed (its GEMMs). */
G_GNUC_INTERNAL gboolean sige_cpu_conv_winograd(sige_ctx *ctx, const sige_tensor *x,
                                                const sige_tensor *weight,
                                                const sige_tensor *bias,
                                                const sige_conv2d_params *p, int m,
                                                sige_tensor *out, uint64_t *mults,
                                                GError **error);
