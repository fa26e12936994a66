/* The CLIP text encoder of Stable Diffusion 1.x (OpenAI CLIP's text
 * transformer; Hugging Face CLIPTextModel names): its config, parameter list
 * and one forward.
 *
 *   x = token_embedding[ids] + position_embedding        hidden_states/0
 *   per layer:  x = x + out_proj(attn(layer_norm1(x)))   causal mask only
 *               x = x + fc2(quick_gelu(fc1(layer_norm2(x))))   hidden_states/i
 *   last_hidden_state = final_layer_norm(x)
 *
 * SD's FrozenCLIPEmbedder calls the transformer with input_ids only, so no
 * padding mask: the padding tokens attend causally like any other.  The
 * model has no spatial input and therefore no sparse pass; its forward
 * ignores the pass's mode and runs dense. */
#include <stddef.h>
#include <string.h>

#include "../buffer.h"
#include "model_internal.h"
#include "param_list.h"
#include "sige/error.h"

#define SD_PREFIX "cond_stage_model.transformer.text_model."
#define HF_PREFIX "text_model."

typedef struct {
  sige_tensor *ln1_g, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
  sige_tensor *ln2_g, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} clip_layer;

typedef struct {
  sige_clip_text_config cfg;
  sige_tensor *tok, *pos, *lnf_g, *lnf_b;
  clip_layer *layer;
} clip_text;

void sige_clip_text_config_init(sige_clip_text_config *c) {
  /* openai/CLIP ViT-L/14 (SD 1.x's FrozenCLIPEmbedder): transformer_width
   * 768, 12 layers, heads = width / 64 */
  memset(c, 0, sizeof *c);
  c->vocab_size = 49408;
  c->context_length = 77;
  c->width = 768;
  c->layers = 12;
  c->heads = 12;
  c->mlp_width = 4 * 768;
  c->layernorm_eps = 1e-5f;
  c->sd_single_file = TRUE;
  sige_sparse_config_defaults(&c->sparse, 0.0f, 0, 0);
}

static void clip_free(void *impl) {
  clip_text *m = impl;
  if (!m) return;
  sige_tensor_free(m->tok);
  sige_tensor_free(m->pos);
  sige_tensor_free(m->lnf_g);
  sige_tensor_free(m->lnf_b);
  for (int i = 0; m->layer && i < m->cfg.layers; i++) {
    sige_tensor **t = (sige_tensor **)&m->layer[i];
    for (size_t j = 0; j < sizeof(clip_layer) / sizeof(sige_tensor *); j++) sige_tensor_free(t[j]);
  }
  g_free(m->layer);
  g_free(m);
}

static void *clip_declare(const void *config, sige_param_list *l, GError **error) {
  const sige_clip_text_config *c = config;
  if (c->vocab_size < 1 || c->context_length < 1 || c->width < 1 || c->layers < 1 ||
      c->heads < 1 || c->width % c->heads || c->mlp_width < 1 || !(c->layernorm_eps > 0.0f)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                "CLIP text config: vocab_size %d, context_length %d, width %d, layers %d, heads "
                "%d, mlp_width %d out of range (width must be a multiple of heads)",
                c->vocab_size, c->context_length, c->width, c->layers, c->heads, c->mlp_width);
    return NULL;
  }
  clip_text *m = g_new0(clip_text, 1);
  m->cfg = *c;
  m->layer = g_new0(clip_layer, c->layers);
  const char *p = c->sd_single_file ? SD_PREFIX : HF_PREFIX;
  const int w = c->width;
  sige_params_matrix(l, &m->tok, c->vocab_size, w, "%sembeddings.token_embedding.weight", p);
  sige_params_matrix(l, &m->pos, c->context_length, w, "%sembeddings.position_embedding.weight",
                     p);
  for (int i = 0; i < c->layers; i++) {
    clip_layer *y = &m->layer[i];
    const char *e = "encoder.layers";
    sige_params_linear(l, &y->k_w, &y->k_b, w, w, "%s%s.%d.self_attn.k_proj", p, e, i);
    sige_params_linear(l, &y->v_w, &y->v_b, w, w, "%s%s.%d.self_attn.v_proj", p, e, i);
    sige_params_linear(l, &y->q_w, &y->q_b, w, w, "%s%s.%d.self_attn.q_proj", p, e, i);
    sige_params_linear(l, &y->o_w, &y->o_b, w, w, "%s%s.%d.self_attn.out_proj", p, e, i);
    sige_params_norm(l, &y->ln1_g, &y->ln1_b, w, "%s%s.%d.layer_norm1", p, e, i);
    sige_params_linear(l, &y->fc1_w, &y->fc1_b, c->mlp_width, w, "%s%s.%d.mlp.fc1", p, e, i);
    sige_params_linear(l, &y->fc2_w, &y->fc2_b, w, c->mlp_width, "%s%s.%d.mlp.fc2", p, e, i);
    sige_params_norm(l, &y->ln2_g, &y->ln2_b, w, "%s%s.%d.layer_norm2", p, e, i);
  }
  sige_params_norm(l, &m->lnf_g, &m->lnf_b, w, "%sfinal_layer_norm", p);
  return m;
}

