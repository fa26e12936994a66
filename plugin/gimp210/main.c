/* Sparse Regenerate for GIMP 2.10: a resident extension.
 *
 * A normal plug-in is a new process per call, which would throw away the
 * activation caches that make the second run fast.  The extension is started
 * once by GIMP, installs the user-visible procedures as temporary procedures
 * and keeps the editing sessions in memory between calls.  GIMP waits for
 * its ack without a timeout, so it acks before doing anything that could
 * block; models load lazily on the first run. */
#include <string.h>

#include "sige-dialog.h"
#include "sige-host.h"
#include "sige/error.h"
#include "sige-plugin.h"
#include "sige-regen.h"

static void query(void);
static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals,
                GimpParam **return_vals);

const GimpPlugInInfo PLUG_IN_INFO = {NULL, NULL, query, run};

MAIN()

/* ---- the procedures, declared in one place ------------------------------ */

static const GimpParamDef run_args[] = {
    {GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }"},
    {GIMP_PDB_IMAGE, "image", "Input image"},
    {GIMP_PDB_DRAWABLE, "drawable", "The label layer (GauGAN) or image layer (DDPM) to regenerate from"},
    {GIMP_PDB_STRING, "model", "Weights file (safetensors); \"\" = the last used, else the shipped default"},
    {GIMP_PDB_INT32, "steps", "Denoising steps (DDPM); 0 = the default (10)"},
    {GIMP_PDB_FLOAT, "strength", "Edit strength (DDPM SDEdit), 0..1; 0 = the default (0.75)"},
    {GIMP_PDB_INT32, "seed", "Noise seed (DDPM); -1 = keep the session's"},
};
/* run_args, then the Stable Diffusion settings */
static const GimpParamDef run_sd_args[] = {
    {GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }"},
    {GIMP_PDB_IMAGE, "image", "Input image"},
    {GIMP_PDB_DRAWABLE, "drawable", "The picture layer to regenerate from (sides multiples of 8)"},
    {GIMP_PDB_STRING, "model", "Stable Diffusion checkpoint: sd:FILE_OR_FOLDER or an SD .safetensors/.ckpt file; \"\" = the last used"},
    {GIMP_PDB_INT32, "steps", "DDIM steps of the whole schedule; 0 = the default (50)"},
    {GIMP_PDB_FLOAT, "strength", "img2img: the fraction of the steps run, 0..1; 0 = the default (0.75)"},
    {GIMP_PDB_INT32, "seed", "Noise seed; -1 = keep the session's"},
    {GIMP_PDB_STRING, "prompt", "What the picture shows"},
    {GIMP_PDB_STRING, "negative-prompt", "What to steer away from (\"\" = nothing)"},
    {GIMP_PDB_FLOAT, "guidance", "Classifier-free guidance scale, 0..100 (7.5)"},
    {GIMP_PDB_STRING, "sampler", "\"ddim\" or \"dpmsolver++\" (\"\" = the last used)"},
};
static const GimpParamDef run_returns[] = {
    {GIMP_PDB_LAYER, "layer", "The output layer"},
};
static const GimpParamDef reset_args[] = {
    {GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }"},
    {GIMP_PDB_IMAGE, "image", "Input image"},
    {GIMP_PDB_DRAWABLE, "drawable", "The layer whose session to forget"},
};

/* The menu's Reset.  GIMP 2.10 makes every menu procedure whose second
 * argument is an image the one Filters > Repeat (Ctrl+F) repeats, and
 * there is no way for a plug-in to keep it from doing so; a display as the
 * second argument is filled in by the menu like the image and drawable
 * after it but keeps Repeat on the regeneration.  Scripts keep
 * SIGE_RESET_PROC with the arguments of GIMP 3. */
static const GimpParamDef reset_menu_args[] = {
    {GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }"},
    {GIMP_PDB_DISPLAY, "display", "The display the menu was used in"},
    {GIMP_PDB_IMAGE, "image", "Input image"},
    {GIMP_PDB_DRAWABLE, "drawable", "The layer whose session to forget"},
};

static void run_temp(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals,
                     GimpParam **return_vals);

