/* A model's parameter list: every checkpoint tensor it reads, declared once
 * (key path, shape, role, and where the loaded tensor goes).  The loader
 * walks it to fill the model; the public view (sige_param_list_get) serves
 * the random-weight generator, the demo writer and `sige info`. */
#pragma once
#include "sige/model.h"
#include "../engine/pass.h"

/* Declarations.  The key is printf-formatted; a conv declares
 * "<key>.weight" [cout, cin, k, k] (or its spectral-norm form) and, with
 * bias, "<key>.bias"; a norm "<key>.weight" and "<key>.bias".  Each loads
 * into *dst when the list is walked (dst may be NULL for a list that is
 * only read, never loaded). */
void sige_params_conv(sige_param_list *l, sige_conv_layer *dst, int cout, int cin, int k,
                      int stride, int pad, gboolean bias, const char *fmt, ...) G_GNUC_PRINTF(9, 10);
void sige_params_vector(sige_param_list *l, sige_tensor **dst, sige_param_role role, int n,
                        const char *fmt, ...) G_GNUC_PRINTF(5, 6);
/* A linear layer: "<key>.weight" [out, in] and "<key>.bias" [out]. */
void sige_params_linear(sige_param_list *l, sige_tensor **w_dst, sige_tensor **b_dst, int out,
                        int in, const char *fmt, ...) G_GNUC_PRINTF(6, 7);
/* A bias-free matrix "<key>" [rows, cols] (an embedding table). */
void sige_params_matrix(sige_param_list *l, sige_tensor **dst, int rows, int cols,
                        const char *fmt, ...) G_GNUC_PRINTF(5, 6);
void sige_params_norm(sige_param_list *l, sige_tensor **g_dst, sige_tensor **b_dst, int c,
                      const char *fmt, ...) G_GNUC_PRINTF(5, 6);

sige_param_list *sige_param_list_new(void);
/* Loads every declared tensor into its destination, in declaration order;
 * the error names the missing or mis-shaped tensor.  On failure what was
 * loaded stays with its owner (the model frees it).  *bytes (may be NULL):
 * the bytes of the tensors loaded, as stored (F16 weights count 2 per
 * value). */
gboolean sige_param_list_load(const sige_param_list *l, const sige_weights *w, size_t *bytes,
                              GError **error);
