/* The two procedures, declared once with their arguments: the same names
 * and arguments as the GIMP 2.10 plug-in (named in GIMP 3's Script-Fu),
 * with the dialog-only settings as auxiliary arguments that the config
 * remembers. */
#include <string.h>

#include "sige-dialog.h"
#include "sige-gimp3.h"
#include "sige-host.h"
#include "sige-regen.h"
#include "sige/error.h"

static GimpValueArray *fail(GimpProcedure *procedure, GimpRunMode mode, GimpPDBStatusType status,
                            GError *error) {
  const gboolean cancelled = status == GIMP_PDB_CANCEL;
  if (!cancelled && mode == GIMP_RUN_INTERACTIVE) gimp_message(error->message);
  /* One line on stderr, as in GIMP 2.10: what batch users and the tests
   * see (a cancel too: the GUI test times the Cancel by it). */
  g_printerr("sparse-regenerate: %s: %s\n", cancelled ? "cancelled" : "error", error->message);
  return gimp_procedure_new_return_values(procedure, status, error);
}

/* GIMP 3 passes the selected drawables; the plug-in regenerates one layer. */
static GimpDrawable *single_drawable(GimpDrawable **drawables, GError **error) {
  gint n = 0;
  while (drawables && drawables[n]) n++;
  if (n == 1) return drawables[0];
  if (n == 0)
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("Sparse Regenerate needs a layer; select the label layer (GauGAN) or the "
                  "image layer (DDPM) and run it again."));
  else
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("Sparse Regenerate works on one layer at a time, but %d are selected. Select "
                  "only the label layer (GauGAN) or the image layer (DDPM) and run it again."),
                n);
  return NULL;
}

/* Between the start and the end of Sparse Regenerate Live.  Every PDB call
 * the live loop makes lets libgimp deliver the next call of a temporary
 * procedure (it serves them while it waits for a reply), so a Ctrl+F or a
 * second live mode would otherwise run inside live mode, on the same
 * session. */
static gboolean live_running;

static GimpValueArray *refuse_during_live(GimpProcedure *procedure, GimpRunMode mode) {
  GError *error = g_error_new_literal(SIGE_ERROR, SIGE_ERROR_INVALID,
                                      _("Sparse Regenerate Live is running; stop it first."));
  return fail(procedure, mode, GIMP_PDB_EXECUTION_ERROR, error);
}

/* The settings of this session's last run, for live mode: scripts' runs
 * save no last values of GIMP's. */
static SigeSettings last_settings;
static gboolean have_last_settings;

static GimpValueArray *run_regenerate(GimpProcedure *procedure, GimpRunMode mode,
                                      GimpImage *image, GimpDrawable **drawables,
                                      GimpProcedureConfig *config, gpointer run_data) {
  (void)run_data;
  if (live_running) return refuse_during_live(procedure, mode);
  GError *error = NULL;
  sige_gimp3_sessions_prune();
  GimpDrawable *drawable = single_drawable(drawables, &error);
  if (!drawable) return fail(procedure, mode, GIMP_PDB_CALLING_ERROR, error);

  if (!sige_gimp3_config_take_sd_sampler(config, &error))
    return fail(procedure, mode, GIMP_PDB_CALLING_ERROR, error);

  GimpLayer *instance = NULL;
  /* the dialog shows (and resets) the session of the layer the run uses */
  GimpDrawable *source = sige_gimp3_source_layer(image, drawable, NULL);
  if (mode == GIMP_RUN_INTERACTIVE &&
      !sige_gimp3_dialog_run(procedure, config, image, source ? source : drawable, &instance))
    return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, NULL);
  /* Non-interactive: the arguments given, the defaults for the rest;
   * with last values: the config as GIMP loaded it. */
  SigeSettings s;
  sige_gimp3_settings_from_config(config, &s);

  sige_gimp_host_begin();
  GimpLayer *out = sige_gimp3_regenerate(image, drawable, &s, instance,
                                         mode == GIMP_RUN_INTERACTIVE, &error);
  sige_gimp_host_end();
  if (!out) {
    const gboolean cancelled = g_error_matches(error, SIGE_ERROR, SIGE_ERROR_CANCELLED);
    return fail(procedure, mode, cancelled ? GIMP_PDB_CANCEL : GIMP_PDB_EXECUTION_ERROR, error);
  }
  sige_gimp3_config_add_recent(config, s.model);
  sige_gimp3_settings_from_config(config, &last_settings);
  have_last_settings = TRUE;
  if (mode == GIMP_RUN_INTERACTIVE) gimp_displays_flush();
  GimpValueArray *ret = gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_SET_LAYER(ret, 1, out);
  return ret;
}

