/* Stable Diffusion checkpoints as users have them (sige/sd_checkpoint.h),
 * built from the tiny reference weights by tests/scripts/
 * make_sd_checkpoints.py into a temporary folder: single files
 * (safetensors F16 / F32, .ckpt zip F32 / F16, with EMA and extra keys) and
 * a diffusers folder (renamed by the script's own forward table) must give
 * each part with exactly the reference's tensors; the models built from a
 * single file and from the folder give bit-identical outputs; the
 * tokenizer from the folder's vocab.json + merges.txt gives openai's ids;
 * the schedule is read; broken folders and files are refused with messages
 * naming the file and the key or field. */
#include "test_util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "sige-app/clip_tokenizer.h"
#include "sige/context.h"
#include "sige/error.h"
#include "sige/model.h"
#include "sige/sd_checkpoint.h"
#include "sige/weights.h"

#define VOCAB SIGE_SOURCE_DIR "/data/clip/bpe_simple_vocab_16e6.txt.gz"

static char *dir;

static void remove_tree(const char *path) {
  if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
      g_autofree char *p = g_build_filename(path, name, NULL);
      remove_tree(p);
    }
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

static void remove_dir(void) {
  if (dir) remove_tree(dir);
}

static const char *generated(void) {
  if (dir) return dir;
  if (!*SIGE_TEST_PYTHON)
    fail_msg("python3 was not found at configure time: install python3-torch");
  const char *ref = sige_test_reference_dir();
  g_autoptr(GError) err = NULL;
  char *tmp = g_dir_make_tmp("sige-sdckpt-XXXXXX", &err);
  assert_non_null(tmp);
  char *argv[] = {SIGE_TEST_PYTHON, SIGE_TEST_SCRIPT, tmp, (char *)ref, VOCAB, NULL};
  g_autofree char *out = NULL, *errout = NULL;
  int status = 0;
  if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &errout, &status, &err))
    fail_msg("cannot run %s: %s", SIGE_TEST_PYTHON, err->message);
  if (!g_spawn_check_wait_status(status, NULL))
    fail_msg("%s %s failed: %s", SIGE_TEST_PYTHON, SIGE_TEST_SCRIPT, errout);
  dir = tmp;
  atexit(remove_dir);
  return dir;
}

static char *path_of(const char *name) { return g_build_filename(generated(), name, NULL); }

static sige_weights *ref_weights(const char *cs) {
  g_autofree char *p = g_build_filename(sige_test_reference_dir(), cs, "weights.safetensors", NULL);
  GError *e = NULL;
  sige_weights *w = sige_weights_load_safetensors(p, &e);
  if (!w) fail_msg("%s", e->message);
  return w;
}

static float *read_all(const sige_weights *w, const char *name, size_t *n) {
  int ndim;
  int64_t shape[SIGE_MAX_DIMS];
  if (!sige_weights_shape(w, name, &ndim, shape)) fail_msg("'%s' is missing", name);
  *n = 1;
  for (int d = 0; d < ndim; d++) *n *= (size_t)shape[d];
  float *x = g_new(float, *n ? *n : 1);
  GError *e = NULL;
  if (!sige_weights_read_f32(w, name, x, *n, &e)) fail_msg("%s", e->message);
  return x;
}

/* Every reference tensor under the part's prefix is in the part with the
 * same shape and (sign * value) bit for bit; the part holds nothing else
 * but position_ids buffers. */
