/* One run of Sparse Regenerate on a layer in GIMP 3: the layers in and out;
 * the sessions and the engine are plugin/common/sige-regen.c's. */
#include <stdlib.h>
#include <string.h>

#include "sige-gimp3.h"
#include "sige-host.h"
#include "sige-regen.h"
#include "sige/error.h"

static gboolean item_alive(const sige_session_entry *e, gpointer data) {
  (void)data;
  GimpImage *image = gimp_image_get_by_id(e->image_id);
  GimpItem *layer = gimp_item_get_by_id(e->layer_id);
  return image && gimp_image_is_valid(image) && layer && gimp_item_is_valid(layer);
}

void sige_gimp3_sessions_prune(void) {
  sige_session_table_prune(sige_regen_sessions(), item_alive, NULL);
}

/* ---- parasites ---------------------------------------------------------- */
/* They tie a layer to its session and an output layer to its source.  They
 * are bookkeeping, not part of the image, so they are not undoable (flags
 * 0): an undoable one is an undo step of its own in a run that writes no
 * pixel, and GIMP 2.10 logs a Gimp-Core-CRITICAL (an unbalanced undo group
 * end) on every redo of an undoable item parasite. */

static void parasite_attach_text(GimpItem *item, const gchar *name, const gchar *text) {
  GimpParasite *p = gimp_parasite_new(name, 0, strlen(text) + 1, text);
  gimp_item_attach_parasite(item, p);
  gimp_parasite_free(p);
}

static gchar *parasite_text(GimpItem *item, const gchar *name) {
  GimpParasite *p = gimp_item_get_parasite(item, name);
  if (!p) return NULL;
  guint32 size = 0;
  const gchar *data = gimp_parasite_get_data(p, &size);
  gchar *text = g_strndup(data, size);
  gimp_parasite_free(p);
  return text;
}

static guint32 parasite_session_id(GimpItem *layer) {
  g_autofree gchar *text = parasite_text(layer, SIGE_PARASITE);
  return text ? sige_regen_tag_parse(text, strlen(text)) : 0;
}

/* ---- pixels ------------------------------------------------------------- */

static const Babl *pixel_format(int bpp) {
  return bpp == 1 ? babl_format("Y' u8") : babl_format("R'G'B' u8");
}

/* The layer's pixels without alpha (labels are colours; alpha means nothing). */
static guint8 *read_layer(GimpDrawable *drawable, sige_pixels *px) {
  px->bpp = gimp_drawable_is_gray(drawable) ? 1 : 3;
  px->width = gimp_drawable_get_width(drawable);
  px->height = gimp_drawable_get_height(drawable);
  guint8 *data = g_malloc((size_t)px->width * px->height * px->bpp);
  GeglBuffer *buf = gimp_drawable_get_buffer(drawable);
  gegl_buffer_get(buf, GEGL_RECTANGLE(0, 0, px->width, px->height), 1.0, pixel_format(px->bpp),
                  data, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buf);
  px->data = data;
  return data;
}

/* The selection over the layer (1 byte per pixel, 0 outside the image),
 * or NULL when nothing is selected: a Stable Diffusion run inpaints it. */
static guint8 *read_selection(GimpImage *image, GimpDrawable *drawable, sige_pixels *px) {
  if (gimp_selection_is_empty(image)) return NULL;
  gint offx = 0, offy = 0;
  gimp_drawable_get_offsets(drawable, &offx, &offy);
  px->width = gimp_drawable_get_width(drawable);
  px->height = gimp_drawable_get_height(drawable);
  px->bpp = 1;
  px->bits = 8;
  guint8 *data = g_malloc((size_t)px->width * px->height);
  GeglBuffer *buf = gimp_drawable_get_buffer(GIMP_DRAWABLE(gimp_image_get_selection(image)));
  gegl_buffer_get(buf, GEGL_RECTANGLE(offx, offy, px->width, px->height), 1.0,
                  babl_format("Y u8"), data, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buf);
  px->data = data;
  return data;
}

/* Writes r of the output into the layer.  Through the shadow buffer, whose
 * merge is what GIMP records for undo; merge applies the shadow inside the
 * selection, so the selection is set to r for the merge and restored after
 * (all inside the caller's undo group). */