static void install_procedures(void) {
  gimp_install_temp_proc(
      SIGE_RUN_PROC,
      N_("Regenerate the model's output from this layer, recomputing only what changed. The "
         "layer is a label map in Cityscapes colours (GauGAN; the demo model takes 512 x 256) "
         "or a picture of the model's size (DDPM)"),
      "The first run on a layer takes a snapshot and runs the whole model; later runs compute "
      "only the regions the edit reaches (spatially sparse incremental inference) and write "
      "them into the output layer above the source, one undo step per run.",
      "Sparse Regenerate authors", "Sparse Regenerate authors", "2024",
      N_("Sparse _Regenerate..."), "RGB*, GRAY*, INDEXED*", GIMP_TEMPORARY, G_N_ELEMENTS(run_args),
      G_N_ELEMENTS(run_returns), run_args, run_returns, run_temp);
  gimp_plugin_menu_register(SIGE_RUN_PROC, SIGE_MENU_PATH);
  gimp_install_temp_proc(
      SIGE_RUN_SD_PROC,
      N_("Regenerate the picture with a Stable Diffusion checkpoint and a prompt, recomputing "
         "only what changed; with a selection, inpaint the selection"),
      "The arguments of " SIGE_RUN_PROC " and the Stable Diffusion settings after them. The "
      "first run on a layer takes a snapshot (img2img of the whole picture); later runs "
      "regenerate only what the edit reaches. With a selection the selection is inpainted.",
      "Sparse Regenerate authors", "Sparse Regenerate authors", "2024", NULL,
      "RGB*, GRAY*, INDEXED*", GIMP_TEMPORARY, G_N_ELEMENTS(run_sd_args),
      G_N_ELEMENTS(run_returns), run_sd_args, run_returns, run_temp);
  gimp_install_temp_proc(
      SIGE_RESET_PROC,
      N_("Forget the snapshot of this layer (the label map or picture Sparse Regenerate ran on) "
         "so that the next run is a full pass"),
      "Drops the editing session (and its caches) of this layer.", "Sparse Regenerate authors",
      "Sparse Regenerate authors", "2024", N_("Reset Sparse Regenerate Snapshot"), "RGB*, GRAY*, INDEXED*",
      GIMP_TEMPORARY, G_N_ELEMENTS(reset_args), 0, reset_args, NULL, run_temp);
  gimp_install_temp_proc(
      SIGE_RESET_MENU_PROC, N_("Forget the layer's snapshot so that the next run is a full pass"),
      "The menu's form of " SIGE_RESET_PROC ", which scripts use: with the display first, so "
      "that Filters > Repeat keeps repeating the regeneration.",
      "Sparse Regenerate authors", "Sparse Regenerate authors", "2024",
      N_("Reset Sparse Regenerate Snapshot"), "RGB*, GRAY*, INDEXED*", GIMP_TEMPORARY,
      G_N_ELEMENTS(reset_menu_args), 0, reset_menu_args, NULL, run_temp);
  gimp_plugin_menu_register(SIGE_RESET_MENU_PROC, SIGE_MENU_PATH);
  gimp_install_temp_proc(
      SIGE_LIVE_PROC,
      N_("Keep the output layer in step with the label layer while you paint on it"),
      "Watches the layer; a moment after each stroke it runs a sparse pass into the output "
      "layer (one undo step per update). A small window's Stop button (or closing it) ends "
      "it. Uses the settings of the last run; the procedure returns when stopped.",
      "Sparse Regenerate authors", "Sparse Regenerate authors", "2024",
      N_("Sparse Regenerate _Live"), "RGB*, GRAY*, INDEXED*", GIMP_TEMPORARY,
      G_N_ELEMENTS(reset_args), 0, reset_args, NULL, run_temp);
  gimp_plugin_menu_register(SIGE_LIVE_PROC, SIGE_MENU_PATH);
}

static void query(void) {
  /* GIMP translates the menu labels with this domain, from the catalogues
   * next to the binary when they are installed there. */
  gimp_plugin_domain_register(GETTEXT_PACKAGE, sige_i18n_init());
  /* The dialog's Help button and F1 on the menu entries ask for the
   * procedure's name in this domain (installed help/ beside the binary). */
  g_autofree gchar *help = sige_help_uri();
  if (help) gimp_plugin_help_register(SIGE_HELP_DOMAIN, help);
  /* Zero parameters: GIMP starts an extension like this by itself. */
  gimp_install_procedure(SIGE_EXTENSION_PROC, "Sparse Regenerate (resident part)",
                         "Keeps the editing sessions of Sparse Regenerate in memory.",
                         "Sparse Regenerate authors", "Sparse Regenerate authors", "2024", NULL,
                         NULL, GIMP_EXTENSION, 0, 0, NULL, NULL);
}

