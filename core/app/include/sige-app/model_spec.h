/* Model specs: "[KIND:[CONFIG:]]PATH", the way every front-end names a
 * model file and what to make of it.
 *   PATH               the file's own kind and settings
 *   spade:PATH         ... and it must be a SPADE (GauGAN) generator
 *   ddpm:PATH          a DDPM UNet
 *   pd:PATH            a PD UNet
 *   pd:HEAD_DIM:PATH   ... with that attention head width (else the file's
 *                      metadata sige.head_dim, else the published 64)
 *   gancomp:PATH       a GAN-Compression sub-mobile SPADE generator
 *   gancomp:CONFIG:PATH ... with that channel configuration
 *                      (32_32_32_48_32_24_24_32) instead of the file's
 * KIND is sige_model_kind_parse's word; a text before the first colon that
 * is no KIND is part of the path. */
#pragma once
#include <glib.h>

#include "sige/model.h"

G_BEGIN_DECLS

typedef struct {
  gboolean has_kind;
  sige_model_kind kind;
  gboolean has_channels; /* gancomp:CONFIG: */
  int channels[8];
  int head_dim; /* pd:HEAD_DIM:, 0 = none */
  char *path;
} sige_model_spec;

/* Fills spec (free its path with sige_model_spec_clear).  Errors
 * (SIGE_ERROR_INVALID) quote the spec and name what was expected. */
gboolean sige_model_spec_parse(const char *text, sige_model_spec *spec, GError **error);
void sige_model_spec_clear(sige_model_spec *spec);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sige_model_spec, sige_model_spec_clear)

/* Loads the spec's model.  A file of another kind than the spec's is
 * SIGE_ERROR_UNSUPPORTED naming both kinds and the prefix to use. */
sige_model *sige_model_spec_load(const sige_model_spec *spec, GError **error);

/* Parse and load in one. */
sige_model *sige_model_load_spec(const char *text, GError **error);

G_END_DECLS
