/* What a front-end feeds a model of each kind: the one switch on the model
 * kind above the engine. */
#pragma once
#include <glib.h>

#include "sige/model.h"

G_BEGIN_DECLS

typedef enum {
  SIGE_INPUT_LABELS,      /* GauGAN, GAN-Compression: a Cityscapes label map */
  SIGE_INPUT_IMAGE,       /* DDPM, PD: the RGB picture to edit (SDEdit) */
  SIGE_INPUT_UNSUPPORTED, /* known to the engine, not yet to the front-ends */
} sige_input_kind;

/* SIGE_INPUT_UNSUPPORTED sets *error (SIGE_ERROR_UNSUPPORTED) naming the
 * kind and the kinds that work. */
sige_input_kind sige_model_input_kind(const sige_model *m, GError **error);

/* The shipped default models (data/models): the street GauGAN for label
 * maps, the church DDPM for pictures. */
#define SIGE_DEFAULT_LABEL_MODEL "gaugan-street.safetensors"
#define SIGE_DEFAULT_PICTURE_MODEL "ddpm-church.safetensors"

/* The default model's file name for an input kind. */
const char *sige_default_model_name(sige_input_kind kind);

G_END_DECLS