/* Puts Cityscapes.gpl into the user's palettes so that label maps can be
 * painted with the exact class colours. */
static void install_palette(void) {
  g_autofree gchar *dir = gimp_personal_rc_file("palettes");
  if (sige_install_palette(dir)) gimp_palettes_refresh();
}

static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals,
                GimpParam **return_vals) {
  static GimpParam values[1];
  (void)nparams, (void)param;
  *nreturn_vals = 1;
  *return_vals = values;
  values[0].type = GIMP_PDB_STATUS;
  values[0].data.d_status = GIMP_PDB_SUCCESS;
  if (strcmp(name, SIGE_EXTENSION_PROC) != 0) {
    values[0].data.d_status = GIMP_PDB_CALLING_ERROR;
    return;
  }
  sige_i18n_init();
  install_procedures();
  gimp_extension_ack();
  install_palette();
  for (;;) gimp_extension_process(0);
}

/* ---- the temporary procedures ------------------------------------------- */

static void set_error(GimpParam *values, gint *nreturn_vals, GimpPDBStatusType status,
                      const gchar *message) {
  static gchar *last_message;
  g_free(last_message);
  last_message = g_strdup(message);
  values[0].data.d_status = status;
  values[1].type = GIMP_PDB_STRING;
  values[1].data.d_string = last_message;
  *nreturn_vals = 2;
}

/* Between the start and the end of Sparse Regenerate Live. */
static gboolean live_running;

static void run_temp_body(const gchar *name, gint nparams, const GimpParam *param,
                          gint *nreturn_vals, GimpParam **return_vals);

static void run_temp(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals,
                     GimpParam **return_vals) {
  /* Every PDB call a run makes lets GIMP deliver the next call of a
   * temporary procedure (libgimp serves them while it waits for a reply),
   * so a second Ctrl+F during a run would start a run inside the run, on
   * the same session. */
  static gboolean busy;
  static GimpParam values[2];
  if (busy) {
    *return_vals = values;
    values[0].type = GIMP_PDB_STATUS;
    set_error(values, nreturn_vals, GIMP_PDB_EXECUTION_ERROR,
              live_running ? _("Sparse Regenerate Live is running; stop it first.")
                           : _("Sparse Regenerate is still running; wait for it to finish or "
                               "cancel it."));
    return;
  }
  busy = TRUE;
  run_temp_body(name, nparams, param, nreturn_vals, return_vals);
  sige_gimp_host_end();
  busy = FALSE;
}

