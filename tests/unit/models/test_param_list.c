/* The parameter lists against the loader and the random-weight generator:
 * random weights built from a model's list load into the model; without any
 * one listed tensor, or with one mis-shaped, the build fails naming it; a
 * built model reports the list it was built from; and a saved table is
 * recognised and loads back as the same model. */
#include "test_util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "random_weights.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/weights.h"

typedef struct {
  const char *what;
  sige_model_kind kind;
  const void *cfg;
  const char *meta[8]; /* key, value pairs for the saved file (NULL-terminated) */
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

/* A copy of w without `skip` (NULL: all of it), with `reshape` one row
 * larger (NULL: none). */
static sige_weights *copy_table(const sige_weights *w, const char *skip, const char *reshape) {
  sige_weights *out = sige_weights_new();
  guint n;
  const char *const *names = sige_weights_names(w, &n);
  for (guint i = 0; i < n; i++) {
    if (!g_strcmp0(names[i], skip)) continue;
    const sige_tensor *t = sige_weights_get(w, names[i]);
    sige_tensor *d;
    if (!g_strcmp0(names[i], reshape)) {
      int64_t shape[4];
      memcpy(shape, t->shape, sizeof shape);
      shape[0] += 1;
      d = sige_tensor_new(t->ndim, shape, NULL);
    } else {
      d = sige_tensor_dup(t, NULL);
    }
    assert_non_null(d);
    sige_weights_insert(out, names[i], d);
  }
  return out;
}

static void expect_refused(const model_case *c, const sige_weights *w, const char *key) {
  GError *error = NULL;
  g_autoptr(sige_model) m = build(c, w, &error);
  if (m) fail_msg("%s: built without a proper '%s'", c->what, key);
  if (!strstr(error->message, key))
    fail_msg("%s: the error for '%s' does not name it: %s", c->what, key, error->message);
  g_error_free(error);
}

static void check_case(const model_case *c) {
  GError *error = NULL;
  g_autoptr(sige_param_list) l = sige_model_kind_params(c->kind, c->cfg, &error);
  if (!l) fail_msg("%s: %s", c->what, error->message);
  const guint n = sige_param_list_length(l);
  assert_true(n > 0);
  assert_null(sige_param_list_get(l, n));
  g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++) {
    const sige_param *p = sige_param_list_get(l, i);
    if (!g_hash_table_add(seen, (gpointer)p->key)) fail_msg("%s: '%s' twice", c->what, p->key);
    int64_t numel = 1;
    for (int d = 0; d < p->ndim; d++) numel *= p->shape[d];
    assert_int_equal(numel, p->numel);
  }

  /* the random generator writes exactly the list, and the model loads it */
  g_autoptr(sige_weights) w = sige_random_model_weights(c->kind, c->cfg, 1, &error);
  if (!w) fail_msg("%s: random weights: %s", c->what, error->message);
  guint nw;
  sige_weights_names(w, &nw);
  assert_int_equal(nw, n);
  g_autoptr(sige_model) m = build(c, w, &error);
  if (!m) fail_msg("%s: random weights from its list do not load: %s", c->what, error->message);
  assert_int_equal(sige_model_get_kind(m), c->kind);
  g_autoptr(sige_param_list) lm = sige_model_params(m, &error);
  assert_non_null(lm);
  assert_int_equal(sige_param_list_length(lm), n);
  for (guint i = 0; i < n; i++)
    assert_string_equal(sige_param_list_get(lm, i)->key, sige_param_list_get(l, i)->key);

  /* the loader reads every listed tensor with the listed shape */
  for (guint i = 0; i < n; i++) {
    const char *key = sige_param_list_get(l, i)->key;
    g_autoptr(sige_weights) missing = copy_table(w, key, NULL);
    expect_refused(c, missing, key);
    g_autoptr(sige_weights) misshaped = copy_table(w, NULL, key);
    expect_refused(c, misshaped, key);
  }

  /* saved, it is recognised and loads back as the same model */
  g_autofree char *dir = g_dir_make_tmp("sige-params-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "w.safetensors", NULL);
  g_autoptr(GHashTable) meta = g_hash_table_new(g_str_hash, g_str_equal);
  for (int i = 0; c->meta[i]; i += 2) g_hash_table_insert(meta, (gpointer)c->meta[i], (gpointer)c->meta[i + 1]);
  if (!sige_weights_save_safetensors(w, path, SIGE_DTYPE_F32, meta, &error))
    fail_msg("%s: save: %s", c->what, error->message);
  g_autoptr(sige_model) back = sige_model_load(path, &error);
  g_unlink(path);
  g_rmdir(dir);
  if (!back) fail_msg("%s: load back: %s", c->what, error->message);
  assert_int_equal(sige_model_get_kind(back), c->kind);
  int64_t s1[4], s2[4];
  sige_model_input_shape(m, s1);
  sige_model_input_shape(back, s2);
  assert_memory_equal(s1, s2, sizeof s1);
  g_autoptr(GString) d1 = g_string_new(NULL), d2 = g_string_new(NULL);
  sige_model_describe_settings(m, d1);
  sige_model_describe_settings(back, d2);
  assert_true(d1->len > 0);
  assert_string_equal(d1->str, d2->str);
}

static void test_spade(void **state) {
  (void)state;
  sige_spade_config c;
  sige_spade_config_init(&c);
  c.ngf = 4;
  c.label_nc = 5;
  c.crop_size = 64;
  c.num_upsampling_layers = 5;
  check_case(&(model_case){"spade", SIGE_MODEL_SPADE, &c,
                           {"sige.crop_size", "64", "sige.num_upsampling_layers", "5", NULL}});
  c.crop_size = 256;
  c.num_upsampling_layers = 7; /* "most": one more block, conv_img from ngf / 2 */
  check_case(&(model_case){"spade most", SIGE_MODEL_SPADE, &c, {"sige.crop_size", "256", NULL}});
}

static void test_gancomp(void **state) {
  (void)state;
  sige_gancomp_config c;
  sige_gancomp_config_init(&c);
  c.base.label_nc = 5;
  c.base.crop_size = 128;
  const int ch[8] = {2, 2, 2, 3, 2, 2, 2, 2};
  memcpy(c.channels, ch, sizeof ch);
  /* the channel configuration comes back from the widths */
  check_case(&(model_case){"gancomp", SIGE_MODEL_GANCOMP_SPADE, &c, {"sige.crop_size", "128", NULL}});
}

static void test_ddpm(void **state) {
  (void)state;
  sige_ddpm_config c;
  sige_ddpm_config_init(&c);
  c.ch = 8;
  c.ch_mult[0] = 1;
  c.ch_mult[1] = 2;
  c.n_ch_mult = 2;
  c.num_res_blocks = 1;
  c.attn_resolutions[0] = 16;
  c.n_attn_resolutions = 1;
  c.image_size = 32;
  check_case(&(model_case){"ddpm", SIGE_MODEL_DDPM_UNET, &c, {"sige.image_size", "32", NULL}});
}

static void test_pd(void **state) {
  (void)state;
  sige_pd_config c;
  sige_pd_config_init(&c);
  c.ch = 8;
  c.ch_mult[0] = 1;
  c.ch_mult[1] = 2;
  c.n_ch_mult = 2;
  c.num_res_blocks = 1;
  c.attn_resolutions[0] = 16;
  c.n_attn_resolutions = 1;
  c.head_dim = 8;
  c.temb_ch = 16;
  c.image_size = 32;
  check_case(&(model_case){"pd", SIGE_MODEL_PD_UNET, &c,
                           {"sige.image_size", "32", "sige.head_dim", "8", NULL}});
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
  check_case(&(model_case){"clip-text", SIGE_MODEL_CLIP_TEXT, &c, {"sige.heads", "2", NULL}});
  /* the class's forward (ids as a float tensor) is the encoder's output */
  {
    GError *error = NULL;
    g_autoptr(sige_weights) w = sige_random_model_weights(SIGE_MODEL_CLIP_TEXT, &c, 3, &error);
    g_autoptr(sige_model) m = w ? sige_model_new_clip_text(&c, w, &error) : NULL;
    if (!m) fail_msg("clip-text: %s", error->message);
    int32_t ids[14];
    int64_t shape[2] = {2, 7};
    g_autoptr(sige_tensor) in = sige_tensor_new(2, shape, NULL);
    for (int i = 0; i < 14; i++) in->data[i] = (float)(ids[i] = (i * 11 + 5) % 40);
    g_autoptr(sige_ctx) ctx = sige_ctx_new(1);
    g_autoptr(sige_tensor) a = NULL, b = NULL;
    g_autoptr(GPtrArray) hidden = g_ptr_array_new_with_free_func((GDestroyNotify)sige_tensor_free);
    assert_true(sige_model_forward_dense(m, ctx, in, 0.0f, &a, &error));
    assert_true(sige_clip_text_encode(m, ctx, ids, 2, &b, hidden, &error));
    assert_int_equal(hidden->len, c.layers + 1);
    assert_int_equal(a->numel, (size_t)14 * c.width);
    assert_memory_equal(a->data, b->data, a->numel * sizeof(float));
    /* an id beyond the vocabulary is refused, naming it */
    in->data[3] = 40.0f;
    g_autoptr(sige_tensor) bad = NULL;
    assert_false(sige_model_forward_dense(m, ctx, in, 0.0f, &bad, &error));
    assert_non_null(strstr(error->message, "id 40"));
    g_clear_error(&error);
  }
  /* a diffusers text_encoder: the same names under "text_model." */
  c.sd_single_file = FALSE;
  check_case(&(model_case){"clip-text hf", SIGE_MODEL_CLIP_TEXT, &c, {"sige.heads", "2", NULL}});
  /* width 64: two heads inferred without metadata (openai/CLIP's width / 64) */
  c.width = 128;
  check_case(&(model_case){"clip-text 128", SIGE_MODEL_CLIP_TEXT, &c, {NULL}});
}

static void test_sd_unet(void **state) {
  (void)state;
  sige_sd_unet_config c;
  sige_sd_unet_config_init(&c);
  c.model_channels = 32;
  c.channel_mult[0] = 1, c.channel_mult[1] = 2;
  c.n_channel_mult = 2;
  c.num_res_blocks = 1;
  c.attention_resolutions[0] = 2; /* the lower level only: inferred from its keys */
  c.n_attention_resolutions = 1;
  c.num_heads = 2;
  c.context_dim = 16;
  c.latent_h = 16, c.latent_w = 8;
  const model_case mc = {"sd-unet", SIGE_MODEL_SD_UNET, &c,
                         {"sige.heads", "2", "sige.latent_h", "16", "sige.latent_w", "8", NULL}};
  check_case(&mc);
  GError *error = NULL;
  g_autoptr(sige_weights) w = sige_random_model_weights(SIGE_MODEL_SD_UNET, &c, 5, &error);
  g_autoptr(sige_model) m = w ? sige_model_new_sd_unet(&c, w, &error) : NULL;
  if (!m) fail_msg("sd-unet: %s", error->message);
  g_autoptr(sige_ctx) ctx = sige_ctx_new(1);
  g_autoptr(sige_tensor) x = sige_tensor_new4(1, 4, 16, 8, NULL);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = (float)((i * 37) % 11) / 5.0f - 1.0f;
  int64_t s3[3] = {1, 5, 16}, s2[2] = {5, 16};
  g_autoptr(sige_tensor) cond3 = sige_tensor_new(3, s3, NULL);
  g_autoptr(sige_tensor) cond2 = sige_tensor_new(2, s2, NULL);
  for (size_t i = 0; i < cond3->numel; i++)
    cond3->data[i] = cond2->data[i] = (float)((i * 13) % 7) / 3.0f - 1.0f;
  /* [1, T, D] and [T, D] contexts are the same context */
  g_autoptr(sige_tensor) a = NULL, b = NULL, o = NULL;
  assert_true(sige_model_forward_dense_cond(m, ctx, x, 250.0f, cond3, &a, &error));
  assert_true(sige_model_forward_dense_cond(m, ctx, x, 250.0f, cond2, &b, &error));
  assert_int_equal(a->numel, x->numel);
  assert_memory_equal(a->data, b->data, a->numel * sizeof(float));
  /* the context reaches the output (cross-attention), as does t */
  cond2->data[3] += 1.0f;
  assert_true(sige_model_forward_dense_cond(m, ctx, x, 250.0f, cond2, &o, &error));
  assert_true(memcmp(a->data, o->data, a->numel * sizeof(float)) != 0);
  g_clear_pointer(&o, sige_tensor_free);
  assert_true(sige_model_forward_dense_cond(m, ctx, x, 251.0f, cond3, &o, &error));
  assert_true(memcmp(a->data, o->data, a->numel * sizeof(float)) != 0);
  g_clear_pointer(&o, sige_tensor_free);
  /* no context, or one of the wrong width, is refused saying so */
  assert_false(sige_model_forward_dense(m, ctx, x, 250.0f, &o, &error));
  assert_non_null(strstr(error->message, "context"));
  g_clear_error(&error);
  int64_t sw[2] = {5, 12};
  g_autoptr(sige_tensor) narrow = sige_tensor_new(2, sw, NULL);
  assert_false(sige_model_forward_dense_cond(m, ctx, x, 250.0f, narrow, &o, &error));
  assert_non_null(strstr(error->message, "context [5, 12]"));
  g_clear_error(&error);
  /* a latent the levels do not halve evenly */
  g_autoptr(sige_tensor) odd = sige_tensor_new4(1, 4, 16, 7, NULL);
  assert_false(sige_model_forward_dense_cond(m, ctx, odd, 250.0f, cond2, &o, &error));
  assert_int_equal(error->code, SIGE_ERROR_SHAPE);
  g_clear_error(&error);
  /* unprefixed names (the UNet alone) are recognised too */
  c.sd_single_file = FALSE;
  check_case(&(model_case){"sd-unet unprefixed", SIGE_MODEL_SD_UNET, &c,
                           {"sige.heads", "2", "sige.latent_h", "16", "sige.latent_w", "8", NULL}});
}

/* The SD VAE's halves, each alone in a file (prefixed and bare), and both
 * in one file: every part is found, and the same image goes through. */
static void test_sd_vae(void **state) {
  (void)state;
  sige_sd_vae_config c;
  sige_sd_vae_config_init(&c, SIGE_MODEL_SD_VAE_ENCODER);
  c.ch = 32;
  c.ch_mult[0] = 1, c.ch_mult[1] = 2;
  c.n_ch_mult = 2;
  c.num_res_blocks = 1;
  c.z_channels = 3;
  c.embed_dim = 2;
  c.image_h = 16, c.image_w = 8;
  const char *meta[] = {"sige.image_h", "16", "sige.image_w", "8", NULL};
  model_case mc = {"sd-vae-encoder", SIGE_MODEL_SD_VAE_ENCODER, &c, {0}};
  memcpy(mc.meta, meta, sizeof meta);
  check_case(&mc);
  mc.what = "sd-vae-decoder", mc.kind = SIGE_MODEL_SD_VAE_DECODER;
  check_case(&mc);
  c.sd_single_file = FALSE;
  mc.what = "sd-vae-decoder bare";
  check_case(&mc);
  mc.what = "sd-vae-encoder bare", mc.kind = SIGE_MODEL_SD_VAE_ENCODER;
  check_case(&mc);
  /* both halves in one file: two parts, the encoder first */
  c.sd_single_file = TRUE;
  GError *error = NULL;
  g_autoptr(sige_weights) we = sige_random_model_weights(SIGE_MODEL_SD_VAE_ENCODER, &c, 3, &error);
  g_autoptr(sige_weights) wd = sige_random_model_weights(SIGE_MODEL_SD_VAE_DECODER, &c, 4, &error);
  assert_non_null(we);
  assert_non_null(wd);
  guint n;
  const char *const *names = sige_weights_names(wd, &n);
  for (guint i = 0; i < n; i++)
    sige_weights_insert(we, names[i], sige_tensor_dup(sige_weights_get(wd, names[i]), NULL));
  g_autofree char *dir = g_dir_make_tmp("sige-vae-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "vae.safetensors", NULL);
  g_autoptr(GHashTable) mt = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(mt, "sige.image_h", "16");
  g_hash_table_insert(mt, "sige.image_w", "8");
  assert_true(sige_weights_save_safetensors(we, path, SIGE_DTYPE_F32, mt, &error));
  g_autoptr(GPtrArray) parts = sige_model_load_parts(path, &error);
  g_unlink(path);
  g_rmdir(dir);
  if (!parts) fail_msg("load_parts: %s", error->message);
  assert_int_equal(parts->len, 2);
  const sige_model *enc = g_ptr_array_index(parts, 0), *dec = g_ptr_array_index(parts, 1);
  assert_int_equal(sige_model_get_kind(enc), SIGE_MODEL_SD_VAE_ENCODER);
  assert_int_equal(sige_model_get_kind(dec), SIGE_MODEL_SD_VAE_DECODER);
  assert_int_equal(sige_model_sd_vae_config(dec)->z_channels, 3);
  assert_true(sige_model_sd_vae_config(dec)->double_z);
  g_autoptr(sige_ctx) ctx = sige_ctx_new(1);
  g_autoptr(sige_tensor) x = sige_tensor_new4(1, 3, 16, 8, NULL);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = (float)((i * 37) % 11) / 5.0f - 1.0f;
  g_autoptr(sige_tensor) mom = NULL, img = NULL;
  assert_true(sige_model_forward_dense(enc, ctx, x, 0, &mom, &error));
  assert_int_equal(SIGE_C(mom), 4);
  assert_int_equal(SIGE_H(mom), 8);
  assert_int_equal(SIGE_W(mom), 4);
  g_autoptr(sige_tensor) z = sige_tensor_new4(1, 2, 8, 4, NULL);
  memcpy(z->data, mom->data, z->numel * sizeof(float)); /* the mean */
  assert_true(sige_model_forward_dense(dec, ctx, z, 0, &img, &error));
  assert_int_equal(img->numel, x->numel);
  /* an image given to the decoder is refused naming the shape it expects */
  g_clear_pointer(&img, sige_tensor_free);
  assert_false(sige_model_forward_dense(dec, ctx, x, 0, &img, &error));
  assert_non_null(strstr(error->message, "[1, 2, 8, 4]"));
  g_clear_error(&error);
}

/* A config out of range has no list, and says which setting. */
static void test_bad_config(void **state) {
  (void)state;
  sige_spade_config c;
  sige_spade_config_init(&c);
  c.crop_size = 8192; /* a 128 x 64 latent: beyond the 64 x 64 bound */
  GError *error = NULL;
  g_autoptr(sige_param_list) l = sige_model_kind_params(SIGE_MODEL_SPADE, &c, &error);
  assert_null(l);
  assert_non_null(strstr(error->message, "latent size"));
  g_clear_error(&error);
  /* sige.aspect_ratio comes from a weights file: extreme values (whose latent
   * rows overflow an int, which UBSan reports as a shift or conversion
   * overflow) are refused like any other latent out of range */
  const double ratios[] = {1e-300, 3e-8, 1e-9, 1e9, 1e300, 0.001};
  for (size_t i = 0; i < G_N_ELEMENTS(ratios); i++) {
    sige_spade_config_init(&c);
    c.aspect_ratio = ratios[i];
    g_autoptr(sige_param_list) bad = sige_model_kind_params(SIGE_MODEL_SPADE, &c, &error);
    assert_null(bad);
    assert_non_null(error);
    assert_non_null(strstr(error->message, "latent size"));
    g_clear_error(&error);
  }
}

/* Issue #20 point 8: sparse settings out of range (from a case.json or the
 * API) used to build a model that gave wrong results; each is refused when
 * the model is made, naming the setting.  The same weights with the
 * defaults build. */
static void test_bad_sparse_config(void **state) {
  (void)state;
  sige_ddpm_config base;
  sige_tiny_ddpm_config(&base);
  GError *error = NULL;
  g_autoptr(sige_weights) w = sige_random_ddpm_weights(&base, 5, &error);
  assert_non_null(w);
  {
    g_autoptr(sige_model) ok = sige_model_new_ddpm(&base, w, &error);
    if (!ok) fail_msg("%s", error->message);
  }
  for (int k = 0; k < 8; k++) {
    sige_ddpm_config c = base;
    sige_sparse_config *s = &c.sparse;
    static const char *const fields[] = {"block_size", "shortcut_block_size", "diff_eps",
                                         "mask_dilate_radius", "pyramid_dilation",
                                         "pyramid_threshold", "pyramid_threshold",
                                         "pyramid_min_h/w"};
    switch (k) {
      case 0: s->block_size = 0; break;
      case 1: s->shortcut_block_size = -4; break;
      case 2: s->diff_eps = NAN; break;
      case 3: s->mask_dilate_radius = -1; break;
      case 4: s->pyramid_dilation = -2; break;
      case 5: s->pyramid_threshold = 1.5f; break;
      case 6: s->pyramid_threshold = NAN; break;
      default: s->pyramid_min_w = -1; break;
    }
    g_autoptr(sige_model) m = sige_model_new_ddpm(&c, w, &error);
    assert_null(m);
    assert_true(g_error_matches(error, SIGE_ERROR, SIGE_ERROR_INVALID));
    if (!strstr(error->message, fields[k])) fail_msg("case %d: '%s'", k, error->message);
    g_clear_error(&error);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spade), cmocka_unit_test(test_gancomp), cmocka_unit_test(test_ddpm),
      cmocka_unit_test(test_pd),    cmocka_unit_test(test_clip_text), cmocka_unit_test(test_sd_unet), cmocka_unit_test(test_sd_vae),
      cmocka_unit_test(test_bad_config), cmocka_unit_test(test_bad_sparse_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
