/* What the per-model checks of sige check-reference share: the checker's
 * state and its comparisons (cmd_check_reference.c), each printing one
 * PASS / FAIL line. */
#pragma once
#include "case_config.h"
#include "sige/context.h"
#include "sige/device.h"
#include "sige/sparse.h"
#include "sige/weights.h"

typedef struct {
  int passed, failed, not_checked;
  sige_case cs;
  sige_weights *io;
  sige_ctx *ctx;
  int threads;
  sige_device device;
} checker;

/* A failed output whose check could not run (takes error). */
void report_error(checker *ck, const char *name, GError *error);
/* ours against io's `name` under the case's tolerance `tol_name`. */
void compare(checker *ck, const char *name, const sige_tensor *ours, const char *tol_name);
/* A mask against io's `name`, exactly. */
void compare_mask(checker *ck, const char *name, const sige_mask *m);
/* Every io entry <prefix>HxW/bBxB/sSxS/oOxO<suffix> against the blocks of
 * that geometry in pyr, exactly. */
void compare_active_indices_named(checker *ck, const sige_mask_pyramid *pyr, const char *prefix,
                                  const char *suffix);

/* The SD VAE case (check_sd_vae.c): encoder and decoder, dense and sparse. */
void check_sd_vae(checker *ck, const sige_weights *w, gboolean dense, gboolean sparse);
/* case.json "config" and "sige" of an SD VAE case into a config of `part`
 * (check_sd_vae.c). */
gboolean sd_vae_case_config(const sige_case *cs, sige_model_kind part, sige_sd_vae_config *c,
                            GError **error);

/* The SD pipeline cases "sd-img2img" and "sd-inpainting"
 * (check_sd_pipeline.c): the dense task end to end with per-step tensors;
 * sparse: masks, then the SIGE task.  Returns FALSE when a sparse check
 * could not run because the SD UNet has no sparse pass (the caller reports
 * UNSUPPORTED). */
gboolean check_sd_pipeline(checker *ck, const sige_weights *w, gboolean dense, gboolean sparse);
