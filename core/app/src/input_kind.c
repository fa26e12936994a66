#include "sige-app/input_kind.h"

#include "app-i18n.h"
#include "sige/error.h"

sige_input_kind sige_model_input_kind(const sige_model *m, GError **error) {
  const sige_model_kind kind = sige_model_get_kind(m);
  switch (kind) {
    case SIGE_MODEL_SPADE:
    case SIGE_MODEL_GANCOMP_SPADE: /* the same label-map input */
      return SIGE_INPUT_LABELS;
    case SIGE_MODEL_DDPM_UNET:
    case SIGE_MODEL_PD_UNET: /* SDEdit on the picture */
      return SIGE_INPUT_IMAGE;
    default:
      break; /* kinds the engine learnt after the front-ends */
  }
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_UNSUPPORTED,
              _("%s models cannot be edited yet. Choose a GauGAN (SPADE), GAN-Compression, DDPM "
                "or PD (UNet) model."),
              sige_model_kind_name(kind));
  return SIGE_INPUT_UNSUPPORTED;
}

const char *sige_default_model_name(sige_input_kind kind) {
  return kind == SIGE_INPUT_IMAGE ? SIGE_DEFAULT_PICTURE_MODEL : SIGE_DEFAULT_LABEL_MODEL;
}
