/* What sige-regen.c shares with the Stable Diffusion run beside it
 * (sige-regen-sd.c); not for the front-ends. */
#pragma once
#include "sige-model-cache.h"
#include "sige-regen.h"
#include "sige/session.h"

G_BEGIN_DECLS

typedef struct sige_regen_sd_state sige_regen_sd_state;

/* What a table entry holds: the engine session, the model it borrows and
 * the options it was made with (to notice settings that void its caches);
 * or, for a Stable Diffusion checkpoint, sd (session and model NULL). */
typedef struct {
  sige_session *session;
  sige_model_ref *model;
  gchar *model_path;
  sige_session_options opts;
  /* SDEdit: the snapshot's source and output, and the last output given
   * (width * height * bpp each, NULL for label maps) */
  guint8 *base_src, *base_out, *last_out;
  sige_regen_sd_state *sd;
} sige_regen_payload;

void sige_regen_payload_free(gpointer p);
/* The layer's session: by the tag's id, checked against this layer. */
sige_session_entry *sige_regen_find_session(sige_session_table *t, const sige_regen_request *rq);

/* A job on the pass thread with the host's progress and cancel: what the
 * SD run hands to the same wait() as the sessions' passes. */
typedef gboolean (*sige_regen_job_fn)(gpointer data, sige_progress_fn progress, void *progress_data,
                                      const gint *cancel, GError **error);
gboolean sige_regen_run_job(const sige_regen_host *host, const char *what, gboolean full,
                            const char *device_info, sige_regen_job_fn fn, gpointer data,
                            GError **error);

/* sige-regen-sd.c */
/* Whether the model is a Stable Diffusion checkpoint: "sd:PATH", or a file
 * or diffusers folder whose keys are an SD checkpoint's. */
gboolean sige_regen_sd_wanted(const char *model_path);
sige_regen_result *sige_regen_sd_process(const sige_regen_request *rq,
                                         const sige_regen_host *host, const char *model_path,
                                         GError **error);
void sige_regen_sd_finish(sige_regen_result *r, sige_rect written);
void sige_regen_sd_state_free(sige_regen_sd_state *s);

G_END_DECLS