/* A [rows, cols] tensor on the context's backend (host or device). */
static sige_tensor *rows_new(sige_ctx *ctx, int64_t rows, int cols, GError **error) {
  const sige_tensor where = {.backend = sige_ctx_backend(ctx)};
  sige_tensor *t = sige_tensor_new4_like(&where, (int)rows, cols, 1, 1, error);
  if (t) t->ndim = 2; /* trailing dims are 1 */
  return t;
}

/* A copy of x where the caller keeps it: on the host. */
static gboolean keep(GPtrArray *hidden, const sige_tensor *x, GError **error) {
  if (!hidden) return TRUE;
  sige_tensor *h = sige_tensor_to_host(x, error); /* a copy, also of a host tensor */
  if (!h) return FALSE;
  g_ptr_array_add(hidden, h);
  return TRUE;
}

static gboolean clip_run(const clip_text *m, sige_ctx *ctx, const int32_t *ids, int n,
                         sige_tensor **out, GPtrArray *hidden, GError **error) {
  const sige_clip_text_config *c = &m->cfg;
  const int64_t rows = (int64_t)n * c->context_length;
  g_autoptr(sige_tensor) x = rows_new(ctx, rows, c->width, error);
  g_autoptr(sige_tensor) h = rows_new(ctx, rows, c->width, error);
  g_autoptr(sige_tensor) q = rows_new(ctx, rows, c->width, error);
  g_autoptr(sige_tensor) k = rows_new(ctx, rows, c->width, error);
  g_autoptr(sige_tensor) v = rows_new(ctx, rows, c->width, error);
  g_autoptr(sige_tensor) f = rows_new(ctx, rows, c->mlp_width, error);
  if (!x || !h || !q || !k || !v || !f) return FALSE;
  if (!sige_token_embedding(ctx, m->tok, ids, n, c->context_length, m->pos, x, error) ||
      !keep(hidden, x, error))
    return FALSE;
  for (int i = 0; i < c->layers; i++) {
    const clip_layer *y = &m->layer[i];
    sige_layer_norm(ctx, x, y->ln1_g, y->ln1_b, c->layernorm_eps, h);
    if (!sige_linear(ctx, h, y->q_w, y->q_b, q, error) ||
        !sige_linear(ctx, h, y->k_w, y->k_b, k, error) ||
        !sige_linear(ctx, h, y->v_w, y->v_b, v, error) ||
        !sige_token_attention(ctx, q, k, v, n, c->heads, TRUE, h, error) ||
        !sige_linear(ctx, h, y->o_w, y->o_b, q, error))
      return FALSE;
    sige_add(ctx, x, q, x);
    sige_layer_norm(ctx, x, y->ln2_g, y->ln2_b, c->layernorm_eps, h);
    if (!sige_linear(ctx, h, y->fc1_w, y->fc1_b, f, error)) return FALSE;
    sige_activation(ctx, f, SIGE_ACT_QUICK_GELU, f);
    if (!sige_linear(ctx, f, y->fc2_w, y->fc2_b, q, error)) return FALSE;
    sige_add(ctx, x, q, x);
    if (!keep(hidden, x, error)) return FALSE;
  }
  sige_layer_norm(ctx, x, m->lnf_g, m->lnf_b, c->layernorm_eps, h);
  if (!sige_buffer_check(sige_ctx_backend(ctx), error)) return FALSE;
  *out = g_steal_pointer(&h);
  return TRUE;
}

/* input: [n, context_length] token ids stored as floats */
static gboolean clip_forward(const void *impl, sige_pass *pass, const sige_tensor *input, float t,
                             sige_tensor **out, GError **error) {
  (void)t;
  const clip_text *m = impl;
  const int ctxlen = m->cfg.context_length;
  if (input->numel == 0 || input->numel % (size_t)ctxlen) {
    char buf[64];
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE,
                "CLIP text encoder: input %s holds no whole number of %d-token prompts",
                sige_tensor_shape_str(input, buf, sizeof buf), ctxlen);
    return FALSE;
  }
  g_autoptr(sige_tensor) host = sige_tensor_to_host(input, error);
  if (!host) return FALSE;
  g_autofree int32_t *ids = g_new(int32_t, host->numel);
  for (size_t i = 0; i < host->numel; i++) ids[i] = (int32_t)host->data[i];
  return clip_run(m, pass->ctx, ids, (int)(host->numel / ctxlen), out, NULL, error);
}

