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

/* sige_sparse_conv with F(4x4, 3x3): the input transform reads the source
 * (or the gathered batch) directly, the output transform writes dst
 * (bias, act_out, residual, F16 rounding) directly. */
G_GNUC_INTERNAL gboolean sige_cpu_sparse_conv_winograd(sige_ctx *ctx, const sige_sparse_conv_io *io,
                                                       const sige_block_geometry *g,
                                                       const sige_active_blocks *ab,
                                                       sige_tensor *dst, uint64_t *mults,
                                                       GError **error);

/* The tile side (4 or 2) the rule gives a 3x3 conv, 0 for none: kernel,
 * stride and groups as conv2d's; fused: the sparse conv's fused path (F(4x4)
 * only). */
G_GNUC_INTERNAL int sige_cpu_winograd_rule(const sige_ctx *ctx, int kh, int kw, int stride,
                                           int groups, int cin, int cout, uint64_t tiles,
                                           gboolean fused);
