/* The Sparse Regenerate dialog for GIMP 3: a GimpProcedureDialog on the
 * procedure's config, so that GIMP remembers the values.  The model is a
 * string argument (scripts pass a path), shown as a file chooser with the
 * recent models; the instance layer is chosen per run, as in GIMP 2.10. */
#include <libgimp/gimpui.h>
#include <math.h>
#include <string.h>

#include "sige-dialog.h"
#include "sige-gimp3.h"
#include "sige-folder-chooser.h"
#include "sige-layer-io.h"
#include "sige-model-cache.h"
#include "sige-regen.h"

typedef struct {
  GimpProcedureConfig *config;
  SigeSettings s; /* for the recent models */
  GimpImage *image;
  GimpDrawable *drawable;
  GtkWidget *chooser, *kind, *use_instance, *instance, *generation;
  /* "sd:FOLDER" while a diffusers folder is the model (the file chooser
   * then shows none), else NULL */
  gchar *folder;
  GtkWidget *sd, *sampler; /* Stable Diffusion's frame, the DDPM sampler: one shown */
  sige_generation_values shown; /* what steps, strength and seed show */
  gboolean showing;             /* shown is in the config */
  sige_input_kind layer;        /* label map or picture: which default model */
} Dialog;

/* From GIMP's thumbnail, so that opening the dialog reads no full layer: a
 * scaled label map blends colours only along boundaries, far below the
 * fraction that makes a picture (sige_pixels_guess_input_kind). */
static sige_input_kind guess_layer_kind(GimpDrawable *drawable) {
  gint w = 0, h = 0, bpp = 0;
  g_autoptr(GBytes) bytes = gimp_drawable_get_thumbnail_data(drawable, 256, 256, &w, &h, &bpp);
  gsize size = 0;
  const guint8 *data = bytes ? g_bytes_get_data(bytes, &size) : NULL;
  if (!data || w <= 0 || h <= 0 || bpp < 1 || bpp > 4 || size < (gsize)w * h * bpp)
    return SIGE_INPUT_LABELS;
  const sige_pixels px = {data, w, h, bpp, 8};
  return sige_pixels_guess_input_kind(&px);
}

/* The config holds the scripts' stand-ins (0 = the default, -1 = the
 * session's seed); while the dialog is up it holds the values a run uses,
 * and a value the user leaves alone goes back to its stand-in.  A spin the
 * user has not changed follows the chosen model. */
static void update_generation(Dialog *d, const gchar *model_path) {
  sige_generation_values v;
  sige_regen_generation_values(model_path, &d->s, gimp_image_get_id(d->image),
                               gimp_item_get_id(GIMP_ITEM(d->drawable)), &v);
  gint steps = 0;
  gdouble strength = 0;
  g_object_get(d->config, "steps", &steps, "strength", &strength, NULL);
  if (!d->showing || steps == d->shown.steps) g_object_set(d->config, "steps", v.steps, NULL);
  if (!d->showing || fabs(strength - d->shown.strength) < 0.005)
    g_object_set(d->config, "strength", v.strength, NULL);
  if (!d->showing) g_object_set(d->config, "seed", v.seed, NULL);
  d->shown = v;
  d->showing = TRUE;
}

static void store_generation(Dialog *d, gboolean ok) {
  SigeSettings s = d->s; /* the stand-ins as loaded */
  if (ok) {
    sige_generation_values chosen;
    g_object_get(d->config, "steps", &chosen.steps, "strength", &chosen.strength, "seed",
                 &chosen.seed, NULL);
    sige_regen_generation_store(&d->shown, &chosen, &s);
  }
  g_object_set(d->config, "steps", s.steps, "strength", s.strength, "seed", s.seed, NULL);
}

static void set_mode(Dialog *d, sige_input_kind mode) {
  gtk_widget_set_sensitive(d->generation, mode != SIGE_INPUT_LABELS);
  gtk_widget_set_sensitive(d->use_instance, mode != SIGE_INPUT_IMAGE);
  gtk_widget_set_sensitive(d->instance, mode != SIGE_INPUT_IMAGE);
}

/* The chosen file into the config ("" for the shipped default, so that a
 * reinstall elsewhere still finds it) and its description into the label. */
static void update_model(Dialog *d) {
  g_autofree gchar *path = d->folder ? g_strdup(d->folder)
                                     : gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(d->chooser));
  g_autofree gchar *deflt = sige_default_model_path(d->layer);
  const gboolean is_default = !path || (deflt && strcmp(path, deflt) == 0);
  g_object_set(d->config, "model", is_default ? "" : path, NULL);
  const gchar *resolved = path ? path : deflt;
  g_autofree gchar *text = NULL;
  sige_input_kind mode = SIGE_INPUT_UNSUPPORTED;
  if (sige_regen_describe_model(resolved, &text, &mode)) set_mode(d, mode);
  if (d->folder) {
    /* the file chooser shows none: say which folder it is */
    g_autofree gchar *shown = g_filename_display_name(d->folder + 3);
    g_autofree gchar *both = g_strdup_printf(_("Folder %s: %s"), shown, text);
    gtk_label_set_text(GTK_LABEL(d->kind), both);
  } else {
    gtk_label_set_text(GTK_LABEL(d->kind), text);
  }
  if (d->sd) {
    const gboolean sd = sige_regen_model_is_sd(resolved);
    gtk_widget_set_visible(d->sd, sd);
    gtk_widget_set_visible(d->sampler, !sd);
  }
  update_generation(d, resolved);
}

