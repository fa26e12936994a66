/* Half weights kept half (sige_weights_keep_half): a model loaded from an
 * F16 file with its conv, linear and embedding weights kept F16 computes
 * exactly what the same model with its weights widened at load computes
 * (F16 -> F32 is exact and the kernels widen before the same float32
 * arithmetic, so the tolerance is zero: bit-identical outputs), on every
 * model family, through im2col, the 1x1 and small-Cout paths, Winograd
 * (its weight transform reads the F16 values), attention, the token table,
 * sparse passes and the simulated device; and its weights take about half
 * the bytes (the model's own accounting, sige_model_weight_bytes). */
#include "test_util.h"

#include <glib/gstdio.h>
#include <string.h>

#include "random_weights.h"
#include "sige/context.h"
#include "sige/device.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/sparse.h"
#include "sige/weights.h"

typedef struct {
  const char *what;
  sige_model_kind kind;
  const void *cfg;
} model_case;

static sige_model *build(const model_case *c, const sige_weights *w, GError **error) {
  switch (c->kind) {
    case SIGE_MODEL_SPADE: return sige_model_new_spade(c->cfg, w, error);
    case SIGE_MODEL_GANCOMP_SPADE: return sige_model_new_gancomp(c->cfg, w, error);
    case SIGE_MODEL_DDPM_UNET: return sige_model_new_ddpm(c->cfg, w, error);
    case SIGE_MODEL_PD_UNET: return sige_model_new_pd(c->cfg, w, error);
    case SIGE_MODEL_CLIP_TEXT: return sige_model_new_clip_text(c->cfg, w, error);
    case SIGE_MODEL_SD_UNET: return sige_model_new_sd_unet(c->cfg, w, error);
    case SIGE_MODEL_SD_VAE_ENCODER:
    case SIGE_MODEL_SD_VAE_DECODER: return sige_model_new_sd_vae(c->kind, c->cfg, w, error);
  }
  return NULL;
}

/* The random weights of c saved as F16 and indexed again: what a user's
 * fp16 checkpoint is to the loader. */
