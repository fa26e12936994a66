/* Dense operators with PyTorch semantics (float32, batch-aware NCHW).
 *
 * Conventions: inputs are const, results go to a caller-allocated `out` of the
 * right shape (use the *_out_shape helpers).  Element-wise ops allow out == x.
 * Ops that need scratch memory or can fail return gboolean and set a GError;
 * the others return void and treat a shape mismatch as a programming error
 * (g_return_if_fail).  Conv and matmul ops add their MACs to the context.
 *
 * An op runs where its data tensors live (tensor.h): on the host with the
 * CPU kernels, or on their device through the device backend, where
 * parameters (weights, biases, norm affines) may still be host tensors and
 * scale / shift arrays are host memory.  A void op that fails on a device
 * leaves the failure for the next op that returns an error. */
#pragma once
#include <glib.h>
#include "sige/context.h"
#include "sige/tensor.h"

G_BEGIN_DECLS

typedef enum {
  SIGE_ACT_NONE = 0,
  SIGE_ACT_RELU,
  SIGE_ACT_LEAKY_RELU, /* slope 0.2 unless a slope argument says otherwise */
  SIGE_ACT_SWISH,      /* x * sigmoid(x), a.k.a. SiLU */
  SIGE_ACT_TANH,
  SIGE_ACT_SIGMOID,
  SIGE_ACT_QUICK_GELU, /* x * sigmoid(1.702 x): OpenAI CLIP's MLP activation */
} sige_act;

#define SIGE_LEAKY_SLOPE 0.2f

/* ---- convolution ------------------------------------------------------ */
typedef struct {
  int stride_h, stride_w;
  int pad_top, pad_bottom, pad_left, pad_right; /* zero padding, may be asymmetric */
  int groups;                                   /* 1 = dense, Cin = depthwise */
} sige_conv2d_params;

/* stride 1, symmetric padding p, groups 1 */
sige_conv2d_params sige_conv2d_params_simple(int stride, int pad);

void sige_conv2d_out_shape(const sige_tensor *x, const sige_tensor *weight,
                           const sige_conv2d_params *p, int64_t out_shape[4]);

/* x: [N, Cin, H, W] (NCHW, or CNHW: then out must be CNHW too and all N
 * images go through one GEMM); weight: [Cout, Cin/groups, kh, kw];
 * bias: [Cout] or NULL. */
gboolean sige_conv2d(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                     const sige_tensor *bias, const sige_conv2d_params *p,
                     sige_tensor *out, GError **error);

/* x: [N, in] (2-D), weight: [out, in], bias [out] or NULL, out: [N, out]. */
gboolean sige_linear(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *weight,
                     const sige_tensor *bias, sige_tensor *out, GError **error);

/* ---- normalisation ---------------------------------------------------- */
/* Per-channel affine equivalent of GroupNorm on x (statistics per sample and
 * group, biased variance): y[n,c] = x[n,c] * scale[n*C+c] + shift[n*C+c].
 * gamma/beta may be NULL (no affine).  scale/shift hold N*C floats. */
void sige_group_norm_affine(sige_ctx *ctx, const sige_tensor *x, int groups, float eps,
                            const sige_tensor *gamma, const sige_tensor *beta,
                            float *scale, float *shift);
/* y = act(x * scale[n*C+c] + shift[n*C+c]); scale/shift are per (sample, channel)
 * when per_sample, else per channel (C floats). */
void sige_channel_affine(sige_ctx *ctx, const sige_tensor *x, const float *scale,
                         const float *shift, gboolean per_sample, sige_act act,
                         sige_tensor *out);
void sige_group_norm(sige_ctx *ctx, const sige_tensor *x, int groups, float eps,
                     const sige_tensor *gamma, const sige_tensor *beta, sige_tensor *out);
/* Per-channel sum[c] and sumsq[c] of x and x^2 over H x W, in double (x is
 * [1, C, H, W] NCHW): a GroupNorm's statistics before a per-channel offset
 * is added (the DDPM UNet's time embedding). */
void sige_channel_moments(sige_ctx *ctx, const sige_tensor *x, double *sum, double *sumsq);
/* Inference BatchNorm with running statistics; gamma/beta may be NULL. */
void sige_batch_norm(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *running_mean,
                     const sige_tensor *running_var, const sige_tensor *gamma,
                     const sige_tensor *beta, float eps, sige_tensor *out);
/* InstanceNorm without affine: per (sample, channel), biased variance. */
void sige_instance_norm(sige_ctx *ctx, const sige_tensor *x, float eps, sige_tensor *out);
/* out = x * (1 + gamma) + beta, all the same shape. */
void sige_spade_modulate(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *gamma,
                         const sige_tensor *beta, sige_tensor *out);

/* ---- element-wise ----------------------------------------------------- */
float sige_act_apply(sige_act act, float v); /* slope 0.2 for leaky relu */
/* act on n contiguous floats in place (vectorised; same values as
 * sige_act_apply). */
void sige_act_inplace(float *v, size_t n, sige_act act);
void sige_activation(sige_ctx *ctx, const sige_tensor *x, sige_act act, sige_tensor *out);
void sige_add(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b, sige_tensor *out);
void sige_concat_channels(sige_ctx *ctx, const sige_tensor *a, const sige_tensor *b,
                          sige_tensor *out);

/* ---- resampling -------------------------------------------------------- */
/* F.interpolate(mode="nearest") to out's H x W: src = min(floor(dst * (in/out)), in-1)
 * with the scale computed in float as PyTorch does. */