static void write_rect(GimpImage *image, GimpDrawable *layer, const guint8 *px, int bpp,
                       sige_rect r, gboolean undoable) {
  if (!undoable) {
    GeglBuffer *buf = gimp_drawable_get_buffer(layer);
    gegl_buffer_set(buf, GEGL_RECTANGLE(r.x, r.y, r.width, r.height), 0, pixel_format(bpp), px,
                    GEGL_AUTO_ROWSTRIDE);
    g_object_unref(buf);
    gimp_drawable_update(layer, r.x, r.y, r.width, r.height);
    return;
  }
  GimpChannel *saved = gimp_selection_is_empty(image) ? NULL : gimp_selection_save(image);
  gint offx = 0, offy = 0;
  gimp_drawable_get_offsets(layer, &offx, &offy);
  gimp_context_push();
  gimp_context_set_antialias(FALSE);
  gimp_context_set_feather(FALSE);
  gimp_image_select_rectangle(image, GIMP_CHANNEL_OP_REPLACE, offx + r.x, offy + r.y, r.width,
                              r.height);
  gimp_context_pop();
  GeglBuffer *shadow = gimp_drawable_get_shadow_buffer(layer);
  gegl_buffer_set(shadow, GEGL_RECTANGLE(r.x, r.y, r.width, r.height), 0, pixel_format(bpp), px,
                  GEGL_AUTO_ROWSTRIDE);
  gegl_buffer_flush(shadow);
  g_object_unref(shadow);
  gimp_drawable_merge_shadow(layer, TRUE);
  gimp_drawable_update(layer, r.x, r.y, r.width, r.height);
  if (saved) {
    gimp_image_select_item(image, GIMP_CHANNEL_OP_REPLACE, GIMP_ITEM(saved));
    gimp_image_remove_channel(image, saved);
  } else {
    gimp_selection_none(image);
  }
}

/* ---- the output layer --------------------------------------------------- */

static GimpLayer *new_output_layer(GimpImage *image, GimpDrawable *source,
                                   const gchar *model_path, int bpp, double opacity) {
  g_autofree gchar *name = sige_regen_output_name(model_path);
  GimpLayer *layer = gimp_layer_new(image, name, gimp_drawable_get_width(source),
                                    gimp_drawable_get_height(source),
                                    bpp == 1 ? GIMP_GRAY_IMAGE : GIMP_RGB_IMAGE, opacity,
                                    GIMP_LAYER_MODE_NORMAL);
  gint offx = 0, offy = 0;
  gimp_drawable_get_offsets(source, &offx, &offy);
  gimp_layer_set_offsets(layer, offx, offy);
  GimpItem *parent = gimp_item_get_parent(GIMP_ITEM(source));
  gimp_image_insert_layer(image, layer, parent ? GIMP_LAYER(parent) : NULL,
                          gimp_image_get_item_position(image, GIMP_ITEM(source)));
  return layer;
}

static gboolean valid_output(GimpImage *image, GimpItem *layer, GimpDrawable *source) {
  return layer && gimp_item_is_valid(layer) && gimp_item_get_image(layer) == image &&
         gimp_item_is_layer(layer) && !gimp_item_is_group(layer) &&
         gimp_drawable_get_width(GIMP_DRAWABLE(layer)) == gimp_drawable_get_width(source) &&
         gimp_drawable_get_height(GIMP_DRAWABLE(layer)) == gimp_drawable_get_height(source) &&
         gimp_drawable_is_gray(GIMP_DRAWABLE(layer)) == gimp_drawable_is_gray(source);
}

/* The output layer made for `source` earlier (marked with a parasite), so
 * that a reset or an evicted session writes into it again rather than
 * stacking up new layers. */
static GimpItem *find_output_layer(GimpImage *image, GimpDrawable *source) {
  GimpItem *parent = gimp_item_get_parent(GIMP_ITEM(source));
  g_autofree GimpItem **layers =
      parent ? gimp_item_get_children(parent) : (GimpItem **)gimp_image_get_layers(image);
  const gint source_id = gimp_item_get_id(GIMP_ITEM(source));
  for (gint i = 0; layers && layers[i]; i++) {
    g_autofree gchar *text = parasite_text(layers[i], SIGE_OUTPUT_PARASITE);
    if (text && atoi(text) == source_id && valid_output(image, layers[i], source))
      return layers[i];
  }
  return NULL;
}

/* A run on an output layer means its source (as in GIMP 2.10: reading the
 * output as labels would cost a full pass of garbage and a third layer). */
GimpDrawable *sige_gimp3_source_layer(GimpImage *image, GimpDrawable *drawable, GError **error) {
  g_autofree gchar *text = parasite_text(GIMP_ITEM(drawable), SIGE_OUTPUT_PARASITE);
  if (!text) return drawable;
  const gint id = sige_regen_output_source_parse(text, strlen(text));
  GimpItem *source = id > 0 ? gimp_item_get_by_id(id) : NULL;
  if (source && source != GIMP_ITEM(drawable) && gimp_item_is_valid(source) &&
      gimp_item_get_image(source) == image && gimp_item_is_layer(source) &&
      !gimp_item_is_group(source))
    return GIMP_DRAWABLE(source);
  g_autofree gchar *name = gimp_item_get_name(GIMP_ITEM(drawable));
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              _("The layer \"%s\" is the output of Sparse Regenerate, and the layer it was made "
                "from is no longer in this image. Select the label layer (GauGAN) or the "
                "picture (DDPM) to regenerate from and run it again."),
              name);
  return NULL;
}

/* ---- the run ------------------------------------------------------------ */