static void check_part(const sige_weights *part, const sige_weights *ref, const char *prefix,
                       float sign, const char *what) {
  guint nr, np;
  const char *const *rn = sige_weights_names(ref, &nr);
  const char *const *pn = sige_weights_names(part, &np);
  guint matched = 0;
  for (guint i = 0; i < nr; i++) {
    if (!g_str_has_prefix(rn[i], prefix)) continue;
    matched++;
    if (!sige_weights_contains(part, rn[i])) fail_msg("%s: '%s' is missing", what, rn[i]);
    int n1, n2;
    int64_t s1[SIGE_MAX_DIMS], s2[SIGE_MAX_DIMS];
    sige_weights_shape(ref, rn[i], &n1, s1);
    sige_weights_shape(part, rn[i], &n2, s2);
    if (n1 != n2 || memcmp(s1, s2, sizeof s1)) fail_msg("%s: '%s' has another shape", what, rn[i]);
    size_t a, b;
    g_autofree float *x = read_all(ref, rn[i], &a);
    g_autofree float *y = read_all(part, rn[i], &b);
    for (size_t k = 0; k < a; k++) {
      const float want = sign * x[k];
      if (memcmp(&want, &y[k], sizeof want))
        fail_msg("%s: '%s'[%zu] = %g, expected %g", what, rn[i], k, (double)y[k], (double)want);
    }
  }
  assert_true(matched > 10);
  for (guint i = 0; i < np; i++)
    if (!sige_weights_contains(ref, pn[i]) && !g_str_has_suffix(pn[i], ".position_ids"))
      fail_msg("%s: unexpected key '%s'", what, pn[i]);
}

static const char *const sources[] = {"sd_full.safetensors", "sd_full_fp32.safetensors",
                                      "sd_full.ckpt", "sd_full_fp16.ckpt", "diffusers"};

static void test_parts_exact(void **state) {
  (void)state;
  g_autoptr(sige_weights) img = ref_weights("sd-img2img-tiny");
  g_autoptr(sige_weights) clip = ref_weights("clip-text-tiny");
  for (guint s = 0; s < G_N_ELEMENTS(sources); s++) {
    g_autofree char *p = path_of(sources[s]);
    GError *e = NULL;
    g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(p, &e);
    if (!ck) fail_msg("%s", e->message);
    const gboolean folder = s == G_N_ELEMENTS(sources) - 1;
    assert_string_equal(sige_sd_checkpoint_format(ck), folder ? "diffusers" : "single-file");
    assert_int_equal(sige_sd_checkpoint_has_ema(ck), !folder);
    for (int part = 0; part < SIGE_SD_N_PARTS; part++) {
      assert_true(sige_sd_checkpoint_has_part(ck, (sige_sd_part)part));
      g_autoptr(sige_weights) w = sige_sd_checkpoint_part(ck, (sige_sd_part)part, 0, &e);
      if (!w) fail_msg("%s: %s", sources[s], e->message);
      g_autofree char *what = g_strdup_printf("%s %s", sources[s], sige_sd_part_name(part));
      check_part(w, part == SIGE_SD_PART_TEXT_ENCODER ? clip : img,
                 sige_sd_part_prefix((sige_sd_part)part), 1.0f, what);
    }
    if (!folder) {
      /* the file's own dtype survives in the index: F16 stays F16 */
      g_autoptr(sige_weights) u = sige_sd_checkpoint_part(ck, SIGE_SD_PART_UNET, 0, &e);
      const gboolean half = strstr(sources[s], "fp32") == NULL && strcmp(sources[s], "sd_full.ckpt");
      assert_int_equal(sige_weights_dtype(u, "model.diffusion_model.out.2.weight"),
                       half ? SIGE_DTYPE_F16 : SIGE_DTYPE_F32);
    }
  }
}

