#include "sige-dialog.h"

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <math.h>
#include <string.h>

#include "sige-folder-chooser.h"
#include "sige-layer-io.h"
#include "sige-model-cache.h"
#include "sige-regen.h"

typedef struct {
  SigeSettings *s;
  gint32 image, drawable;
  GtkWidget *chooser, *recent, *kind, *use_instance, *instance;
  /* "sd:FOLDER" while a diffusers folder is the model (the file chooser
   * then shows none), else NULL */
  gchar *folder;
  GtkWidget *generation; /* the DDPM settings: insensitive for a GauGAN model */
  GtkWidget *steps, *strength, *seed;
  GtkWidget *sampler_row[2];    /* the DDPM sampler's label and combo: hidden for SD */
  GtkWidget *sd;                /* Stable Diffusion: shown for an SD checkpoint only */
  sige_generation_values shown; /* what they show for the settings as loaded */
  sige_input_kind layer;        /* label map or picture: which default model */
} Dialog;

/* From GIMP's thumbnail, so that opening the dialog reads no full layer: a
 * scaled label map blends colours only along boundaries, far below the
 * fraction that makes a picture (sige_pixels_guess_input_kind). */
static sige_input_kind guess_layer_kind(gint32 drawable) {
  gint w = 256, h = 256, bpp = 0;
  g_autofree guchar *data = gimp_drawable_get_thumbnail_data(drawable, &w, &h, &bpp);
  if (!data || w <= 0 || h <= 0 || bpp < 1 || bpp > 4) return SIGE_INPUT_LABELS;
  const sige_pixels px = {data, w, h, bpp, 8};
  return sige_pixels_guess_input_kind(&px);
}

/* The values a run would use with the chosen model; a spin the user has
 * not changed follows the model. */
static void update_generation(Dialog *d, const gchar *model_path) {
  if (!d->steps) return;
  sige_generation_values v;
  sige_regen_generation_values(model_path, d->s, d->image, d->drawable, &v);
  GtkSpinButton *steps = GTK_SPIN_BUTTON(d->steps), *strength = GTK_SPIN_BUTTON(d->strength);
  if (gtk_spin_button_get_value_as_int(steps) == d->shown.steps)
    gtk_spin_button_set_value(steps, v.steps);
  if (fabs(gtk_spin_button_get_value(strength) - d->shown.strength) < 0.005)
    gtk_spin_button_set_value(strength, v.strength);
  d->shown = v;
}

static void set_mode(Dialog *d, sige_input_kind mode) {
  if (d->generation) gtk_widget_set_sensitive(d->generation, mode != SIGE_INPUT_LABELS);
  gtk_widget_set_sensitive(d->use_instance, mode != SIGE_INPUT_IMAGE);
  gtk_widget_set_sensitive(d->instance, mode != SIGE_INPUT_IMAGE);
}

/* The model the dialog shows: the folder, else the chosen file (NULL: none). */
static gchar *chosen_model(Dialog *d) {
  if (d->folder) return g_strdup(d->folder);
  return gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(d->chooser));
}

static void update_kind(Dialog *d) {
  g_autofree gchar *path = chosen_model(d);
  g_autofree gchar *resolved = path ? g_strdup(path) : sige_default_model_path(d->layer);
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
    for (int i = 0; i < 2; i++) gtk_widget_set_visible(d->sampler_row[i], !sd);
  }
  update_generation(d, resolved);
}

/* A model given as "sd:PATH" names a diffusers folder when PATH is one;
 * the file chooser cannot show a folder as its choice. */
static gboolean is_sd_folder(const gchar *model) {
  return model && g_str_has_prefix(model, "sd:") && g_file_test(model + 3, G_FILE_TEST_IS_DIR);
}

/* Shows `model` (a file, "sd:FILE" or "sd:FOLDER") as the choice. */
static void show_model(Dialog *d, const gchar *model) {
  g_clear_pointer(&d->folder, g_free);
  if (is_sd_folder(model)) {
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
  update_kind(d);
}

static void on_recent(GtkComboBox *c, Dialog *d) {
  const gint i = gtk_combo_box_get_active(c);
  if (i < 0 || i >= SIGE_N_RECENT || !d->s->recent[i][0]) return;
  show_model(d, d->s->recent[i]);
  update_kind(d);
}

static void on_choose_folder(GtkButton *b, Dialog *d) {
  g_autofree gchar *file = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(d->chooser));
  g_autofree gchar *model = sige_choose_sd_folder(GTK_WIDGET(b), d->folder, file);
  if (model) {
    show_model(d, model);
    update_kind(d);
  }
}