static GimpValueArray *run_reset(GimpProcedure *procedure, GimpRunMode mode, GimpImage *image,
                                 GimpDrawable **drawables, GimpProcedureConfig *config,
                                 gpointer run_data) {
  (void)config, (void)run_data;
  if (live_running) return refuse_during_live(procedure, mode);
  GError *error = NULL;
  sige_gimp3_sessions_prune();
  GimpDrawable *drawable = single_drawable(drawables, &error);
  if (!drawable) return fail(procedure, mode, GIMP_PDB_CALLING_ERROR, error);
  drawable = sige_gimp3_source_layer(image, drawable, &error);
  if (!drawable) return fail(procedure, mode, GIMP_PDB_EXECUTION_ERROR, error);
  const gboolean had = sige_regen_reset(gimp_image_get_id(image),
                                        gimp_item_get_id(GIMP_ITEM(drawable)));
  if (mode == GIMP_RUN_INTERACTIVE)
    gimp_message(had ? _("Sparse Regenerate: the snapshot was reset; the next run is a full pass.")
                     : _("Sparse Regenerate: this layer has no snapshot yet."));
  return gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
}

/* Live mode's settings: this session's last run's, else the last values
 * GIMP saved for the regeneration after its last interactive run (its
 * .last file in the profile), else the defaults. */
static void live_settings(GimpPlugIn *plug_in, SigeSettings *s) {
  if (have_last_settings) {
    *s = last_settings;
    g_printerr("sparse-regenerate: live: the settings of this session's last run\n");
    return;
  }
  GimpProcedure *regen = gimp_plug_in_get_temp_procedure(plug_in, SIGE_RUN_PROC);
  g_autoptr(GimpProcedureConfig) config = regen ? gimp_procedure_create_config(regen) : NULL;
  if (!config) {
    sige_settings_defaults(s);
    g_printerr("sparse-regenerate: live: the default settings\n");
    return;
  }
  /* Where libgimp 3.0 saves them after an interactive run: in
   * plug-in-settings/, named after the type of the config it made for the
   * run, "GimpProcedureConfigRun-<procedure>" (a config made here is of
   * another type, "GimpProcedureConfig-<procedure>", with the same
   * properties).  libgimp has no public call that loads them; the GIMP 3
   * live test fails if this name changes. */
  g_autofree gchar *base = g_strconcat("GimpProcedureConfigRun-", SIGE_RUN_PROC, ".last", NULL);
  g_autoptr(GFile) file = gimp_directory_file("plug-in-settings", base, NULL);
  g_autofree gchar *path = g_file_get_parse_name(file);
  GError *error = NULL;
  if (gimp_config_deserialize_file(GIMP_CONFIG(config), file, NULL, &error)) {
    g_printerr("sparse-regenerate: live: the settings saved in %s\n", path);
  } else if (g_error_matches(error, GIMP_CONFIG_ERROR, GIMP_CONFIG_ERROR_OPEN_ENOENT)) {
    g_printerr("sparse-regenerate: live: the default settings (no %s)\n", path);
  } else {
    g_printerr("sparse-regenerate: live: could not read the last settings in %s (%s); using "
               "the defaults for what could not be read\n",
               path, error->message);
  }
  g_clear_error(&error);
  sige_gimp3_settings_from_config(config, s);
}

static GimpValueArray *run_live(GimpProcedure *procedure, GimpRunMode mode, GimpImage *image,
                                GimpDrawable **drawables, GimpProcedureConfig *config,
                                gpointer run_data) {
  (void)config, (void)run_data;
  if (live_running) return refuse_during_live(procedure, mode);
  GError *error = NULL;
  sige_gimp3_sessions_prune();
  GimpDrawable *drawable = single_drawable(drawables, &error);
  if (!drawable) return fail(procedure, mode, GIMP_PDB_CALLING_ERROR, error);
  GimpItem *item = GIMP_ITEM(drawable);
  if (gimp_item_is_layer(item) && !gimp_item_is_group(item))
    drawable = sige_gimp3_source_layer(image, drawable, &error);
  else
    g_set_error(&error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("Sparse Regenerate Live works on a layer; select the label layer and start it "
                  "again."));
  if (!drawable || error) return fail(procedure, mode, GIMP_PDB_EXECUTION_ERROR, error);
  SigeSettings s;
  live_settings(gimp_procedure_get_plug_in(procedure), &s);
  live_running = TRUE;
  sige_gimp3_live_run(image, drawable, &s);
  live_running = FALSE;
  return gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
}