/* One part saved alone, or in older names: the same tensors. */
static void test_parts_alone(void **state) {
  (void)state;
  g_autoptr(sige_weights) img = ref_weights("sd-img2img-tiny");
  g_autoptr(sige_weights) clip = ref_weights("clip-text-tiny");
  const struct {
    const char *file;
    sige_sd_part part;
  } cases[] = {{"vae_alone.ckpt", SIGE_SD_PART_VAE},
               {"unet_alone.safetensors", SIGE_SD_PART_UNET},
               {"clip_old_names.safetensors", SIGE_SD_PART_TEXT_ENCODER},
               {"diffusers_oldvae", SIGE_SD_PART_VAE}};
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *p = path_of(cases[i].file);
    GError *e = NULL;
    g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(p, &e);
    if (!ck) fail_msg("%s", e->message);
    for (int q = 0; q < SIGE_SD_N_PARTS; q++)
      assert_int_equal(sige_sd_checkpoint_has_part(ck, (sige_sd_part)q),
                       q == (int)cases[i].part || !strcmp(cases[i].file, "diffusers_oldvae"));
    g_autoptr(sige_weights) w = sige_sd_checkpoint_part(ck, cases[i].part, 0, &e);
    if (!w) fail_msg("%s: %s", cases[i].file, e->message);
    check_part(w, cases[i].part == SIGE_SD_PART_TEXT_ENCODER ? clip : img,
               sige_sd_part_prefix(cases[i].part), 1.0f, cases[i].file);
  }
  /* only EMA weights: their dotless names cannot be mapped back; said so */
  g_autofree char *p = path_of("ema_only.safetensors");
  GError *e = NULL;
  g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(p, &e);
  if (!ck) fail_msg("%s", e->message);
  assert_true(sige_sd_checkpoint_has_ema(ck));
  assert_false(sige_sd_checkpoint_has_part(ck, SIGE_SD_PART_UNET));
  assert_null(sige_sd_checkpoint_part(ck, SIGE_SD_PART_UNET, 0, &e));
  assert_non_null(strstr(e->message, "EMA"));
  assert_non_null(strstr(e->message, "ema_only.safetensors"));
  g_clear_error(&e);
}

static void test_ema(void **state) {
  (void)state;
  g_autoptr(sige_weights) img = ref_weights("sd-img2img-tiny");
  const char *files[] = {"sd_full.safetensors", "sd_full.ckpt"};
  for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *p = path_of(files[i]);
    GError *e = NULL;
    g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(p, &e);
    assert_non_null(ck);
    g_autoptr(sige_weights) w = sige_sd_checkpoint_part(ck, SIGE_SD_PART_UNET, SIGE_SD_LOAD_EMA, &e);
    if (!w) fail_msg("%s", e->message);
    /* the script stored the EMA copy negated */
    check_part(w, img, "model.diffusion_model.", -1.0f, "EMA UNet");
  }
  /* no EMA in the file, or a folder: refused, naming what was looked for */
  g_autofree char *ref = g_build_filename(sige_test_reference_dir(), "sd-img2img-tiny",
                                          "weights.safetensors", NULL);
  g_autofree char *folder = path_of("diffusers");
  const char *const no_ema[] = {ref, folder};
  for (guint i = 0; i < 2; i++) {
    GError *e = NULL;
    g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(no_ema[i], &e);
    assert_non_null(ck);
    assert_false(sige_sd_checkpoint_has_ema(ck));
    assert_null(sige_sd_checkpoint_part(ck, SIGE_SD_PART_UNET, SIGE_SD_LOAD_EMA, &e));
    assert_non_null(strstr(e->message, "EMA"));
    g_clear_error(&e);
  }
}

static sige_model *load(const char *src, sige_sd_part part) {
  g_autofree char *p = path_of(src);
  GError *e = NULL;
  sige_model *m = sige_sd_load_model(p, part, 0, &e);
  if (!m) fail_msg("%s %s: %s", src, sige_sd_part_name(part), e->message);
  return m;
}

static sige_tensor *read_io(const char *cs, const char *name) {
  g_autofree char *p = g_build_filename(sige_test_reference_dir(), cs, "io.safetensors", NULL);
  GError *e = NULL;
  g_autoptr(sige_weights) io = sige_weights_load_safetensors(p, &e);
  if (!io) fail_msg("%s", e->message);
  sige_tensor *t = sige_weights_read_tensor(io, name, -1, NULL, &e);
  if (!t) fail_msg("%s", e->message);
  return t;
}

/* The models from the single file and from the folder compute the same
 * thing bit for bit; the text encoder also matches the reference. */