static void run_temp_body(const gchar *name, gint nparams, const GimpParam *param,
                          gint *nreturn_vals, GimpParam **return_vals) {
  static GimpParam values[2];
  *nreturn_vals = 1;
  *return_vals = values;
  values[0].type = GIMP_PDB_STATUS;
  values[0].data.d_status = GIMP_PDB_SUCCESS;
  if (nparams < 3) {
    set_error(values, nreturn_vals, GIMP_PDB_CALLING_ERROR, _("Too few arguments."));
    return;
  }
  /* GEGL costs up to a second or two to start, so not before the ack. */
  static gboolean gegl_ready;
  if (!gegl_ready) {
    gegl_init(NULL, NULL);
    gegl_ready = TRUE;
  }
  const GimpRunMode mode = param[0].data.d_int32;
  const gboolean menu_reset = strcmp(name, SIGE_RESET_MENU_PROC) == 0;
  if (menu_reset && nparams < (gint)G_N_ELEMENTS(reset_menu_args)) {
    set_error(values, nreturn_vals, GIMP_PDB_CALLING_ERROR, _("Too few arguments."));
    return;
  }
  const gint32 image = param[menu_reset ? 2 : 1].data.d_image;
  const gint32 drawable = param[menu_reset ? 3 : 2].data.d_drawable;
  sige_sessions_prune();

  if (menu_reset || strcmp(name, SIGE_RESET_PROC) == 0) {
    sige_gimp_host_begin(); /* the message stays out of the status bar */
    GError *error = NULL;
    const gint32 source = sige_gimp210_source_layer(image, drawable, &error);
    if (source < 0) {
      if (mode == GIMP_RUN_INTERACTIVE) gimp_message(error->message);
      set_error(values, nreturn_vals, GIMP_PDB_EXECUTION_ERROR, error->message);
      g_error_free(error);
      return;
    }
    gboolean had = sige_regen_reset(image, source);
    /* one line per Reset, in any run mode, as for each pass: the GUI test
     * tells from it what Filters > Repeat ran */
    g_printerr("sparse-regenerate: reset of layer %d (%s)\n", source,
               had ? "snapshot dropped" : "no snapshot");
    if (mode == GIMP_RUN_INTERACTIVE)
      gimp_message(had ? _("Sparse Regenerate: the snapshot was reset; the next run is a full pass.")
                       : _("Sparse Regenerate: this layer has no snapshot yet."));
    return;
  }

  SigeSettings s;
  sige_settings_load(&s);
  s.instance_layer = -1;
  if (strcmp(name, SIGE_LIVE_PROC) == 0) {
    if (!gimp_item_is_layer(drawable) || gimp_item_is_group(drawable)) {
      set_error(values, nreturn_vals, GIMP_PDB_EXECUTION_ERROR,
                _("Sparse Regenerate Live works on a layer; select the label layer and start it "
                  "again."));
      if (mode == GIMP_RUN_INTERACTIVE) gimp_message(values[1].data.d_string);
      return;
    }
    live_running = TRUE;
    sige_live_run(image, drawable, &s);
    live_running = FALSE;
    return;
  }
  if (mode == GIMP_RUN_INTERACTIVE) {
    /* the dialog shows (and resets) the session of the layer the run uses */
    const gint32 source = sige_gimp210_source_layer(image, drawable, NULL);
    if (!sige_dialog_run(image, source > 0 ? source : drawable, &s)) {
      values[0].data.d_status = GIMP_PDB_CANCEL;
      return;
    }
  } else if (mode == GIMP_RUN_NONINTERACTIVE && strcmp(name, SIGE_RUN_SD_PROC) == 0) {
    GError *error = NULL;
    if (nparams != G_N_ELEMENTS(run_sd_args) ||
        !sige_settings_set_sd(&s, param[3].data.d_string, param[4].data.d_int32,
                              param[5].data.d_float, param[6].data.d_int32, param[7].data.d_string,
                              param[8].data.d_string, param[9].data.d_float,
                              param[10].data.d_string, &error)) {
      set_error(values, nreturn_vals, GIMP_PDB_CALLING_ERROR,
                error ? error->message : _("plug-in-sparse-regenerate-sd takes 11 arguments."));
      g_clear_error(&error);
      return;
    }
  } else if (mode == GIMP_RUN_NONINTERACTIVE) {
    if (nparams != G_N_ELEMENTS(run_args)) {
      set_error(values, nreturn_vals, GIMP_PDB_CALLING_ERROR,
                _("plug-in-sparse-regenerate takes 7 arguments."));
      return;
    }
    const gchar *model = param[3].data.d_string;
    if (model && *model) g_strlcpy(s.model, model, sizeof s.model);
    s.steps = param[4].data.d_int32;
    s.strength = param[5].data.d_float;
    if (param[6].data.d_int32 != -1) s.seed = param[6].data.d_int32;
  } /* GIMP_RUN_WITH_LAST_VALS: the remembered settings as they are */

  sige_gimp_host_begin();
  GError *error = NULL;
  gint32 out = sige_gimp210_regenerate(image, drawable, &s, mode == GIMP_RUN_INTERACTIVE, &error);
  if (out < 0) {
    gboolean cancelled = g_error_matches(error, SIGE_ERROR, SIGE_ERROR_CANCELLED);
    g_printerr("sparse-regenerate: %s: %s\n", cancelled ? "cancelled" : "error", error->message);
    if (mode == GIMP_RUN_NONINTERACTIVE) {
      /* for the script, which reports it as it sees fit */
      set_error(values, nreturn_vals, cancelled ? GIMP_PDB_CANCEL : GIMP_PDB_EXECUTION_ERROR,
                error->message);
    } else {
      /* Said once, in the plug-in's words: GIMP adds an "Execution error"
       * message of its own for an error status that carries a message. */
      if (!cancelled) gimp_message(error->message);
      values[0].data.d_status = cancelled ? GIMP_PDB_CANCEL : GIMP_PDB_EXECUTION_ERROR;
    }
    g_error_free(error);
    return;
  }
  sige_settings_add_recent(&s, s.model);
  s.instance_layer = -1;
  sige_settings_save(&s);
  if (mode == GIMP_RUN_INTERACTIVE) gimp_displays_flush();
  values[1].type = GIMP_PDB_LAYER;
  values[1].data.d_layer = out;
  *nreturn_vals = 2;
}