GimpLayer *sige_gimp3_regenerate(GimpImage *image, GimpDrawable *drawable,
                                 const SigeSettings *s, GimpLayer *instance,
                                 gboolean interactive, GError **error) {
  const sige_regen_host host = sige_gimp_host(interactive);
  return sige_gimp3_regenerate_host(image, drawable, s, instance, &host, error);
}

GimpLayer *sige_gimp3_regenerate_host(GimpImage *image, GimpDrawable *drawable,
                                      const SigeSettings *s, GimpLayer *instance,
                                      const sige_regen_host *host, GError **error) {
  GimpItem *item = GIMP_ITEM(drawable);
  if (!gimp_item_is_layer(item) || gimp_item_is_group(item)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("Sparse Regenerate works on a layer; select the label layer (GauGAN) or the "
                  "image layer (DDPM) and run it again."));
    return NULL;
  }
  drawable = sige_gimp3_source_layer(image, drawable, error);
  if (!drawable) return NULL;
  item = GIMP_ITEM(drawable);
  sige_pixels src = {0}, inst = {0}, sel = {0};
  g_autofree guint8 *src_data = read_layer(drawable, &src);
  g_autofree guint8 *sel_data = read_selection(image, drawable, &sel);
  g_autofree gchar *layer_name = gimp_item_get_name(item);
  g_autofree guint8 *inst_data = NULL;
  if (instance && gimp_item_is_valid(GIMP_ITEM(instance)) &&
      gimp_item_get_image(GIMP_ITEM(instance)) == image)
    inst_data = read_layer(GIMP_DRAWABLE(instance), &inst);

  const gint source_id = gimp_item_get_id(item);
  const sige_regen_request rq = {
      .image_id = gimp_image_get_id(image),
      .layer_id = source_id,
      .tagged_session = parasite_session_id(item),
      .source = &src,
      .instance = inst_data ? &inst : NULL,
      .settings = s,
      .mask = sel_data ? &sel : NULL,
      .layer_name = layer_name,
  };
  sige_regen_result *r = sige_regen_process(&rq, host, error);
  if (!r) return NULL;
  sige_session_entry *e = r->entry;

  /* Only what differs from what the output layer shows now is written
   * (normally the engine's changed rectangle; more if the user undid or
   * painted on the output).  One undo step per run that changes the image,
   * none for a run that changes nothing (GIMP keeps even an empty undo group
   * as a step, which would make the next Ctrl+Z seem to do nothing). */
  GimpItem *out = e->output_layer_id > 0 ? gimp_item_get_by_id(e->output_layer_id) : NULL;
  if (!valid_output(image, out, drawable)) out = find_output_layer(image, drawable);
  sige_rect wr = {0, 0, r->width, r->height};
  const gboolean fresh = !valid_output(image, out, drawable);
  if (!fresh) {
    sige_pixels cur;
    g_autofree guint8 *cur_data = read_layer(GIMP_DRAWABLE(out), &cur);
    const sige_pixels now = {r->pixels, r->width, r->height, r->bpp, 8};
    wr = sige_pixels_diff_rect(&cur, &now);
  }
  if (wr.width > 0) {
    gimp_image_undo_group_start(image);
    /* An indexed image cannot hold the generated picture.  RGB holds the
     * indexed layers' colours exactly, and the run's undo step undoes the
     * conversion too; the layers were read through an RGB format. */
    if (gimp_image_get_base_type(image) == GIMP_INDEXED) {
      gimp_image_convert_rgb(image);
      if (host->message)
        host->message(_("Sparse Regenerate: the image was indexed; it is now RGB, so that it can "
                       "hold the generated picture. The label layer's colours are unchanged, and "
                       "Ctrl+Z undoes the conversion with the run."),
                      host->data);
    }
    if (fresh) {
      out = GIMP_ITEM(new_output_layer(image, drawable, r->model_path, r->bpp,
                                       sige_regen_output_opacity(r)));
      g_autofree gchar *text = g_strdup_printf("%d", source_id);
      parasite_attach_text(out, SIGE_OUTPUT_PARASITE, text);
    }
    g_autofree guint8 *part = sige_pixels_crop(r->pixels, r->width, r->bpp, wr);
    write_rect(image, GIMP_DRAWABLE(out), part, r->bpp, wr, !fresh);
    gimp_image_undo_group_end(image);
  }
  if (parasite_session_id(item) != e->id) {
    g_autofree gchar *tag = sige_regen_tag_format(e);
    parasite_attach_text(item, SIGE_PARASITE, tag);
  }
  e->output_layer_id = gimp_item_get_id(out);
  /* Inserting the output selected it; the artist goes on painting on the
   * source. */
  const GimpLayer *selected[] = {GIMP_LAYER(drawable), NULL};
  gimp_image_set_selected_layers(image, selected);
  g_autofree gchar *source_name = gimp_item_get_name(item);
  g_autofree gchar *note = sige_regen_run_note(r, source_name);
  if (note && host->message) host->message(note, host->data);
  sige_regen_finish(r, wr);
  return GIMP_LAYER(out);
}
