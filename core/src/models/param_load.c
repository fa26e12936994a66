/* Loading convolution layers from a weight table, with PyTorch's eval-mode
 * spectral normalisation baked in. */
#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "sige/error.h"

void sige_conv_layer_clear(sige_conv_layer *c) {
  sige_tensor_free(c->weight);
  sige_tensor_free(c->bias);
  memset(c, 0, sizeof *c);
}

sige_tensor *sige_load_vector(const sige_weights *w, const char *name, int n, GError **error) {
  int64_t shape[1] = {n};
  return sige_weights_read_tensor(w, name, 1, shape, error);
}

/* W = W_orig / sigma with sigma = u . (W_mat v), W_mat = W_orig as [out, -1]
 * (what torch.nn.utils.spectral_norm computes in eval mode from the stored
 * power-iteration vectors). */
static sige_tensor *spectral_weight(const sige_weights *w, const char *prefix, int cout,
                                    int64_t cols, const int64_t *shape, GError **error) {
  g_autofree char *n_orig = g_strdup_printf("%s.weight_orig", prefix);
  g_autofree char *n_u = g_strdup_printf("%s.weight_u", prefix);
  g_autofree char *n_v = g_strdup_printf("%s.weight_v", prefix);
  /* filled straight from the file; u and v are vectors, read and dropped */
  g_autoptr(sige_tensor) out = sige_weights_read_tensor(w, n_orig, 4, shape, error);
  if (!out) return NULL;
  int64_t su[1] = {cout}, sv[1] = {cols};
  g_autoptr(sige_tensor) u = sige_weights_read_tensor(w, n_u, 1, su, error);
  if (!u) return NULL;
  g_autoptr(sige_tensor) v = sige_weights_read_tensor(w, n_v, 1, sv, error);
  if (!v) return NULL;
  double sigma = 0.0;
  for (int o = 0; o < cout; o++) {
    double wv = 0.0;
    const float *row = out->data + (size_t)o * cols;
    for (int64_t j = 0; j < cols; j++) wv += (double)row[j] * v->data[j];
    sigma += (double)u->data[o] * wv;
  }
  if (!(fabs(sigma) > 1e-30) || !isfinite(sigma)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: spectral norm sigma = u . (W v) is %g; expected a finite non-zero value",
                n_orig, sigma);
    return NULL;
  }
  for (size_t i = 0; i < out->numel; i++) out->data[i] = (float)(out->data[i] / sigma);
  return g_steal_pointer(&out);
}

gboolean sige_load_conv(const sige_weights *w, const char *prefix, int cout, int cin, int k,
                        int stride, int pad, gboolean bias, sige_conv_layer *out, GError **error) {
  memset(out, 0, sizeof *out);
  int64_t shape[4] = {cout, cin, k, k};
  g_autofree char *n_w = g_strdup_printf("%s.weight", prefix);
  g_autofree char *n_orig = g_strdup_printf("%s.weight_orig", prefix);
  if (sige_weights_contains(w, n_orig)) {
    out->weight = spectral_weight(w, prefix, cout, (int64_t)cin * k * k, shape, error);
  } else {
    /* a spectral-norm weight is divided by sigma: not an F16 value any more */
    out->weight = sige_weights_keep_half() ? sige_weights_read_tensor_half(w, n_w, 4, shape, error)
                                           : sige_weights_read_tensor(w, n_w, 4, shape, error);
  }
  if (!out->weight) return FALSE;
  if (bias) {
    g_autofree char *n_b = g_strdup_printf("%s.bias", prefix);
    out->bias = sige_load_vector(w, n_b, cout, error);
    if (!out->bias) {
      sige_conv_layer_clear(out);
      return FALSE;
    }
  }
  out->kernel = k;
  out->params = sige_conv2d_params_simple(stride, pad);
  return TRUE;
}

gboolean sige_conv_concat(sige_conv_layer *parts, int n, sige_conv_layer *out, GError **error) {
  int64_t cout = 0;
  /* half weights stay half when every part is (a BF16 file may have left
   * one part float32): then the parts are widened */
  gboolean half = TRUE;
  for (int i = 0; i < n; i++) {
    cout += parts[i].weight->shape[0];
    half = half && parts[i].weight->storage == SIGE_STORAGE_F16;
  }
  for (int i = 0; i < n && !half; i++) {
    if (parts[i].weight->storage == SIGE_STORAGE_F32) continue;
    sige_tensor *f = sige_tensor_to_f32(parts[i].weight, error);
    if (!f) return FALSE;
    sige_tensor_free(parts[i].weight);
    parts[i].weight = f;
  }
  const sige_tensor *w0 = parts[0].weight;
  int64_t shape[4] = {cout, w0->shape[1], w0->shape[2], w0->shape[3]};
  memset(out, 0, sizeof *out);
  out->weight = sige_tensor_new(4, shape, error);
  if (out->weight && half) {
    /* the same bytes as F16: a new tensor of that storage */
    sige_tensor *h = sige_tensor_to_f16(out->weight, error);
    sige_tensor_free(out->weight);
    out->weight = h;
  }
  int64_t bshape[1] = {cout};
  out->bias = out->weight ? sige_tensor_new(1, bshape, error) : NULL;
  if (!out->weight || !out->bias) {
    sige_conv_layer_clear(out);
    return FALSE;
  }
  size_t woff = 0, boff = 0;
  const size_t es = sige_tensor_elem_size(out->weight);
  for (int i = 0; i < n; i++) {
    memcpy((char *)out->weight->data + woff * es, parts[i].weight->data,
           parts[i].weight->numel * es);
    woff += parts[i].weight->numel;
    size_t nb = (size_t)parts[i].weight->shape[0];
    if (parts[i].bias) memcpy(out->bias->data + boff, parts[i].bias->data, nb * sizeof(float));
    boff += nb;
  }
  out->kernel = parts[0].kernel;
  out->params = parts[0].params;
  for (int i = 0; i < n; i++) sige_conv_layer_clear(&parts[i]);
  return TRUE;
}

sige_tensor *sige_load_matrix(const sige_weights *w, const char *name, int rows, int cols,
                              GError **error) {
  int64_t shape[2] = {rows, cols};
  return sige_weights_keep_half() ? sige_weights_read_tensor_half(w, name, 2, shape, error)
                                  : sige_weights_read_tensor(w, name, 2, shape, error);
}

gboolean sige_load_norm(const sige_weights *w, const char *prefix, int c, sige_tensor **g,
                        sige_tensor **b, GError **error) {
  g_autofree char *ng = g_strdup_printf("%s.weight", prefix);
  g_autofree char *nb = g_strdup_printf("%s.bias", prefix);
  return (*g = sige_load_vector(w, ng, c, error)) && (*b = sige_load_vector(w, nb, c, error));
}

sige_tensor *sige_concat_dense(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b,
                               GError **error) {
  /* a sparse layer's output may be an F16 cache view (fp16 caches) */
  g_autoptr(sige_tensor) a32 = NULL, b32 = NULL;
  if (a->storage == SIGE_STORAGE_F16 && !(a = a32 = sige_tensor_to_f32(a, error))) return NULL;
  if (b->storage == SIGE_STORAGE_F16 && !(b = b32 = sige_tensor_to_f32(b, error))) return NULL;
  sige_tensor *out =
      sige_tensor_new4_like(a, 1, SIGE_C(a) + SIGE_C(b), SIGE_H(a), SIGE_W(a), error);
  if (out) sige_concat_channels(ctx, a, b, out);
  return out;
}