static void on_reset(GtkButton *b, Dialog *d) {
  (void)b;
  gboolean had = sige_regen_reset(d->image, d->drawable);
  gimp_message(had ? _("Sparse Regenerate: the snapshot was reset; the next run is a full pass.")
                   : _("Sparse Regenerate: this layer has no snapshot yet."));
}

static gboolean same_image(gint32 image, gint32 item, gpointer data) {
  return image == GPOINTER_TO_INT(data) && gimp_item_is_layer(item);
}

static GtkWidget *spin(GtkWidget *grid, int row, const gchar *label, gdouble value, gdouble lo,
                       gdouble hi, gdouble step, guint digits, const gchar *tip) {
  GtkAdjustment *adj = GTK_ADJUSTMENT(gtk_adjustment_new(value, lo, hi, step, step * 10, 0));
  GtkWidget *sb = gtk_spin_button_new(adj, step, digits);
  gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(sb), TRUE);
  gimp_table_attach_aligned(GTK_TABLE(grid), 0, row, label, 0.0, 0.5, sb, 1, FALSE);
  gimp_help_set_help_data(sb, tip, NULL);
  return sb;
}

gboolean sige_dialog_run(gint32 image, gint32 drawable, SigeSettings *s) {
  static gboolean ui_ready;
  if (!ui_ready) {
    gimp_ui_init("sparse-regenerate", FALSE);
    ui_ready = TRUE;
  }
  Dialog d = {.s = s, .image = image, .drawable = drawable, .layer = guess_layer_kind(drawable)};
  GtkWidget *dlg = gimp_dialog_new(_("Sparse Regenerate"), "sparse-regenerate", NULL, 0,
                                   gimp_standard_help_func, SIGE_RUN_PROC, _("_Cancel"),
                                   GTK_RESPONSE_CANCEL, _("_OK"), GTK_RESPONSE_OK, NULL);
  gtk_dialog_set_alternative_button_order(GTK_DIALOG(dlg), GTK_RESPONSE_OK, GTK_RESPONSE_CANCEL, -1);
  gimp_window_set_transient(GTK_WINDOW(dlg));

  GtkWidget *vbox = gtk_vbox_new(FALSE, 12);
  gtk_container_set_border_width(GTK_CONTAINER(vbox), 12);
  gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(dlg))), vbox, TRUE, TRUE, 0);

  /* Model */
  GtkWidget *frame = gimp_frame_new(_("Model"));
  gtk_box_pack_start(GTK_BOX(vbox), frame, FALSE, FALSE, 0);
  GtkWidget *tab = gtk_table_new(4, 2, FALSE);
  gtk_table_set_col_spacings(GTK_TABLE(tab), 6);
  gtk_table_set_row_spacings(GTK_TABLE(tab), 6);
  gtk_container_add(GTK_CONTAINER(frame), tab);
  d.chooser = gtk_file_chooser_button_new(_("Choose a model"), GTK_FILE_CHOOSER_ACTION_OPEN);
  GtkFileFilter *f = gtk_file_filter_new();
  gtk_file_filter_set_name(f, _("Weights (safetensors; Stable Diffusion .ckpt)"));
  gtk_file_filter_add_pattern(f, "*.safetensors");
  gtk_file_filter_add_pattern(f, "*.ckpt");
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(d.chooser), f);
  g_autofree gchar *current = sige_resolve_model(s, d.layer);
  show_model(&d, current);
  g_signal_connect(d.chooser, "file-set", G_CALLBACK(on_model_set), &d);
  GtkWidget *file_row = gtk_hbox_new(FALSE, 6);
  gtk_box_pack_start(GTK_BOX(file_row), d.chooser, TRUE, TRUE, 0);
  GtkWidget *folder = gtk_button_new_with_mnemonic(_("Diff_users folder\u2026"));
  gimp_help_set_help_data(folder,
                          _("Choose a folder holding a Stable Diffusion model in the diffusers "
                            "layout (model_index.json, unet/, vae/, text_encoder/)"),
                          NULL);
  g_signal_connect(folder, "clicked", G_CALLBACK(on_choose_folder), &d);
  gtk_box_pack_start(GTK_BOX(file_row), folder, FALSE, FALSE, 0);
  GtkWidget *file_label =
      gimp_table_attach_aligned(GTK_TABLE(tab), 0, 0, _("_File:"), 0.0, 0.5, file_row, 1, FALSE);
  gtk_label_set_mnemonic_widget(GTK_LABEL(file_label), d.chooser);
  d.recent = gtk_combo_box_text_new();
  for (int i = 0; i < SIGE_N_RECENT && s->recent[i][0]; i++) {
    g_autofree gchar *base = sige_settings_recent_label(s->recent[i]);
    gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(d.recent), base);
  }
  g_signal_connect(d.recent, "changed", G_CALLBACK(on_recent), &d);
  gimp_table_attach_aligned(GTK_TABLE(tab), 0, 1, _("_Recent:"), 0.0, 0.5, d.recent, 1, FALSE);
  d.kind = gtk_label_new("");
  gtk_misc_set_alignment(GTK_MISC(d.kind), 0.0, 0.5);
  gtk_label_set_line_wrap(GTK_LABEL(d.kind), TRUE);
  gimp_table_attach_aligned(GTK_TABLE(tab), 0, 2, _("Kind:"), 0.0, 0.5, d.kind, 1, FALSE);
  d.use_instance = gtk_check_button_new_with_mnemonic(_("_Instance layer:"));
  d.instance = gimp_layer_combo_box_new(same_image, GINT_TO_POINTER(image));
  gtk_table_attach(GTK_TABLE(tab), d.use_instance, 0, 1, 3, 4, GTK_FILL, GTK_FILL, 0, 0);
  gtk_table_attach(GTK_TABLE(tab), d.instance, 1, 2, 3, 4, GTK_FILL | GTK_EXPAND, GTK_FILL, 0, 0);
  gimp_help_set_help_data(d.use_instance,
                          _("GauGAN: a layer of instance ids (gray value or RGB colour per "
                            "object); without it the class boundaries are used"),
                          NULL);

  /* Generation (DDPM) */
  frame = gimp_frame_new(_("Generation"));
  gtk_box_pack_start(GTK_BOX(vbox), frame, FALSE, FALSE, 0);
  tab = gtk_table_new(4, 2, FALSE);
  d.generation = tab;
  gtk_table_set_col_spacings(GTK_TABLE(tab), 6);
  gtk_table_set_row_spacings(GTK_TABLE(tab), 6);
  gtk_container_add(GTK_CONTAINER(frame), tab);
  /* The values a run uses, not the scripts' stand-ins (0 = the default,
   * -1 = the session's seed); sige_regen_generation_store maps them back. */
  sige_regen_generation_values(current, s, image, drawable, &d.shown);
  GtkWidget *steps = spin(tab, 0, _("_Steps:"), d.shown.steps, 1, 1000, 1, 0,
                          _("DDPM denoising steps (the model's default is shown until you "
                            "change it). Fewer steps are faster. Changing it takes a new "
                            "snapshot."));
  GtkWidget *strength =
      spin(tab, 1, _("S_trength:"), d.shown.strength, 0.01, 1, 0.05, 2,
           _("DDPM edit strength (SDEdit): how much noise the edited region is regenerated "
             "from. Changing it takes a new snapshot."));
  GtkWidget *seed = spin(tab, 2, _("S_eed:"), d.shown.seed, 0, G_MAXINT, 1, 0,
                         _("DDPM noise seed: the one this layer's snapshot uses (0 for a new "
                           "layer). Changing it takes a new snapshot."));
  d.steps = steps;
  d.strength = strength;
  d.seed = seed;
  GtkWidget *sampler = gtk_combo_box_text_new();
  gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(sampler), _("DPM-Solver++"));
  gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(sampler), _("DDIM"));
  gtk_combo_box_set_active(GTK_COMBO_BOX(sampler), s->sampler);
  d.sampler_row[0] =
      gimp_table_attach_aligned(GTK_TABLE(tab), 0, 3, _("Sa_mpler:"), 0.0, 0.5, sampler, 1, FALSE);
  d.sampler_row[1] = sampler;
  gimp_help_set_help_data(sampler,
                          _("DDPM sampler. DPM-Solver++ (the interactive demo's) keeps a faint "
                            "noise trace everywhere after the first edit; DDIM leaves the "
                            "unedited pixels exactly as they were."),
                          NULL);

  /* Stable Diffusion: the prompt and what goes with it (Steps, Strength
   * and Seed above are SD's too) */
  frame = gimp_frame_new(_("Stable Diffusion"));
  d.sd = frame;
  gtk_box_pack_start(GTK_BOX(vbox), frame, FALSE, FALSE, 0);
  tab = gtk_table_new(4, 2, FALSE);
  gtk_table_set_col_spacings(GTK_TABLE(tab), 6);
  gtk_table_set_row_spacings(GTK_TABLE(tab), 6);
  gtk_container_add(GTK_CONTAINER(frame), tab);
  GtkWidget *prompt = gtk_entry_new();
  gtk_entry_set_max_length(GTK_ENTRY(prompt), SIGE_PROMPT_MAX - 1);
  gtk_entry_set_width_chars(GTK_ENTRY(prompt), 40);
  gtk_entry_set_text(GTK_ENTRY(prompt), s->prompt);
  gimp_table_attach_aligned(GTK_TABLE(tab), 0, 0, _("_Prompt:"), 0.0, 0.5, prompt, 1, FALSE);
  gimp_help_set_help_data(prompt,
                          _("What the picture shows, in English words (\"a stone church at "
                            "dusk, oil painting\"). Changing it takes a new snapshot."),
                          NULL);
  GtkWidget *negative = gtk_entry_new();
  gtk_entry_set_max_length(GTK_ENTRY(negative), SIGE_PROMPT_MAX - 1);
  gtk_entry_set_text(GTK_ENTRY(negative), s->negative_prompt);
  gimp_table_attach_aligned(GTK_TABLE(tab), 0, 1, _("_Negative prompt:"), 0.0, 0.5, negative, 1,
                            FALSE);
  gimp_help_set_help_data(negative,
                          _("What to steer away from (\"blurry, text\"); may be empty. "
                            "Changing it takes a new snapshot."),
                          NULL);
  GtkWidget *guidance = spin(tab, 2, _("_Guidance:"), s->guidance, 0, 100, 0.5, 1,
                             _("How closely the picture follows the prompt (classifier-free "
                               "guidance; 7.5 is usual, 1 ignores the negative prompt and "
                               "halves the work). Changing it takes a new snapshot."));
  GtkWidget *sd_sampler = gtk_combo_box_text_new();
  gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(sd_sampler), _("DPM-Solver++"));
  gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(sd_sampler), _("DDIM"));
  gtk_combo_box_set_active(GTK_COMBO_BOX(sd_sampler), s->sd_sampler);
  gimp_table_attach_aligned(GTK_TABLE(tab), 0, 3, _("Samp_ler:"), 0.0, 0.5, sd_sampler, 1,
                            FALSE);
  gimp_help_set_help_data(sd_sampler,
                          _("Stable Diffusion sampler: DDIM (the published one) or "
                            "DPM-Solver++ (2M: the same steps and cost, a higher-order "
                            "update). Changing it takes a new snapshot."),
                          NULL);

  /* Engine */
  frame = gimp_frame_new(_("Engine"));
  gtk_box_pack_start(GTK_BOX(vbox), frame, FALSE, FALSE, 0);
  tab = gtk_table_new(5, 2, FALSE);
  gtk_table_set_col_spacings(GTK_TABLE(tab), 6);
  gtk_table_set_row_spacings(GTK_TABLE(tab), 6);
  gtk_container_add(GTK_CONTAINER(frame), tab);
  GtkWidget *threshold =
      spin(tab, 0, _("Full-pass _threshold:"), s->threshold, 0.01, 1.01, 0.01, 2,
           _("Run a full pass instead of a sparse one when the edit reaches more than this "
             "fraction of the image (above 1: always sparse)."));
  GtkWidget *precision = gtk_combo_box_text_new();
  gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(precision), _("float32"));
  gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(precision), _("float16 (half the memory)"));
  gtk_combo_box_set_active(GTK_COMBO_BOX(precision), s->precision);
  gimp_table_attach_aligned(GTK_TABLE(tab), 0, 1, _("Cache _precision:"), 0.0, 0.5, precision, 1, FALSE);
  gimp_help_set_help_data(precision,
                          _("How the activation caches are stored. float16 halves their "
                            "memory for an output error of about one level of 8 bits at most. Changing it "
                            "takes a new snapshot."),
                          NULL);
  /* the combo's order; settings keep sige_device values */
  static const sige_device devices[] = {SIGE_DEVICE_AUTO, SIGE_DEVICE_CPU, SIGE_DEVICE_CUDA};
  GtkWidget *device = gtk_combo_box_text_new();
  gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(device), _("Automatic (CUDA if present)"));
  gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(device), _("CPU"));
  gtk_combo_box_text_append_text(GTK_COMBO_BOX_TEXT(device),
                                 sige_cuda_built() ? _("CUDA") : _("CUDA (not in this build)"));
  for (guint i = 0; i < G_N_ELEMENTS(devices); i++)
    if ((gint)devices[i] == s->device) gtk_combo_box_set_active(GTK_COMBO_BOX(device), (gint)i);
  gimp_table_attach_aligned(GTK_TABLE(tab), 0, 2, _("_Device:"), 0.0, 0.5, device, 1, FALSE);
  gimp_help_set_help_data(device,
                          _("Where the passes run. Automatic uses a CUDA GPU when one is "
                            "present and the CPU otherwise; the progress text says which. "
                            "Changing it takes a new snapshot."),
                          NULL);
  GtkWidget *threads = spin(tab, 3, _("T_hreads:"), s->threads, 0, 256, 1, 0,
                            _("0 = all cores"));
  GtkWidget *budget = spin(tab, 4, _("_Memory budget (MiB):"), s->budget_mib, 64, 1 << 20, 64, 0,
                           _("Snapshots of other layers are dropped, least recently used first, "
                             "when all of them together hold more than this."));

  GtkWidget *reset = gtk_button_new_with_mnemonic(_("_Reset snapshot"));
  gimp_help_set_help_data(reset, _("Forget this layer's snapshot; the next run is a full pass."), NULL);
  g_signal_connect(reset, "clicked", G_CALLBACK(on_reset), &d);
  gtk_box_pack_start(GTK_BOX(vbox), reset, FALSE, FALSE, 0);

  gtk_widget_show_all(dlg);
  update_kind(&d); /* after show_all: which of the frames stay hidden */
  const gboolean ok = gimp_dialog_run(GIMP_DIALOG(dlg)) == GTK_RESPONSE_OK;
  if (ok) {
    g_autofree gchar *path = chosen_model(&d);
    g_autofree gchar *deflt = sige_default_model_path(d.layer);
    /* The default stays "" so that a reinstall elsewhere still finds it. */
    if (path && (!deflt || strcmp(path, deflt) != 0))
      g_strlcpy(s->model, path, sizeof s->model);
    else
      s->model[0] = '\0';
    const sige_generation_values chosen = {
        gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(steps)),
        gtk_spin_button_get_value(GTK_SPIN_BUTTON(strength)),
        gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(seed)),
    };
    sige_regen_generation_store(&d.shown, &chosen, s);
    s->sampler = gtk_combo_box_get_active(GTK_COMBO_BOX(sampler));
    g_strlcpy(s->prompt, gtk_entry_get_text(GTK_ENTRY(prompt)), sizeof s->prompt);
    g_strlcpy(s->negative_prompt, gtk_entry_get_text(GTK_ENTRY(negative)),
              sizeof s->negative_prompt);
    s->guidance = gtk_spin_button_get_value(GTK_SPIN_BUTTON(guidance));
    s->sd_sampler = gtk_combo_box_get_active(GTK_COMBO_BOX(sd_sampler));
    s->threshold = gtk_spin_button_get_value(GTK_SPIN_BUTTON(threshold));
    s->precision = gtk_combo_box_get_active(GTK_COMBO_BOX(precision));
    const gint di = gtk_combo_box_get_active(GTK_COMBO_BOX(device));
    s->device = di >= 0 && di < (gint)G_N_ELEMENTS(devices) ? (gint)devices[di] : SIGE_DEVICE_AUTO;
    s->threads = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(threads));
    s->budget_mib = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(budget));
    gint inst = -1;
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(d.use_instance)) &&
        gimp_int_combo_box_get_active(GIMP_INT_COMBO_BOX(d.instance), &inst))
      s->instance_layer = inst;
  }
  gtk_widget_destroy(dlg);
  g_free(d.folder);
  return ok;
}