/* Shows `model` (a file, "sd:FILE" or "sd:FOLDER") as the choice; the
 * file chooser cannot show a folder as its choice. */
static void show_model(Dialog *d, const gchar *model) {
  g_clear_pointer(&d->folder, g_free);
  if (model && g_str_has_prefix(model, "sd:") && g_file_test(model + 3, G_FILE_TEST_IS_DIR)) {
    d->folder = g_strdup(model);
    gtk_file_chooser_unselect_all(GTK_FILE_CHOOSER(d->chooser));
  } else if (model) {
    const gchar *file = g_str_has_prefix(model, "sd:") ? model + 3 : model;
    gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(d->chooser), file);
  }
}

static void on_model_set(GtkFileChooserButton *b, Dialog *d) {
  (void)b;
  g_clear_pointer(&d->folder, g_free);
  update_model(d);
}

static void on_recent(GtkComboBox *c, Dialog *d) {
  const gint i = gtk_combo_box_get_active(c);
  if (i < 0 || i >= SIGE_N_RECENT || !d->s.recent[i][0]) return;
  show_model(d, d->s.recent[i]);
  update_model(d);
}

static void on_choose_folder(GtkButton *b, Dialog *d) {
  g_autofree gchar *file = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(d->chooser));
  g_autofree gchar *model = sige_choose_sd_folder(GTK_WIDGET(b), d->folder, file);
  if (model) {
    show_model(d, model);
    update_model(d);
  }
}

static void on_reset(GtkButton *b, Dialog *d) {
  (void)b;
  const gboolean had = sige_regen_reset(gimp_image_get_id(d->image),
                                        gimp_item_get_id(GIMP_ITEM(d->drawable)));
  gimp_message(had ? _("Sparse Regenerate: the snapshot was reset; the next run is a full pass.")
                   : _("Sparse Regenerate: this layer has no snapshot yet."));
}

static gboolean same_image(GimpImage *image, GimpItem *item, gpointer data) {
  return image == data && gimp_item_is_layer(item);
}

static GtkWidget *model_frame(Dialog *d) {
  GtkWidget *frame = gimp_frame_new(_("Model"));
  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 6);
  gtk_container_add(GTK_CONTAINER(frame), grid);

  d->chooser = gtk_file_chooser_button_new(_("Choose a model"), GTK_FILE_CHOOSER_ACTION_OPEN);
  GtkFileFilter *f = gtk_file_filter_new();
  gtk_file_filter_set_name(f, _("Weights (safetensors; Stable Diffusion .ckpt)"));
  gtk_file_filter_add_pattern(f, "*.safetensors");
  gtk_file_filter_add_pattern(f, "*.ckpt");
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(d->chooser), f);
  g_autofree gchar *current = sige_resolve_model(&d->s, d->layer);
  show_model(d, current);
  g_signal_connect(d->chooser, "file-set", G_CALLBACK(on_model_set), d);
  gtk_widget_set_hexpand(d->chooser, TRUE);
  GtkWidget *file_row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_box_pack_start(GTK_BOX(file_row), d->chooser, TRUE, TRUE, 0);
  /* no mnemonic: most of its letters are the other fields' already */
  GtkWidget *folder = gtk_button_new_with_label(_("Diffusers folder\u2026"));
  gimp_help_set_help_data(folder,
                          _("Choose a folder holding a Stable Diffusion model in the diffusers "
                            "layout (model_index.json, unet/, vae/, text_encoder/)"),
                          NULL);
  g_signal_connect(folder, "clicked", G_CALLBACK(on_choose_folder), d);
  gtk_box_pack_start(GTK_BOX(file_row), folder, FALSE, FALSE, 0);
  GtkWidget *file_label =
      gimp_grid_attach_aligned(GTK_GRID(grid), 0, 0, _("_File:"), 0.0, 0.5, file_row, 1);
  gtk_label_set_mnemonic_widget(GTK_LABEL(file_label), d->chooser);

  GtkWidget *recent = gtk_combo_box_text_new();
  for (int i = 0; i < SIGE_N_RECENT && d->s.recent[i][0]; i++) {
    g_autofree gchar *base = sige_settings_recent_label(d->s.recent[i]);
    gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(recent), base);
  }
  g_signal_connect(recent, "changed", G_CALLBACK(on_recent), d);
  gimp_grid_attach_aligned(GTK_GRID(grid), 0, 1, _("Recent:"), 0.0, 0.5, recent, 1);

  d->kind = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(d->kind), 0.0);
  gtk_label_set_line_wrap(GTK_LABEL(d->kind), TRUE);
  gimp_grid_attach_aligned(GTK_GRID(grid), 0, 2, _("Kind:"), 0.0, 0.5, d->kind, 1);

  d->use_instance = gtk_check_button_new_with_mnemonic(_("_Instance layer:"));
  d->instance = gimp_layer_combo_box_new(same_image, d->image, NULL);
  gtk_grid_attach(GTK_GRID(grid), d->use_instance, 0, 3, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), d->instance, 1, 3, 1, 1);
  gimp_help_set_help_data(d->use_instance,
                          _("GauGAN: a layer of instance ids (gray value or RGB colour per "
                            "object); without it the class boundaries are used"),
                          NULL);
  gtk_widget_show_all(frame);
  return frame;
}