static void test_models_same(void **state) {
  (void)state;
  g_autoptr(sige_ctx) ctx = sige_ctx_new(2);
  g_autoptr(sige_tensor) tok = read_io("clip-text-tiny", "tokens");
  g_autoptr(sige_tensor) want = read_io("clip-text-tiny", "last_hidden_state");
  const int n = (int)tok->shape[0];
  g_autofree int32_t *ids = g_new(int32_t, tok->numel);
  for (size_t i = 0; i < tok->numel; i++) ids[i] = (int32_t)tok->data[i];
  g_autoptr(sige_tensor) ctx_a = NULL, ctx_b = NULL;
  const char *const src[] = {"sd_full.safetensors", "diffusers"};
  sige_tensor **outs[] = {&ctx_a, &ctx_b};
  for (int s = 0; s < 2; s++) {
    g_autoptr(sige_model) m = load(src[s], SIGE_SD_PART_TEXT_ENCODER);
    GError *e = NULL;
    if (!sige_clip_text_encode(m, ctx, ids, n, outs[s], NULL, &e)) fail_msg("%s", e->message);
  }
  assert_int_equal(ctx_a->numel, want->numel);
  assert_memory_equal(ctx_a->data, ctx_b->data, ctx_a->numel * sizeof(float));
  /* case.json full_vs_dense: abs 1e-4 */
  for (size_t i = 0; i < want->numel; i++) assert_true(fabsf(ctx_a->data[i] - want->data[i]) <= 1e-4f);

  /* UNet: one dense step on a fixed latent with the first prompt's context */
  sige_test_rng r = sige_test_rng_new(18);
  g_autoptr(sige_tensor) x = sige_tensor_new4(1, 4, 16, 16, NULL);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = sige_test_rng_uniform(&r, -1, 1);
  int64_t cs[3] = {1, 77, 32};
  g_autoptr(sige_tensor) cond = sige_tensor_new(3, cs, NULL);
  memcpy(cond->data, ctx_a->data, cond->numel * sizeof(float));
  g_autoptr(sige_tensor) ya = NULL, yb = NULL;
  sige_tensor **ys[] = {&ya, &yb};
  for (int s = 0; s < 2; s++) {
    g_autoptr(sige_model) m = load(src[s], SIGE_SD_PART_UNET);
    assert_int_equal(sige_model_sd_unet_config(m)->num_heads, 2);
    GError *e = NULL;
    if (!sige_model_forward_dense_cond(m, ctx, x, 500.0f, cond, ys[s], &e))
      fail_msg("%s", e->message);
  }
  assert_int_equal(ya->numel, x->numel);
  assert_memory_equal(ya->data, yb->data, ya->numel * sizeof(float));
  /* a folder given to sige_model_load is its UNet */
  g_autofree char *folder = path_of("diffusers");
  GError *e = NULL;
  g_autoptr(sige_model) m = sige_model_load(folder, &e);
  if (!m) fail_msg("%s", e->message);
  assert_int_equal(sige_model_get_kind(m), SIGE_MODEL_SD_UNET);
}

static void ids_of(const sige_clip_tokenizer *t, const char *text, int32_t ids[77]) {
  GError *e = NULL;
  if (!sige_clip_tokenize(t, text, 77, ids, &e)) fail_msg("\"%s\": %s", text, e->message);
}

