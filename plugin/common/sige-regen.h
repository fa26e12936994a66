/* One run of Sparse Regenerate without GIMP: which session a layer has,
 * loading the model, the layer -> tensor conversion, the engine pass on a
 * worker thread and the output pixels.  Both front-ends (GIMP 2.10 and
 * GIMP 3) read the layers, call this and write the output layer; what GIMP
 * has to show comes back through sige_regen_host. */
#pragma once
#include <glib.h>

#include "sige-layer-io.h"
#include "sige-session-table.h"
#include "sige-settings.h"

G_BEGIN_DECLS

/* The engine pass running on a worker thread.  The front-end's wait() polls
 * it from GIMP's thread, keeping the progress moving and a Cancel button
 * responsive; a cancelled pass leaves the session as it was. */
typedef struct sige_pass sige_pass;
gboolean sige_pass_done(const sige_pass *p);
double sige_pass_fraction(const sige_pass *p);
gboolean sige_pass_is_full(const sige_pass *p);
void sige_pass_cancel(sige_pass *p);
/* The engine's description of where it runs (the driver's words included
 * when "auto" fell back to the CPU): for a tooltip or the log. */
const char *sige_pass_device_info(const sige_pass *p);

typedef struct {
  void (*message)(const char *text, gpointer data);      /* gimp_message */
  void (*progress_init)(const char *what, gpointer data); /* gimp_progress_init */
  /* Returns once sige_pass_done(pass). */
  void (*wait)(sige_pass *pass, const char *what, gpointer data);
  gpointer data;
} sige_regen_host;

typedef struct {
  int image_id, layer_id;
  guint32 tagged_session;       /* the session id in the layer's tag, 0 = none */
  const sige_pixels *source;    /* the layer, without alpha */
  const sige_pixels *instance;  /* GauGAN instance layer, or NULL */
  const SigeSettings *settings;
  /* Stable Diffusion: the image's selection over the layer (1 byte per
   * pixel, layer-sized; > 127 = inpaint here), or NULL / all 0 for img2img */
  const sige_pixels *mask;
  const char *layer_name; /* for messages; NULL = "the layer" */
} sige_regen_request;

typedef struct {
  sige_session_entry *entry; /* the layer's session; output_layer_id is the front-end's */
  gboolean full;             /* a snapshot (full pass) rather than a sparse run */
  gchar *model_path;
  guint8 *pixels; /* the whole output, width * height * bpp (the source's bpp) */
  int width, height, bpp;
  sige_rect changed; /* what the engine recomputed */
  /* private */
  gint64 t_start;
  int mode;
  gboolean sd; /* a Stable Diffusion run (sige-regen-sd.c) */
} sige_regen_result;

/* The process-wide table of editing sessions. */
sige_session_table *sige_regen_sessions(void);
/* The engine session of a table entry (its output is the engine's, before
 * the plug-in keeps untouched pixels). */
sige_session *sige_regen_entry_session(const sige_session_entry *e);
/* Forgets the layer's session.  Returns whether there was one. */
gboolean sige_regen_reset(int image_id, int layer_id);

/* Runs the model on the layer: a full pass the first time (or when the
 * layer's size, the model or a setting the caches depend on changed), a
 * sparse one afterwards.  NULL with *error set on failure, which never
 * costs the layer a snapshot it had unless the failure is in the pass. */
sige_regen_result *sige_regen_process(const sige_regen_request *rq, const sige_regen_host *host,
                                  GError **error);
/* After the front-end wrote `written` of the output: the session's memory
 * accounting, eviction of others over the budget and one line on stderr
 * (what the tests and benchmarks read).  Frees r. */
void sige_regen_finish(sige_regen_result *r, sige_rect written);
/* Frees r without the accounting (the front-end failed to write). */
void sige_regen_result_free(sige_regen_result *r);

/* The tag a front-end keeps on the source layer (a parasite) tying it to
 * its session; the size and type in it keep a duplicated or resized layer
 * from reusing a session that is not its own. */
gchar *sige_regen_tag_format(const sige_session_entry *e);
guint32 sige_regen_tag_parse(const char *text, gsize len);

/* "Sparse Regenerate (<model file name without extension>)", translated. */
gchar *sige_regen_output_name(const char *model_path);
/* ---- around a run in GIMP (both front-ends) ---------------------------- */

/* The source layer id in an output layer's tag (SIGE_OUTPUT_PARASITE), 0
 * when the text is not one. */
int sige_regen_output_source_parse(const char *text, gsize len);
/* The opacity (percent) of a new output layer.  A label model's output is
 * made partly transparent so that the painted labels show through it: the
 * artist paints on the labels below and sees both (USER-GUIDE.md, "Labels
 * and result together"); a picture model's output is opaque. */
double sige_regen_output_opacity(const sige_regen_result *r);
/* What the user has to know after this run (translated), or NULL: after
 * the snapshot of a picture model, whose output looks like its input, what
 * happened and what to do next. */
gchar *sige_regen_run_note(const sige_regen_result *r, const char *layer_name);

/* The DDPM settings the dialogs show: what a run with s would use (the
 * model's defaults for steps 0 and strength 0, the layer's session's seed
 * for seed -1, else 0) rather than the scripts' stand-ins. */
typedef struct {
  int steps;
  double strength;
  int seed;
} sige_generation_values;
void sige_regen_generation_values(const char *model_path, const SigeSettings *s, int image_id,
                                  int layer_id, sige_generation_values *v);
/* Back from the dialog: a value left as shown keeps its stand-in (0 or -1),
 * so that the remembered settings still mean "the default" and "the
 * session's seed" on the next layer. */
void sige_regen_generation_store(const sige_generation_values *shown,
                                 const sige_generation_values *chosen, SigeSettings *s);

/* The dialogs' one-line description of a model file (resolved: the chosen
 * file or the shipped default; NULL when neither exists) into *text.  TRUE
 * when the file loaded, with what the plug-in makes of it in *mode.  Loading
 * is what the run would do anyway; the model cache keeps it only while a
 * session uses it. */
gboolean sige_regen_describe_model(const char *resolved, gchar **text, sige_input_kind *mode);
/* Whether the model (resolved) is a Stable Diffusion checkpoint ("sd:PATH",
 * or a file or diffusers folder with an SD UNet): the dialogs then show the
 * prompt and the SD settings. */
gboolean sige_regen_model_is_sd(const char *resolved);

/* The rectangle r of a w-pixel-wide buffer of bpp bytes per pixel, packed. */
guint8 *sige_pixels_crop(const guint8 *full, int width, int bpp, sige_rect r);

G_END_DECLS
