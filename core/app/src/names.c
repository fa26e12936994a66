/* The tables behind names.h.  Matching ignores ASCII case ("CUDA" works);
 * names come out in lower case. */
#include "sige-app/names.h"

#include "sige/error.h"

typedef struct {
  int value;
  const char *name;
  const char *description; /* models only */
  gboolean listed;         /* named in the accepted values of an error */
} name_entry;

static const name_entry samplers[] = {
    {SIGE_SAMPLER_DDIM, "ddim", NULL, TRUE},
    {SIGE_SAMPLER_DPM_SOLVER_PP, "dpmsolver++", NULL, TRUE},
    {SIGE_SAMPLER_PD, "pd", NULL, TRUE},
};

/* names from the engine (sige_device_name), filled in on first use */
static const sige_device device_values[] = {SIGE_DEVICE_AUTO, SIGE_DEVICE_CPU, SIGE_DEVICE_CUDA,
                                            SIGE_DEVICE_SIM};

static const name_entry model_kinds[] = {
    {SIGE_MODEL_SPADE, "spade", "a SPADE (GauGAN) generator", TRUE},
    {SIGE_MODEL_DDPM_UNET, "ddpm", "a DDPM UNet", TRUE},
    {SIGE_MODEL_PD_UNET, "pd", "a PD UNet", TRUE},
    {SIGE_MODEL_GANCOMP_SPADE, "gancomp", "a GAN-Compression sub-mobile SPADE generator", TRUE},
    /* a text encoder: read, described and checked, not edited on its own */
    {SIGE_MODEL_CLIP_TEXT, "clip-text", "a CLIP text encoder", FALSE},
    /* dense only so far, with a context from the caller: not edited on its own yet */
    {SIGE_MODEL_SD_UNET, "sd-unet", "a Stable Diffusion 1.x UNet", FALSE},
    /* halves of the SD pipeline, not edited on their own */
    {SIGE_MODEL_SD_VAE_ENCODER, "sd-vae-encoder", "a Stable Diffusion VAE encoder", FALSE},
    {SIGE_MODEL_SD_VAE_DECODER, "sd-vae-decoder", "a Stable Diffusion VAE decoder", FALSE},
};

static const name_entry *by_value(const name_entry *t, size_t n, int value) {
  for (size_t i = 0; i < n; i++)
    if (t[i].value == value) return &t[i];
  return NULL;
}

/* "a, b or c" */
static char *accepted(const name_entry *t, size_t n) {
  GString *s = g_string_new(NULL);
  size_t listed = 0, total = 0;
  for (size_t i = 0; i < n; i++) total += t[i].listed;
  for (size_t i = 0; i < n; i++) {
    if (!t[i].listed) continue;
    if (listed > 0) g_string_append(s, listed + 1 == total ? " or " : ", ");
    g_string_append(s, t[i].name);
    listed++;
  }
  return g_string_free(s, FALSE);
}

/* The entry named name; NULL, with an error that lists the accepted names,
 * when none is. */
static const name_entry *by_name(const name_entry *t, size_t n, const char *field,
                                 const char *what, const char *name, GError **error) {
  for (size_t i = 0; name && i < n; i++)
    if (!g_ascii_strcasecmp(name, t[i].name)) return &t[i];
  g_autofree char *ok = accepted(t, n);
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "%s '%s': unknown %s; expected %s",
              field ? field : what, name ? name : "", what, ok);
  return NULL;
}

static const char *name_of(const name_entry *t, size_t n, int value) {
  const name_entry *e = by_value(t, n, value);
  return e ? e->name : "unknown";
}

const char *sige_sampler_kind_name(sige_sampler_kind kind) {
  return name_of(samplers, G_N_ELEMENTS(samplers), kind);
}

gboolean sige_sampler_kind_parse(const char *field, const char *name, sige_sampler_kind *kind,
                                 GError **error) {
  const name_entry *e = by_name(samplers, G_N_ELEMENTS(samplers), field, "sampler", name, error);
  if (e) *kind = (sige_sampler_kind)e->value;
  return e != NULL;
}

gboolean sige_device_kind_parse(const char *field, const char *name, sige_device *device,
                                GError **error) {
  name_entry t[G_N_ELEMENTS(device_values)];
  for (size_t i = 0; i < G_N_ELEMENTS(device_values); i++)
    t[i] = (name_entry){device_values[i], sige_device_name(device_values[i]), NULL,
                        device_values[i] != SIGE_DEVICE_SIM};
  const name_entry *e = by_name(t, G_N_ELEMENTS(t), field, "device", name, error);
  if (e) *device = (sige_device)e->value;
  return e != NULL;
}

gboolean sige_device_from_option(const char *field, const char *name, sige_device *device,
                                 GError **error) {
  if (!name || !*name) {
    name = g_getenv("SIGE_DEVICE");
    if (name && *name) field = "SIGE_DEVICE";
  }
  if (!name || !*name) name = "auto";
  return sige_device_kind_parse(field, name, device, error);
}

const char *sige_model_kind_spec_name(sige_model_kind kind) {
  return name_of(model_kinds, G_N_ELEMENTS(model_kinds), kind);
}

const char *sige_model_kind_description(sige_model_kind kind) {
  const name_entry *e = by_value(model_kinds, G_N_ELEMENTS(model_kinds), kind);
  return e ? e->description : "a model of an unknown kind";
}

gboolean sige_model_kind_parse(const char *field, const char *name, sige_model_kind *kind,
                               GError **error) {
  const name_entry *e =
      by_name(model_kinds, G_N_ELEMENTS(model_kinds), field, "model kind", name, error);
  if (e) *kind = (sige_model_kind)e->value;
  return e != NULL;
}