static void test_tokenizer_from_folder(void **state) {
  (void)state;
  g_autofree char *folder = path_of("diffusers");
  GError *e = NULL;
  g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(folder, &e);
  assert_non_null(ck);
  assert_non_null(sige_sd_checkpoint_vocab_json(ck));
  /* the folder's files: the fallback names a file that does not exist */
  g_autoptr(sige_clip_tokenizer) hf = sige_clip_tokenizer_new_for_sd(ck, "/nonexistent", &e);
  if (!hf) fail_msg("%s", e->message);
  /* a single file has no tokenizer: openai's vocabulary */
  g_autofree char *single = path_of("sd_full.safetensors");
  g_autoptr(sige_sd_checkpoint) ck1 = sige_sd_checkpoint_open(single, &e);
  assert_non_null(ck1);
  assert_null(sige_sd_checkpoint_vocab_json(ck1));
  g_autoptr(sige_clip_tokenizer) oa = sige_clip_tokenizer_new_for_sd(ck1, VOCAB, &e);
  if (!oa) fail_msg("%s", e->message);
  assert_int_equal(sige_clip_tokenizer_bos(oa), 49406);
  /* the reference prompts (case.json) against openai/CLIP's ids */
  g_autoptr(sige_tensor) tok = read_io("clip-text-tiny", "tokens");
  const char *const prompts[] = {"a photograph of an astronaut riding a horse",
                                 "A church in the snow, oil painting!!", ""};
  for (int p = 0; p < 3; p++) {
    int32_t a[77];
    ids_of(hf, prompts[p], a);
    for (int i = 0; i < 77; i++) assert_int_equal(a[i], (int32_t)tok->data[p * 77 + i]);
  }
  GString *longp = g_string_new(NULL);
  for (int i = 0; i < 60; i++) g_string_append(longp, "a majestic, highly-detailed castle; ");
  const char *const hard[] = {
    "caf\xc3\xa9 \xe2\x9c\xa8 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x90\xb4 na\xc3\xafve \xc3\x9f",
    "!!!?... ,;: \"quoted\" (brackets) [x] {y} <z> #tag @user $5 100% a+b=c ~_~ |\\/|",
    "it's we'll they're I'd you've I'M DON'T",
    "&amp; &lt;b&gt; &quot;x&quot; &#169; &#x1F600;",
    "1234567890 3.14159 1e-5 2x4",
    "\tTabs\nand\r\nnewlines   and    spaces\xc2\xa0nbsp",
    "ARTSTATION trending, 8k, octane render, unreal engine 5, by greg rutkowski",
    longp->str,
  };
  for (guint h = 0; h < G_N_ELEMENTS(hard); h++) {
    int32_t a[77], b[77];
    ids_of(hf, hard[h], a);
    ids_of(oa, hard[h], b);
    if (memcmp(a, b, sizeof a)) fail_msg("vocab.json + merges.txt differ on \"%.40s\"", hard[h]);
  }
  /* the long prompt is truncated: 75 content tokens, the end token last */
  int32_t a[77];
  ids_of(hf, longp->str, a);
  g_string_free(longp, TRUE);
  assert_int_equal(a[0], 49406);
  for (int i = 1; i < 76; i++) assert_true(a[i] < 49406);
  assert_int_equal(a[76], 49407);
}

static void test_schedule(void **state) {
  (void)state;
  g_autofree char *folder = path_of("diffusers");
  GError *e = NULL;
  g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(folder, &e);
  assert_non_null(ck);
  const sige_sd_schedule *s = sige_sd_checkpoint_schedule(ck);
  assert_true(s->from_file);
  assert_int_equal(s->schedule, SIGE_SD_BETAS_SCALED_LINEAR);
  assert_int_equal(s->num_train_timesteps, 1000);
  assert_int_equal(s->steps_offset, 1);
  g_autofree double *betas = g_new(double, s->num_train_timesteps);
  sige_sd_schedule_betas(s, betas);
  /* the reference's DDIM alphas are alphas_cumprod (float32) at its
   * timesteps: exact */
  g_autoptr(sige_tensor) ts = read_io("sd-img2img-tiny", "ddim/timesteps");
  g_autoptr(sige_tensor) al = read_io("sd-img2img-tiny", "ddim/alphas");
  double a = 1.0;
  g_autofree float *cum = g_new(float, 1000);
  for (int t = 0; t < 1000; t++) cum[t] = (float)(a *= 1.0 - betas[t]);
  for (size_t i = 0; i < ts->numel; i++)
    assert_true(cum[(int)ts->data[i]] == al->data[i]);
  assert_true(fabs(betas[0] - 0.00085) < 1e-15 && fabs(betas[999] - 0.012) < 1e-15);
}

