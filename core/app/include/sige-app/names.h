/* Name <-> enum pairs of the front-ends: one table per enum, each with a
 * _name() and a _parse().  These are the names users type (`sige edit
 * --sampler ddim`, `--model pd:...`, `--device cuda`) and reference cases
 * store (case.json); no other code parses them.
 *
 * A _parse() takes the field the name came from (an option such as
 * "--sampler", a file field such as "case.json sampler.kind"; NULL: the
 * enum's own word) so that its error (SIGE_ERROR_INVALID) names it, the
 * rejected name and every accepted one. */
#pragma once
#include <glib.h>

#include "sige/device.h"
#include "sige/model.h"
#include "sige/sampler.h"

G_BEGIN_DECLS

/* "ddim", "dpmsolver++", "pd" (the reference cases' spelling). */
const char *sige_sampler_kind_name(sige_sampler_kind kind);
gboolean sige_sampler_kind_parse(const char *field, const char *name, sige_sampler_kind *kind,
                                 GError **error);

/* "auto", "cpu", "cuda", "sim" (sige_device_name's words; sim, the
 * simulated device of the tests, is accepted but not advertised). */
gboolean sige_device_kind_parse(const char *field, const char *name, sige_device *device,
                                GError **error);
/* The device a front-end option asks for: name, or when NULL/empty the
 * SIGE_DEVICE environment variable, else auto. */
gboolean sige_device_from_option(const char *field, const char *name, sige_device *device,
                                 GError **error);

/* The model spec prefixes: "spade", "ddpm", "pd", "gancomp".  (The engine's
 * sige_model_kind_name() is the descriptive name a file's kind is reported
 * by: "ddpm-unet".) */
const char *sige_model_kind_spec_name(sige_model_kind kind);
gboolean sige_model_kind_parse(const char *field, const char *name, sige_model_kind *kind,
                               GError **error);
/* What a kind is, for messages: "a PD UNet", "a SPADE (GauGAN) generator". */
const char *sige_model_kind_description(sige_model_kind kind);

G_END_DECLS