gboolean sige_clip_text_encode(const sige_model *model, sige_ctx *ctx, const int32_t *ids, int n,
                               sige_tensor **last, GPtrArray *hidden, GError **error) {
  *last = NULL;
  if (model->cls != &sige_clip_text_class) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "a %s model is no CLIP text encoder",
                model->cls->name);
    return FALSE;
  }
  g_autoptr(sige_tensor) dev = NULL;
  if (!clip_run(model->impl, ctx, ids, n, &dev, hidden, error)) return FALSE;
  *last = sige_tensor_to_host(dev, error);
  return *last != NULL;
}

static void clip_input_shape(const void *cfg, int64_t shape[4]) {
  const sige_clip_text_config *c = cfg;
  shape[0] = 1, shape[1] = c->context_length, shape[2] = 1, shape[3] = 1;
}

static void clip_lowest_level(const void *cfg, int *h, int *w) {
  (void)cfg;
  *h = *w = 1;
}

static const char *key_prefix(const sige_weights *w) {
  if (sige_weights_contains(w, SD_PREFIX "embeddings.token_embedding.weight")) return SD_PREFIX;
  if (sige_weights_contains(w, HF_PREFIX "embeddings.token_embedding.weight")) return HF_PREFIX;
  return NULL;
}

static gboolean clip_recognise(const sige_weights *w) { return key_prefix(w) != NULL; }

/* Widths and the layer count from the shapes.  The head count is not in
 * the tensors: metadata "sige.heads" when present, else OpenAI CLIP's rule
 * heads = width / 64 (transformer_heads = transformer_width // 64 in
 * openai/CLIP model.py; SD 1.x: 768 / 64 = 12), which needs a width that 64
 * divides. */
static gboolean clip_infer(const sige_weights *w, const char *path, void *config, GError **error) {
  sige_clip_text_config *c = config;
  sige_clip_text_config_init(c);
  const char *p = key_prefix(w);
  if (!p) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: no '%sembeddings.token_embedding.weight' or '%sembeddings.token_embedding."
                "weight'", path, SD_PREFIX, HF_PREFIX);
    return FALSE;
  }
  c->sd_single_file = !strcmp(p, SD_PREFIX);
  g_autofree char *tk = g_strconcat(p, "embeddings.token_embedding.weight", NULL);
  g_autofree char *pk = g_strconcat(p, "embeddings.position_embedding.weight", NULL);
  g_autofree char *fk = g_strconcat(p, "encoder.layers.0.mlp.fc1.weight", NULL);
  const sige_indexed_shape tok = sige_shape_of(w, tk), pos = sige_shape_of(w, pk),
                           fc1 = sige_shape_of(w, fk);
  if (tok.ndim != 2 || !pos.found || pos.ndim != 2 || !fc1.found || fc1.ndim != 2) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: a CLIP text encoder needs 2-D '%s', '%s' and '%s'", path, tk, pk, fk);
    return FALSE;
  }
  c->vocab_size = (int)tok.shape[0];
  c->width = (int)tok.shape[1];
  c->context_length = (int)pos.shape[0];
  c->mlp_width = (int)fc1.shape[0];
  c->layers = 0;
  for (;;) {
    g_autofree char *key =
        g_strdup_printf("%sencoder.layers.%d.self_attn.q_proj.weight", p, c->layers);
    if (!sige_weights_contains(w, key)) break;
    c->layers++;
  }
  const int heads = sige_meta_int(w, "sige.heads", 0);
  if (heads > 0) {
    c->heads = heads;
  } else if (c->width % 64 == 0) {
    c->heads = c->width / 64;
  } else {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_FORMAT,
                "%s: CLIP width %d is no multiple of 64, so the number of heads cannot be "
                "inferred; give it as metadata 'sige.heads'", path, c->width);
    return FALSE;
  }
  return TRUE;
}

static void clip_describe(const void *config, GString *out) {
  const sige_clip_text_config *c = config;
  sige_describe_line(out, "width", "%d", c->width);
  sige_describe_line(out, "layers", "%d", c->layers);
  sige_describe_line(out, "heads", "%d", c->heads);
  sige_describe_line(out, "mlp_width", "%d", c->mlp_width);
  sige_describe_line(out, "vocab_size", "%d", c->vocab_size);
  sige_describe_line(out, "context_length", "%d", c->context_length);
}

const sige_model_class sige_clip_text_class = {
    .kind = SIGE_MODEL_CLIP_TEXT,
    .name = "clip-text",
    .config_size = sizeof(sige_clip_text_config),
    .sparse_offset = offsetof(sige_clip_text_config, sparse),
    .declare = clip_declare,
    .free = clip_free,
    .forward = clip_forward,
    .input_shape = clip_input_shape,
    .lowest_level = clip_lowest_level,
    .recognise = clip_recognise,
    .infer = clip_infer,
    .describe = clip_describe,
};