/* opening fails with a message holding each of `needles` */
static void expect_open_error(const char *name, const char *const *needles) {
  g_autofree char *p = path_of(name);
  GError *e = NULL;
  g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(p, &e);
  if (ck) fail_msg("%s was accepted", name);
  for (int i = 0; needles[i]; i++)
    if (!strstr(e->message, needles[i])) fail_msg("'%s' not in: %s", needles[i], e->message);
  g_error_free(e);
}

static void test_errors(void **state) {
  (void)state;
  expect_open_error("no_sd.safetensors", (const char *const[]){
      "no_sd.safetensors", "model.diffusion_model.time_embed.0.weight", NULL});
  expect_open_error("diffusers_cosine", (const char *const[]){
      "scheduler_config.json", "squaredcos_cap_v2", NULL});
  expect_open_error("diffusers_vpred", (const char *const[]){"v_prediction", NULL});
  expect_open_error("diffusers_xl", (const char *const[]){
      "model_index.json", "StableDiffusionXLPipeline", NULL});
  GError *e = NULL;
  {
    g_autofree char *p = path_of("diffusers_no_vae");
    g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(p, &e);
    assert_non_null(ck);
    assert_false(sige_sd_checkpoint_has_part(ck, SIGE_SD_PART_VAE));
    assert_null(sige_sd_checkpoint_part(ck, SIGE_SD_PART_VAE, 0, &e));
    assert_non_null(strstr(e->message, "diffusers_no_vae"));
    assert_non_null(strstr(e->message, "vae/"));
    g_clear_error(&e);
  }
  {
    g_autofree char *p = path_of("diffusers_badshape");
    assert_null(sige_sd_load_model(p, SIGE_SD_PART_UNET, 0, &e));
    assert_non_null(strstr(e->message, "diffusion_pytorch_model.safetensors"));
    /* our name and the file's own */
    assert_non_null(strstr(e->message, "input_blocks.1.0.in_layers.2.weight"));
    assert_non_null(strstr(e->message, "down_blocks.0.resnets.0.conv1.weight"));
    g_clear_error(&e);
  }
  {
    g_autofree char *p = path_of("diffusers_unknown_key");
    assert_null(sige_sd_load_model(p, SIGE_SD_PART_UNET, 0, &e));
    assert_non_null(strstr(e->message, "diffusion_pytorch_model.safetensors"));
    assert_non_null(strstr(e->message, "add_embedding.linear_1.weight"));
    g_clear_error(&e);
  }
  {
    /* a part the file does not hold */
    g_autofree char *p = g_build_filename(sige_test_reference_dir(), "clip-text-tiny",
                                          "weights.safetensors", NULL);
    g_autoptr(sige_sd_checkpoint) ck = sige_sd_checkpoint_open(p, &e);
    assert_non_null(ck);
    assert_false(sige_sd_checkpoint_has_part(ck, SIGE_SD_PART_UNET));
    assert_null(sige_sd_checkpoint_part(ck, SIGE_SD_PART_UNET, 0, &e));
    assert_non_null(strstr(e->message, "weights.safetensors"));
    assert_non_null(strstr(e->message, "UNet"));
    g_clear_error(&e);
  }
  sige_sd_part part;
  assert_true(sige_sd_part_from_name("text_encoder", &part) && part == SIGE_SD_PART_TEXT_ENCODER);
  assert_true(sige_sd_part_from_name("vae", &part) && part == SIGE_SD_PART_VAE);
  assert_false(sige_sd_part_from_name("refiner", &part));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parts_exact),  cmocka_unit_test(test_parts_alone),
    cmocka_unit_test(test_ema),
    cmocka_unit_test(test_models_same),  cmocka_unit_test(test_tokenizer_from_folder),
    cmocka_unit_test(test_schedule),     cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