void sige_resize_nearest(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
/* F.interpolate(mode="bilinear", align_corners=False) to out's H x W. */
void sige_resize_bilinear(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);
/* 2x2 average pooling, stride 2 (H and W even). */
void sige_avg_pool2x2(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);

/* ---- attention and embeddings ----------------------------------------- */
/* The DDPM attention block: h = GroupNorm(x); q,k,v = 1x1 convs of h;
 * w = softmax over keys of (q^T k) / sqrt(C); h = v w^T; out = x + proj_out(h). */
typedef struct {
  int groups;
  float eps;
  const sige_tensor *norm_gamma, *norm_beta;
  const sige_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* [C, C, 1, 1], [C] */
  const sige_tensor *proj_w, *proj_b;
} sige_attention_params;
gboolean sige_attention(sige_ctx *ctx, const sige_tensor *x, const sige_attention_params *p,
                        sige_tensor *out, GError **error);
/* Variant whose GroupNorm is replaced by a given per-channel scale/shift
 * (statistics frozen by a previous pass).  scale/shift hold C floats. */
gboolean sige_attention_frozen(sige_ctx *ctx, const sige_tensor *x,
                               const sige_attention_params *p, const float *scale,
                               const float *shift, sige_tensor *out, GError **error);

/* The PD UNet's multi-head self-attention on x [1, C, H, W] (NCHW), with its
 * GroupNorm given as a per-channel scale / shift (C floats each):
 * h = x * scale + shift; q | k | v = qkv_w h + qkv_b (qkv_w [3C, C, 1, 1]);
 * per head of head_dim channels (heads * head_dim = C)
 * w = softmax_j(q_i . k_j / sqrt(head_dim)), o_i = sum_j w_ij v_j;
 * out = x + proj_w o + proj_b.  Biases may be NULL. */
gboolean sige_multihead_attention(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *qkv_w,
                                  const sige_tensor *qkv_b, const sige_tensor *proj_w,
                                  const sige_tensor *proj_b, int heads, int head_dim,
                                  const float *scale, const float *shift, sige_tensor *out,
                                  GError **error);

/* ---- token sequences (transformers) ----------------------------------- */
/* Sequences are 2-D [rows, C] tensors, rows = samples * tokens, one token a
 * row (what sige_linear takes). */

/* torch.nn.LayerNorm over the last dimension: per row, mean and biased
 * variance over C; y = (x - mean) / sqrt(var + eps) * gamma + beta.
 * x, out [rows, C] (out may be x); gamma, beta [C] or NULL (1 / 0). */
void sige_layer_norm(sige_ctx *ctx, const sige_tensor *x, const sige_tensor *gamma,
                     const sige_tensor *beta, float eps, sige_tensor *out);

/* Token + position embedding: row r = b * tokens + t of out [n * tokens, C]
 * is table[ids[r]] + pos[t] (pos [>= tokens, C] or NULL).  table [V, C];
 * ids: n * tokens host ints, each in [0, V) (else SIGE_ERROR_INVALID naming
 * the row and the id). */
gboolean sige_token_embedding(sige_ctx *ctx, const sige_tensor *table, const int32_t *ids, int n,
                              int tokens, const sige_tensor *pos, sige_tensor *out,
                              GError **error);

/* Scaled dot-product attention over token sequences with heads: q [n * tq,
 * heads * d], k and v [n * tk, heads * d], out [n * tq, heads * d].  For each
 * sample b, head h and query i: w_j = softmax_j(q_i . k_j / sqrt(d)) over the
 * keys j of sample b (causal: only j <= i, which needs tq == tk), out_i =
 * sum_j w_j v_j, each on the head's d columns.  No projections: callers run
 * sige_linear before and after. */
gboolean sige_token_attention(sige_ctx *ctx, const sige_tensor *q, const sige_tensor *k,
                              const sige_tensor *v, int n, int heads, gboolean causal,
                              sige_tensor *out, GError **error);

/* GEGLU, the feed-forward gate of Stable Diffusion's transformers: each
 * row of x [rows, 2 c] holds (a | g); out [rows, c] = a * gelu(g), with the
 * exact GELU 0.5 g (1 + erf(g / sqrt 2)) (torch's default, not the tanh
 * approximation). */
void sige_geglu(sige_ctx *ctx, const sige_tensor *x, sige_tensor *out);

/* A [1, C, H, W] map as token rows [H * W, C] (row y * W + x), and back:
 * what a spatial transformer runs its token ops on. */
void sige_map_to_tokens(sige_ctx *ctx, const sige_tensor *map, sige_tensor *tokens);
void sige_tokens_to_map(sige_ctx *ctx, const sige_tensor *tokens, sige_tensor *map);

/* DDPM sinusoidal embedding: for each of the n timesteps, half = dim/2,
 * f_i = exp(-log(10000) * i / (half - 1)); out[j] = [sin(t f), cos(t f)]
 * (zero pad when dim is odd).  out: [n, dim]. */
void sige_timestep_embedding(const float *t, int n, int dim, sige_tensor *out);
/* The latent-diffusion (openaimodel) embedding of Stable Diffusion: half =
 * dim/2, f_i = exp(-log(10000) * i / half); out[j] = [cos(t f), sin(t f)]
 * (zero pad when dim is odd).  out: [n, dim]. */
void sige_timestep_embedding_ldm(const float *t, int n, int dim, sige_tensor *out);

G_END_DECLS