gboolean sige_gimp3_dialog_run(GimpProcedure *procedure, GimpProcedureConfig *config,
                               GimpImage *image, GimpDrawable *drawable,
                               GimpLayer **instance) {
  static gboolean ui_ready;
  if (!ui_ready) {
    gimp_ui_init("sparse-regenerate");
    ui_ready = TRUE;
  }
  Dialog d = {.config = config, .image = image, .drawable = drawable,
              .layer = guess_layer_kind(drawable)};
  sige_gimp3_settings_from_config(config, &d.s);
  /* before the dialog's spins are made from the config */
  g_autofree gchar *current = sige_resolve_model(&d.s, d.layer);
  update_generation(&d, current);
  GtkWidget *dlg = gimp_procedure_dialog_new(procedure, config, _("Sparse Regenerate"));
  GimpProcedureDialog *pd = GIMP_PROCEDURE_DIALOG(dlg);

  gimp_procedure_dialog_get_label(pd, "generation-title", _("Generation"), FALSE, FALSE);
  d.generation = gimp_procedure_dialog_fill_box(pd, "generation-box", "steps", "strength", "seed",
                                                "sampler", NULL);
  gimp_procedure_dialog_fill_frame(pd, "generation-frame", "generation-title", FALSE,
                                   "generation-box");
  gimp_procedure_dialog_get_label(pd, "engine-title", _("Engine"), FALSE, FALSE);
  gimp_procedure_dialog_fill_box(pd, "engine-box", "threshold", "precision", "device", "threads",
                                 "budget-mib", NULL);
  gimp_procedure_dialog_fill_frame(pd, "engine-frame", "engine-title", FALSE, "engine-box");
  /* Stable Diffusion: shown for an SD checkpoint only (Steps, Strength and
   * Seed above are SD's too) */
  gimp_procedure_dialog_get_label(pd, "sd-title", _("Stable Diffusion"), FALSE, FALSE);
  gimp_procedure_dialog_fill_box(pd, "sd-box", "prompt", "negative-prompt", "guidance",
                                 "sd-sampler-choice", NULL);
  d.sd = gimp_procedure_dialog_fill_frame(pd, "sd-frame", "sd-title", FALSE, "sd-box");
  d.sampler = gimp_procedure_dialog_get_widget(pd, "sampler", G_TYPE_NONE);
  gimp_procedure_dialog_fill(pd, "generation-frame", "sd-frame", "engine-frame", NULL);

  /* The custom parts around what the config's properties give. */
  GtkWidget *area = gtk_dialog_get_content_area(GTK_DIALOG(dlg));
  GtkWidget *model = model_frame(&d);
  gtk_box_pack_start(GTK_BOX(area), model, FALSE, FALSE, 0);
  gtk_box_reorder_child(GTK_BOX(area), model, 0);
  /* Mnemonics: none of the labels' letters is used twice, GIMP's own
   * buttons (Save Settings, Cancel, OK, Help) included. */
  GtkWidget *reset = gtk_button_new_with_mnemonic(_("Reset sn_apshot"));
  gimp_help_set_help_data(reset, _("Forget this layer's snapshot; the next run is a full pass."),
                          NULL);
  g_signal_connect(reset, "clicked", G_CALLBACK(on_reset), &d);
  gtk_box_pack_start(GTK_BOX(area), reset, FALSE, FALSE, 0);
  gtk_widget_show(reset);
  update_model(&d);

  const gboolean ok = gimp_procedure_dialog_run(pd);
  store_generation(&d, ok);
  *instance = NULL;
  gint id = -1;
  if (ok && gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(d.use_instance)) &&
      gimp_int_combo_box_get_active(GIMP_INT_COMBO_BOX(d.instance), &id))
    *instance = gimp_layer_get_by_id(id);
  gtk_widget_destroy(dlg);
  g_free(d.folder);
  return ok;
}