static sige_weights *f16_file(const model_case *c, uint64_t seed) {
  GError *error = NULL;
  g_autoptr(sige_weights) w = sige_random_model_weights(c->kind, c->cfg, seed, &error);
  if (!w) fail_msg("%s: random weights: %s", c->what, error->message);
  g_autofree char *dir = g_dir_make_tmp("sige-half-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "w.safetensors", NULL);
  if (!sige_weights_save_safetensors(w, path, SIGE_DTYPE_F16, NULL, &error))
    fail_msg("%s: save: %s", c->what, error->message);
  sige_weights *back = sige_weights_load_file(path, &error);
  /* the index keeps the file open: unlinking it now is fine on POSIX */
  g_unlink(path);
  g_rmdir(dir);
  if (!back) fail_msg("%s: load: %s", c->what, error->message);
  return back;
}

static sige_model *load(const model_case *c, const sige_weights *w, gboolean keep) {
  GError *error = NULL;
  sige_weights_set_keep_half(keep);
  sige_model *m = build(c, w, &error);
  if (!m) fail_msg("%s (%s): %s", c->what, keep ? "keep" : "widen", error->message);
  return m;
}

/* An input for m: smooth values of both signs (a label map for SPADE:
 * the values need not be one-hot for the arithmetic to be compared). */
static sige_tensor *input_for(const sige_model *m, uint64_t seed) {
  int64_t s[4];
  sige_model_input_shape(m, s);
  sige_tensor *x = sige_tensor_new4((int)s[0], (int)s[1], (int)s[2], (int)s[3], NULL);
  sige_test_rng r = sige_test_rng_new(seed);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = sige_test_rng_uniform(&r, -1.0f, 1.0f);
  return x;
}

static sige_tensor *forward(const model_case *c, const sige_model *m, sige_ctx *ctx,
                            const sige_tensor *x, const sige_tensor *cond) {
  GError *error = NULL;
  sige_tensor *out = NULL;
  if (!sige_model_forward_dense_cond(m, ctx, x, 250.0f, cond, &out, &error))
    fail_msg("%s: forward: %s", c->what, error->message);
  sige_tensor *host = sige_tensor_to_host(out, &error);
  sige_tensor_free(out);
  if (!host) fail_msg("%s: to host: %s", c->what, error->message);
  return host;
}

static void assert_same(const char *what, const char *how, const sige_tensor *a,
                        const sige_tensor *b) {
  assert_int_equal(a->numel, b->numel);
  if (memcmp(a->data, b->data, a->numel * sizeof(float))) {
    size_t i = 0;
    while (a->data[i] == b->data[i] || (a->data[i] != a->data[i] && b->data[i] != b->data[i])) i++;
    fail_msg("%s (%s): half weights kept half differ from widened ones at %zu: %.9g vs %.9g",
             what, how, i, (double)a->data[i], (double)b->data[i]);
  }
}

/* Widened and kept models of c: the bytes, then the dense outputs on the
 * CPU (the default conv policy, then every conv forced to Winograd, then
 * forced to im2col) and, when sim, on the simulated device.  min_saving:
 * the least fraction of the widened bytes that keeping saves. */
static void check_case(const model_case *c, const sige_tensor *cond, double min_saving,
                       gboolean sim) {
  g_autoptr(sige_weights) w = f16_file(c, 7);
  g_autoptr(sige_model) wide = load(c, w, FALSE);
  g_autoptr(sige_model) half = load(c, w, TRUE);
  sige_weights_set_keep_half(TRUE);
  const size_t bw = sige_model_weight_bytes(wide), bh = sige_model_weight_bytes(half);
  /* widened: 4 bytes for every value the list declares */
  GError *error = NULL;
  g_autoptr(sige_param_list) l = sige_model_params(wide, &error);
  assert_non_null(l);
  size_t values = 0, matrix_values = 0;
  for (guint i = 0; i < sige_param_list_length(l); i++) {
    const sige_param *p = sige_param_list_get(l, i);
    values += (size_t)p->numel;
    if (p->ndim >= 2) matrix_values += (size_t)p->numel;
  }
  if (bw != 4 * values) fail_msg("%s: widened weights take %zu bytes, expected 4 x %zu", c->what, bw, values);
  /* kept: 2 bytes for each conv / linear / embedding value (ndim >= 2) */
  if (bh != 2 * matrix_values + 4 * (values - matrix_values))
    fail_msg("%s: half weights take %zu bytes, expected 2 x %zu + 4 x %zu", c->what, bh,
             matrix_values, values - matrix_values);
  if ((double)bh > (1.0 - min_saving) * (double)bw)
    fail_msg("%s: half weights take %zu of %zu bytes, saving less than %.0f %%", c->what, bh, bw,
             100.0 * min_saving);

  g_autoptr(sige_tensor) x = input_for(wide, 11);
  static const sige_conv_policy policies[] = {SIGE_CONV_POLICY_AUTO, SIGE_CONV_POLICY_WINO4,
                                              SIGE_CONV_POLICY_IM2COL};
  static const char *const names[] = {"cpu auto", "cpu wino4", "cpu im2col"};
  for (size_t i = 0; i < G_N_ELEMENTS(policies); i++) {
    g_autoptr(sige_ctx) ctx = sige_ctx_new(2);
    sige_ctx_set_conv_policy(ctx, policies[i]);
    g_autoptr(sige_tensor) a = forward(c, wide, ctx, x, cond);
    g_autoptr(sige_tensor) b = forward(c, half, ctx, x, cond);
    assert_same(c->what, names[i], a, b);
  }
  if (sim) {
    g_autoptr(sige_ctx) ctx = sige_ctx_new_device(2, SIGE_DEVICE_SIM, &error);
    if (!ctx) fail_msg("sim: %s", error->message);
    g_autoptr(sige_tensor) a = forward(c, wide, ctx, x, cond);
    g_autoptr(sige_tensor) b = forward(c, half, ctx, x, cond);
    assert_same(c->what, "sim", a, b);
    /* and the device computes what the CPU does from the same weights
     * (the simulated device runs the same float32 arithmetic) */
  }
}

static void test_sd_unet(void **state) {
  (void)state;
  sige_sd_unet_config c;
  sige_sd_unet_config_init(&c);
  c.model_channels = 32;
  c.channel_mult[0] = 1, c.channel_mult[1] = 2;
  c.n_channel_mult = 2;
  c.num_res_blocks = 1;
  c.attention_resolutions[0] = 1, c.attention_resolutions[1] = 2;
  c.n_attention_resolutions = 2;
  c.num_heads = 2;
  c.context_dim = 16;
  c.latent_h = 16, c.latent_w = 16;
  const model_case mc = {"sd-unet", SIGE_MODEL_SD_UNET, &c};
  int64_t s2[2] = {5, 16};
  g_autoptr(sige_tensor) cond = sige_tensor_new(2, s2, NULL);
  sige_test_rng r = sige_test_rng_new(3);
  for (size_t i = 0; i < cond->numel; i++) cond->data[i] = sige_test_rng_uniform(&r, -1, 1);
  /* almost every value is a conv or linear weight: close to half */
  check_case(&mc, cond, 0.45, TRUE);

  /* a sparse edit (gathered blocks through the same convs, CNHW) */
  GError *error = NULL;
  g_autoptr(sige_weights) w = f16_file(&mc, 7);
  g_autoptr(sige_model) wide = load(&mc, w, FALSE);
  g_autoptr(sige_model) half = load(&mc, w, TRUE);
  g_autoptr(sige_tensor) x = input_for(wide, 12);
  g_autoptr(sige_tensor) e = sige_tensor_dup(x, NULL);
  for (int y = 3; y < 6; y++)
    for (int xx = 4; xx < 8; xx++) e->data[y * 16 + xx] += 0.5f;
  /* the mask in image space, 8 x the latent, as the SD pipeline gives it */
  g_autoptr(sige_mask) mask = sige_mask_new(128, 128);
  for (int y = 24; y < 48; y++)
    for (int xx = 32; xx < 64; xx++) mask->data[y * 128 + xx] = 1;
  g_autoptr(sige_tensor) fa = NULL, sa = NULL, fb = NULL, sb = NULL;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(2);
  if (!sige_model_forward_sparse_once(wide, ctx, x, e, 250.0f, cond, mask, TRUE, &fa, &sa, &error) ||
      !sige_model_forward_sparse_once(half, ctx, x, e, 250.0f, cond, mask, TRUE, &fb, &sb, &error))
    fail_msg("sd-unet sparse: %s", error->message);
  assert_same("sd-unet", "full pass", fa, fb);
  assert_same("sd-unet", "sparse pass", sa, sb);
}

static void test_sd_vae(void **state) {
  (void)state;
  sige_sd_vae_config c;
  sige_sd_vae_config_init(&c, SIGE_MODEL_SD_VAE_ENCODER);
  c.ch = 32;
  c.ch_mult[0] = 1, c.ch_mult[1] = 2;
  c.n_ch_mult = 2;
  c.num_res_blocks = 1;
  c.image_h = 16, c.image_w = 16;
  check_case(&(model_case){"sd-vae-encoder", SIGE_MODEL_SD_VAE_ENCODER, &c}, NULL, 0.45, TRUE);
  sige_sd_vae_config_init(&c, SIGE_MODEL_SD_VAE_DECODER);
  c.ch = 32;
  c.ch_mult[0] = 1, c.ch_mult[1] = 2;
  c.n_ch_mult = 2;
  c.num_res_blocks = 1;
  c.image_h = 16, c.image_w = 16;
  /* the decoder's conv_out has 3 output channels: the small-Cout loop */
  check_case(&(model_case){"sd-vae-decoder", SIGE_MODEL_SD_VAE_DECODER, &c}, NULL, 0.45, TRUE);
}

static void test_clip_text(void **state) {
  (void)state;
  sige_clip_text_config c;
  sige_clip_text_config_init(&c);
  c.vocab_size = 40;
  c.context_length = 7;
  c.width = 16;
  c.layers = 2;
  c.heads = 2;
  c.mlp_width = 64;
  const model_case mc = {"clip-text", SIGE_MODEL_CLIP_TEXT, &c};
  g_autoptr(sige_weights) w = f16_file(&mc, 5);
  g_autoptr(sige_model) wide = load(&mc, w, FALSE);
  g_autoptr(sige_model) half = load(&mc, w, TRUE);
  /* the token and position tables kept half too */
  assert_true(sige_model_weight_bytes(half) < sige_model_weight_bytes(wide) * 6 / 10);
  int32_t ids[14];
  for (int i = 0; i < 14; i++) ids[i] = (i * 11 + 5) % 40;
  GError *error = NULL;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(2);
  g_autoptr(sige_tensor) a = NULL, b = NULL;
  if (!sige_clip_text_encode(wide, ctx, ids, 2, &a, NULL, &error) ||
      !sige_clip_text_encode(half, ctx, ids, 2, &b, NULL, &error))
    fail_msg("clip-text: %s", error->message);
  assert_same("clip-text", "cpu", a, b);
  g_autoptr(sige_ctx) sim = sige_ctx_new_device(2, SIGE_DEVICE_SIM, &error);
  assert_non_null(sim);
  g_autoptr(sige_tensor) sa = NULL, sb = NULL;
  if (!sige_clip_text_encode(wide, sim, ids, 2, &sa, NULL, &error) ||
      !sige_clip_text_encode(half, sim, ids, 2, &sb, NULL, &error))
    fail_msg("clip-text sim: %s", error->message);
  g_autoptr(sige_tensor) ha = sige_tensor_to_host(sa, NULL), hb = sige_tensor_to_host(sb, NULL);
  assert_same("clip-text", "sim", ha, hb);
}

static void test_spade(void **state) {
  (void)state;
  sige_spade_config c;
  sige_spade_config_init(&c);
  c.ngf = 4;
  c.label_nc = 5;
  c.crop_size = 64;
  c.num_upsampling_layers = 5;
  /* the SPADE gamma / beta convs are concatenated after loading (kept half
   * together); BatchNorm statistics and biases stay float32 */
  check_case(&(model_case){"spade", SIGE_MODEL_SPADE, &c}, NULL, 0.3, FALSE);
}

static void test_gancomp(void **state) {
  (void)state;
  sige_gancomp_config c;
  sige_gancomp_config_init(&c);
  c.base.label_nc = 5;
  c.base.crop_size = 128;
  const int ch[8] = {2, 2, 2, 3, 2, 2, 2, 2};
  memcpy(c.channels, ch, sizeof ch);
  check_case(&(model_case){"gancomp", SIGE_MODEL_GANCOMP_SPADE, &c}, NULL, 0.2, FALSE);
}

static void test_ddpm(void **state) {
  (void)state;
  sige_ddpm_config c;
  sige_tiny_ddpm_config(&c);
  /* its attention (q, k, v, proj 1x1 convs) reads the widened weights */
  check_case(&(model_case){"ddpm", SIGE_MODEL_DDPM_UNET, &c}, NULL, 0.4, TRUE);
}

static void test_pd(void **state) {
  (void)state;
  sige_pd_config c;
  sige_pd_config_init(&c);
  c.ch = 32;
  c.ch_mult[0] = 1;
  c.ch_mult[1] = 2;
  c.n_ch_mult = 2;
  c.num_res_blocks = 1;
  c.attn_resolutions[0] = 16;
  c.n_attn_resolutions = 1;
  c.head_dim = 32;
  c.temb_ch = 64;
  c.image_size = 32;
  /* multi-head attention with a fused qkv weight */
  check_case(&(model_case){"pd", SIGE_MODEL_PD_UNET, &c}, NULL, 0.3, TRUE);
}

/* A safetensors file of two BF16 [2, 3] tensors written by hand (our
 * writer writes F32 and F16 only): "x" holds values F16 represents exactly,
 * "y" one beyond F16's range. */
static char *bf16_file(const char *dir, const float *x, const float *y) {
  const char *hdr = "{\"x\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                    "\"y\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[12,24]}}";
  GByteArray *b = g_byte_array_new();
  size_t hl = strlen(hdr), pad = (8 - hl % 8) % 8;
  guint64 n = hl + pad;
  g_byte_array_append(b, (const guint8 *)&n, 8); /* little-endian host */
  g_byte_array_append(b, (const guint8 *)hdr, (guint)hl);
  for (size_t i = 0; i < pad; i++) g_byte_array_append(b, (const guint8 *)" ", 1);
  for (int t = 0; t < 2; t++)
    for (int i = 0; i < 6; i++) {
      guint32 bits;
      memcpy(&bits, (t ? y : x) + i, 4);
      guint16 top = (guint16)(bits >> 16); /* the values are exact in BF16 */
      g_byte_array_append(b, (const guint8 *)&top, 2);
    }
  char *path = g_build_filename(dir, "bf.safetensors", NULL);
  assert_true(g_file_set_contents(path, (const char *)b->data, b->len, NULL));
  g_byte_array_unref(b);
  return path;
}

/* The weights reader: F16 stays F16 with the file's bits; BF16 only when
 * every value is an F16; F32 files are read as float32 whatever the
 * setting; shapes are checked as by read_tensor. */
static void test_read_half(void **state) {
  (void)state;
  GError *error = NULL;
  int64_t s[2] = {2, 3};
  const float v[6] = {1.0f, -2.5f, 0.375f, 65504.0f, 0.0f, -0.0f};
  /* BF16 keeps 8 significant bits: 65280 is in both formats, 2^32 in BF16 only */
  const float vb[6] = {1.0f, -2.5f, 0.375f, 65280.0f, 0.0f, -0.0f};
  const float big[6] = {1.0f, -2.5f, 0.375f, 65536.0f * 65536.0f, 0.0f, -0.0f};
  g_autoptr(sige_weights) w = sige_weights_new();
  sige_tensor *t = sige_tensor_new(2, s, NULL);
  memcpy(t->data, v, sizeof v);
  sige_weights_insert(w, "a", t);
  g_autofree char *dir = g_dir_make_tmp("sige-half-XXXXXX", NULL);
  g_autofree char *p16 = g_build_filename(dir, "h.safetensors", NULL);
  g_autofree char *p32 = g_build_filename(dir, "f.safetensors", NULL);
  assert_true(sige_weights_save_safetensors(w, p16, SIGE_DTYPE_F16, NULL, &error));
  assert_true(sige_weights_save_safetensors(w, p32, SIGE_DTYPE_F32, NULL, &error));
  g_autofree char *pbf = bf16_file(dir, vb, big);
  g_autoptr(sige_weights) r16 = sige_weights_load_file(p16, &error);
  g_autoptr(sige_weights) r32 = sige_weights_load_file(p32, &error);
  g_autoptr(sige_weights) rbf = sige_weights_load_file(pbf, &error);
  g_unlink(p16);
  g_unlink(p32);
  g_unlink(pbf);
  g_rmdir(dir);
  assert_non_null(r16);
  assert_non_null(r32);
  if (!rbf) fail_msg("bf16 file: %s", error->message);
  g_autoptr(sige_tensor) h = sige_weights_read_tensor_half(r16, "a", 2, s, &error);
  assert_non_null(h);
  assert_int_equal(h->storage, SIGE_STORAGE_F16);
  assert_int_equal(sige_tensor_bytes(h), 12);
  g_autoptr(sige_tensor) hw = sige_tensor_to_f32(h, NULL);
  assert_memory_equal(hw->data, v, sizeof v);
  g_autoptr(sige_tensor) f = sige_weights_read_tensor_half(r32, "a", 2, s, &error);
  assert_non_null(f);
  assert_int_equal(f->storage, SIGE_STORAGE_F32);
  assert_memory_equal(f->data, v, sizeof v);
  g_autoptr(sige_tensor) bx = sige_weights_read_tensor_half(rbf, "x", 2, s, &error);
  assert_non_null(bx);
  assert_int_equal(bx->storage, SIGE_STORAGE_F16);
  g_autoptr(sige_tensor) bxw = sige_tensor_to_f32(bx, NULL);
  assert_memory_equal(bxw->data, vb, sizeof vb);
  /* 2^32 is a BF16 value and not an F16 one: kept float32, not infinity */
  g_autoptr(sige_tensor) by = sige_weights_read_tensor_half(rbf, "y", 2, s, &error);
  assert_non_null(by);
  assert_int_equal(by->storage, SIGE_STORAGE_F32);
  assert_memory_equal(by->data, big, sizeof big);
  int64_t bad[2] = {3, 2};
  assert_null(sige_weights_read_tensor_half(r16, "a", 2, bad, &error));
  assert_non_null(strstr(error->message, "'a'"));
  g_clear_error(&error);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_half), cmocka_unit_test(test_sd_unet),
      cmocka_unit_test(test_sd_vae),    cmocka_unit_test(test_clip_text),
      cmocka_unit_test(test_spade),     cmocka_unit_test(test_gancomp),
      cmocka_unit_test(test_ddpm),      cmocka_unit_test(test_pd),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