static GimpProcedure *new_procedure(GimpPlugIn *plug_in, const gchar *name, GimpRunImageFunc run,
                                    const gchar *label, const gchar *blurb, const gchar *help) {
  GimpProcedure *p = gimp_image_procedure_new(plug_in, name, GIMP_PDB_PROC_TYPE_TEMPORARY, run,
                                              NULL, NULL);
  gimp_procedure_set_image_types(p, "RGB*, GRAY*, INDEXED*");
  /* Sensitive with several layers selected too, so that the refusal can
   * say why rather than leave the menu item grey. */
  gimp_procedure_set_sensitivity_mask(
      p, GIMP_PROCEDURE_SENSITIVE_DRAWABLE | GIMP_PROCEDURE_SENSITIVE_DRAWABLES);
  gimp_procedure_set_menu_label(p, label);
  gimp_procedure_add_menu_path(p, SIGE_MENU_PATH);
  gimp_procedure_set_documentation(p, blurb, help, name);
  gimp_procedure_set_attribution(p, "Sparse Regenerate authors", "Sparse Regenerate authors",
                                 "2024");
  return p;
}

static void add_regenerate(GimpPlugIn *plug_in) {
  GimpProcedure *p = new_procedure(
      plug_in, SIGE_RUN_PROC, run_regenerate, _("Sparse _Regenerate..."),
      _("Regenerate the model's output from this layer, recomputing only what changed. The "
        "layer is a label map in Cityscapes colours (GauGAN; the demo model takes 512 x 256) "
        "or a picture of the model's size (DDPM)"),
      "The first run on a layer takes a snapshot and runs the whole model; later runs compute "
      "only the regions the edit reaches (spatially sparse incremental inference) and write "
      "them into the output layer above the source, one undo step per run.");
  gimp_procedure_add_string_argument(
      p, "model", _("Model"),
      "Weights file (safetensors); \"\" = the shipped default", "", G_PARAM_READWRITE);
  gimp_procedure_add_int_argument(p, "steps", _("Ste_ps"),
                                  _("DDPM denoising steps; 0 = the default (10). Fewer steps are "
                                    "faster. Changing it takes a new snapshot."),
                                  0, 1000, 0, G_PARAM_READWRITE);
  gimp_procedure_add_double_argument(
      p, "strength", _("Stren_gth"),
      _("DDPM edit strength (SDEdit): how much noise the edited region is regenerated from; 0 = "
        "the default (0.75). Changing it takes a new snapshot."),
      0.0, 1.0, 0.0, G_PARAM_READWRITE);
  gimp_procedure_add_int_argument(p, "seed", _("See_d"),
                                  _("DDPM noise seed; -1 keeps the session's (0 for a new one). "
                                    "Changing it takes a new snapshot."),
                                  -1, G_MAXINT, -1, G_PARAM_READWRITE);
  /* Stable Diffusion (after the others: scripts name their arguments, and
   * the ones they leave out take these defaults) */
  gimp_procedure_add_string_argument(
      p, "prompt", _("P_rompt"),
      _("Stable Diffusion: what the picture shows, in English words (\"a stone church at dusk, "
        "oil painting\"). Changing it takes a new snapshot."),
      "", G_PARAM_READWRITE);
  gimp_procedure_add_string_argument(
      p, "negative-prompt", _("Negative prompt"),
      _("Stable Diffusion: what to steer away from (\"blurry, text\"); may be empty. Changing "
        "it takes a new snapshot."),
      "", G_PARAM_READWRITE);
  gimp_procedure_add_double_argument(
      p, "guidance", _("G_uidance"),
      _("Stable Diffusion: how closely the picture follows the prompt (classifier-free "
        "guidance; 7.5 is usual, 1 ignores the negative prompt and halves the work). Changing it "
        "takes a new snapshot."),
      0.0, 100.0, 7.5, G_PARAM_READWRITE);
  /* A string, not a choice: a choice argument's unknown value is replaced
   * by its default in the caller (Script-Fu logs a GLib CRITICAL and goes
   * on), so the run could never refuse it.  The dialog shows the aux
   * choice sd-sampler-choice, which a valid name given here updates. */
  gimp_procedure_add_string_argument(
      p, "sd-sampler", _("Sampler"),
      _("Stable Diffusion sampler: \"ddim\" (the published one) or \"dpmsolver++\" (2M: the "
        "same steps and cost, a higher-order update); \"\" = the last used (DDIM at first). "
        "Changing it takes a new snapshot."),
      "", G_PARAM_READWRITE);
  gimp_procedure_add_layer_return_value(p, "layer", "Layer", "The output layer", FALSE,
                                        G_PARAM_READWRITE);

  /* Dialog-only settings: remembered by the config, defaults in scripts. */
  gimp_procedure_add_choice_aux_argument(
      p, "sd-sampler-choice", _("Samp_ler"),
      _("Stable Diffusion sampler: DDIM (the published one) or DPM-Solver++ (2M: the same steps "
        "and cost, a higher-order update). Changing it takes a new snapshot."),
      gimp_choice_new_with_values("ddim", SIGE_SAMPLER_CHOICE_DDIM, _("DDIM"), NULL,
                                  "dpmsolver++", SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP,
                                  _("DPM-Solver++"), NULL, NULL),
      "ddim", G_PARAM_READWRITE);
  gimp_procedure_add_choice_aux_argument(
      p, "sampler", _("Sa_mpler"),
      _("DDPM sampler. DPM-Solver++ (the interactive demo's) keeps a faint noise trace "
        "everywhere after the first edit; DDIM leaves the unedited pixels exactly as they were."),
      gimp_choice_new_with_values("dpm-solver++", SIGE_SAMPLER_CHOICE_DPM_SOLVER_PP,
                                  _("DPM-Solver++"), NULL, "ddim", SIGE_SAMPLER_CHOICE_DDIM,
                                  _("DDIM"), NULL, NULL),
      "dpm-solver++", G_PARAM_READWRITE);
  gimp_procedure_add_double_aux_argument(
      p, "threshold", _("Full-pass _threshold"),
      _("Run a full pass instead of a sparse one when the edit reaches more than this fraction "
        "of the image (above 1: always sparse)."),
      0.01, 1.01, 0.6, G_PARAM_READWRITE);
  gimp_procedure_add_choice_aux_argument(
      p, "precision", _("Cache precisio_n"),
      _("How the activation caches are stored. float16 halves their memory for an output error "
        "of about one level of 8 bits at most. Changing it takes a new snapshot."),
      gimp_choice_new_with_values("float32", SIGE_PRECISION_F32, _("float32"), NULL, "float16",
                                  SIGE_PRECISION_F16, _("float16 (half the memory)"), NULL, NULL),
      "float32", G_PARAM_READWRITE);
  gimp_procedure_add_choice_aux_argument(
      p, "device", _("De_vice"), NULL,
      gimp_choice_new_with_values("auto", SIGE_DEVICE_AUTO, _("Automatic (CUDA if present)"),
                                  NULL, "cpu", SIGE_DEVICE_CPU, _("CPU"), NULL, "cuda",
                                  SIGE_DEVICE_CUDA, _("CUDA"), NULL, NULL),
      "auto", G_PARAM_READWRITE);
  gimp_procedure_add_int_aux_argument(p, "threads", _("Thr_eads"), _("0 = all cores"), 0, 256, 0,
                                      G_PARAM_READWRITE);
  gimp_procedure_add_int_aux_argument(
      p, "budget-mib", _("Memory _budget (MiB)"),
      _("Snapshots of other layers are dropped, least recently used first, when all of them "
        "together hold more than this."),
      64, 1 << 20, 4096, G_PARAM_READWRITE);
  gimp_procedure_add_string_aux_argument(p, "recent-models", "Recent models",
                                         "The last models used, one path per line", "",
                                         G_PARAM_READWRITE);
  gimp_plug_in_add_temp_procedure(plug_in, p);
  g_object_unref(p);
}

static void add_reset(GimpPlugIn *plug_in) {
  GimpProcedure *p =
      new_procedure(plug_in, SIGE_RESET_PROC, run_reset, _("Reset Sparse Regenerate Snapshot"),
                    _("Forget the snapshot of this layer (the label map or picture Sparse Regenerate ran on) "
                      "so that the next run is a full pass"),
                    "Drops the editing session (and its caches) of this layer.");
  gimp_plug_in_add_temp_procedure(plug_in, p);
  g_object_unref(p);
}

static void add_live(GimpPlugIn *plug_in) {
  GimpProcedure *p = new_procedure(
      plug_in, SIGE_LIVE_PROC, run_live, _("Sparse Regenerate _Live"),
      _("Keep the output layer in step with the label layer while you paint on it"),
      "Watches the layer; a moment after each stroke it runs a sparse pass into the output "
      "layer (one undo step per update). A small window's Stop button (or closing it) ends "
      "it. Uses the settings of the last run; the procedure returns when stopped.");
  gimp_plug_in_add_temp_procedure(plug_in, p);
  g_object_unref(p);
}

void sige_gimp3_add_procedures(GimpPlugIn *plug_in) {
  add_regenerate(plug_in);
  add_reset(plug_in);
  add_live(plug_in);
}
