/* One run of Sparse Regenerate on a layer in GIMP 2.10: the layers in and
 * out; the sessions and the engine are plugin/common/sige-regen.c's. */
#include <gegl.h>
#include <libgimp/gimp.h>
#include <stdlib.h>
#include <string.h>

#include "sige-host.h"
#include "sige-plugin.h"
#include "sige-regen.h"
#include "sige/error.h"

static gboolean image_alive(const sige_session_entry *e, gpointer data) {
  (void)data;
  return gimp_image_is_valid(e->image_id) && gimp_item_is_valid(e->layer_id);
}

void sige_sessions_prune(void) {
  sige_session_table_prune(sige_regen_sessions(), image_alive, NULL);
}

/* ---- parasites ---------------------------------------------------------- */
/* They tie a layer to its session and an output layer to its source.  They
 * are bookkeeping, not part of the image, so they are not undoable (flags
 * 0): an undoable one is an undo step of its own in a run that writes no
 * pixel, and GIMP 2.10 logs a Gimp-Core-CRITICAL (an unbalanced undo group
 * end) on every redo of an undoable item parasite. */

static void parasite_attach_text(gint32 item, const gchar *name, const gchar *text) {
  GimpParasite *p = gimp_parasite_new(name, 0, strlen(text) + 1, text);
  gimp_item_attach_parasite(item, p);
  gimp_parasite_free(p);
}

static gchar *parasite_text(gint32 item, const gchar *name) {
  GimpParasite *p = gimp_item_get_parasite(item, name);
  if (!p) return NULL;
  gchar *text = g_strndup(gimp_parasite_data(p), gimp_parasite_data_size(p));
  gimp_parasite_free(p);
  return text;
}

static guint32 parasite_session_id(gint32 layer) {
  g_autofree gchar *text = parasite_text(layer, SIGE_PARASITE);
  return text ? sige_regen_tag_parse(text, strlen(text)) : 0;
}

/* ---- pixels ------------------------------------------------------------- */

static const Babl *layer_format(gint32 drawable, int *bpp) {
  if (gimp_drawable_is_gray(drawable)) {
    *bpp = 1;
    return babl_format("Y' u8");
  }
  *bpp = 3;
  return babl_format("R'G'B' u8");
}

/* The layer's pixels without alpha (labels are colours; alpha means nothing). */
static guint8 *read_layer(gint32 drawable, sige_pixels *px) {
  const Babl *fmt = layer_format(drawable, &px->bpp);
  px->width = gimp_drawable_width(drawable);
  px->height = gimp_drawable_height(drawable);
  guint8 *data = g_malloc((size_t)px->width * px->height * px->bpp);
  GeglBuffer *buf = gimp_drawable_get_buffer(drawable);
  gegl_buffer_get(buf, GEGL_RECTANGLE(0, 0, px->width, px->height), 1.0, fmt, data,
                  GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buf);
  px->data = data;
  return data;
}

/* The selection over the layer (1 byte per pixel, 0 outside the image),
 * or NULL when nothing is selected: a Stable Diffusion run inpaints it. */
static guint8 *read_selection(gint32 image, gint32 drawable, sige_pixels *px) {
  if (gimp_selection_is_empty(image)) return NULL;
  gint offx = 0, offy = 0;
  gimp_drawable_offsets(drawable, &offx, &offy);
  px->width = gimp_drawable_width(drawable);
  px->height = gimp_drawable_height(drawable);
  px->bpp = 1;
  px->bits = 8;
  guint8 *data = g_malloc((size_t)px->width * px->height);
  GeglBuffer *buf = gimp_drawable_get_buffer(gimp_image_get_selection(image));
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
static void write_rect(gint32 image, gint32 layer, const guint8 *px, int bpp, sige_rect r,
                       gboolean undoable) {
  const Babl *fmt = bpp == 1 ? babl_format("Y' u8") : babl_format("R'G'B' u8");
  if (!undoable) {
    GeglBuffer *buf = gimp_drawable_get_buffer(layer);
    gegl_buffer_set(buf, GEGL_RECTANGLE(r.x, r.y, r.width, r.height), 0, fmt, px,
                    GEGL_AUTO_ROWSTRIDE);
    g_object_unref(buf);
    gimp_drawable_update(layer, r.x, r.y, r.width, r.height);
    return;
  }
  gint32 saved = gimp_selection_is_empty(image) ? -1 : gimp_selection_save(image);
  gint offx = 0, offy = 0;
  gimp_drawable_offsets(layer, &offx, &offy);
  gimp_context_push();
  gimp_context_set_antialias(FALSE);
  gimp_context_set_feather(FALSE);
  gimp_image_select_rectangle(image, GIMP_CHANNEL_OP_REPLACE, offx + r.x, offy + r.y, r.width,
                              r.height);
  gimp_context_pop();
  GeglBuffer *shadow = gimp_drawable_get_shadow_buffer(layer);
  gegl_buffer_set(shadow, GEGL_RECTANGLE(r.x, r.y, r.width, r.height), 0, fmt, px,
                  GEGL_AUTO_ROWSTRIDE);
  gegl_buffer_flush(shadow);
  g_object_unref(shadow);
  gimp_drawable_merge_shadow(layer, TRUE);
  gimp_drawable_update(layer, r.x, r.y, r.width, r.height);
  if (saved != -1) {
    gimp_image_select_item(image, GIMP_CHANNEL_OP_REPLACE, saved);
    gimp_image_remove_channel(image, saved);
  } else {
    gimp_selection_none(image);
  }
}

/* ---- the output layer --------------------------------------------------- */

static gint32 new_output_layer(gint32 image, gint32 source, const gchar *model_path, int bpp,
                               double opacity) {
  g_autofree gchar *name = sige_regen_output_name(model_path);
  gint32 layer = gimp_layer_new(image, name, gimp_drawable_width(source),
                                gimp_drawable_height(source),
                                bpp == 1 ? GIMP_GRAY_IMAGE : GIMP_RGB_IMAGE, opacity,
                                GIMP_LAYER_MODE_NORMAL);
  gint offx = 0, offy = 0;
  gimp_drawable_offsets(source, &offx, &offy);
  gimp_layer_set_offsets(layer, offx, offy);
  gimp_image_insert_layer(image, layer, gimp_item_get_parent(source),
                          gimp_image_get_item_position(image, source));
  return layer;
}

static gboolean valid_output(gint32 image, gint32 layer, gint32 source) {
  return layer > 0 && gimp_item_is_valid(layer) && gimp_item_get_image(layer) == image &&
         gimp_item_is_layer(layer) && !gimp_item_is_group(layer) &&
         gimp_drawable_width(layer) == gimp_drawable_width(source) &&
         gimp_drawable_height(layer) == gimp_drawable_height(source) &&
         gimp_drawable_is_gray(layer) == gimp_drawable_is_gray(source);
}

/* The output layer made for `source` earlier (marked with a parasite), so
 * that a reset or an evicted session writes into it again rather than
 * stacking up new layers. */
static gint32 find_output_layer(gint32 image, gint32 source) {
  gint32 parent = gimp_item_get_parent(source);
  gint n = 0;
  g_autofree gint32 *layers = parent > 0 ? gimp_item_get_children(parent, &n)
                                         : gimp_image_get_layers(image, &n);
  for (gint i = 0; i < n; i++) {
    g_autofree gchar *text = parasite_text(layers[i], SIGE_OUTPUT_PARASITE);
    if (text && atoi(text) == source && valid_output(image, layers[i], source)) return layers[i];
  }
  return -1;
}

/* A run on an output layer (Ctrl+F with the output active, the layer GIMP
 * made active before) means its source: reading the output as labels would
 * cost a full pass of garbage and stack a third layer.  Returns the layer
 * to regenerate from, or -1 with *error set when the source is gone. */
gint32 sige_gimp210_source_layer(gint32 image, gint32 drawable, GError **error) {
  g_autofree gchar *text = parasite_text(drawable, SIGE_OUTPUT_PARASITE);
  if (!text) return drawable;
  const gint32 source = sige_regen_output_source_parse(text, strlen(text));
  if (source > 0 && source != drawable && gimp_item_is_valid(source) &&
      gimp_item_get_image(source) == image && gimp_item_is_layer(source) &&
      !gimp_item_is_group(source))
    return source;
  g_autofree gchar *name = gimp_item_get_name(drawable);
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              _("The layer \"%s\" is the output of Sparse Regenerate, and the layer it was made "
                "from is no longer in this image. Select the label layer (GauGAN) or the "
                "picture (DDPM) to regenerate from and run it again."),
              name);
  return -1;
}

/* ---- the run ------------------------------------------------------------ */

gint32 sige_gimp210_regenerate(gint32 image, gint32 drawable, const SigeSettings *s,
                           gboolean interactive, GError **error) {
  const sige_regen_host host = sige_gimp_host(interactive);
  return sige_gimp210_regenerate_host(image, drawable, s, &host, error);
}

gint32 sige_gimp210_regenerate_host(gint32 image, gint32 drawable, const SigeSettings *s,
                                    const sige_regen_host *host, GError **error) {
  if (!gimp_item_is_layer(drawable) || gimp_item_is_group(drawable)) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("Sparse Regenerate works on a layer; select the label layer (GauGAN) or the "
                  "image layer (DDPM) and run it again."));
    return -1;
  }
  drawable = sige_gimp210_source_layer(image, drawable, error);
  if (drawable < 0) return -1;
  sige_pixels src = {0}, inst = {0};
  g_autofree guint8 *src_data = read_layer(drawable, &src);
  g_autofree guint8 *inst_data = NULL;
  if (s->instance_layer > 0 && gimp_item_is_valid(s->instance_layer) &&
      gimp_item_get_image(s->instance_layer) == image)
    inst_data = read_layer(s->instance_layer, &inst);
  sige_pixels sel;
  g_autofree guint8 *sel_data = read_selection(image, drawable, &sel);
  g_autofree gchar *layer_name = gimp_item_get_name(drawable);

  const sige_regen_request rq = {
      .image_id = image,
      .layer_id = drawable,
      .tagged_session = parasite_session_id(drawable),
      .source = &src,
      .instance = inst_data ? &inst : NULL,
      .settings = s,
      .mask = sel_data ? &sel : NULL,
      .layer_name = layer_name,
  };
  sige_regen_result *r = sige_regen_process(&rq, host, error);
  if (!r) return -1;
  sige_session_entry *e = r->entry;

  /* Only what differs from what the output layer shows now is written
   * (normally the engine's changed rectangle; more if the user undid or
   * painted on the output).  One undo step per run that changes the image,
   * none for a run that changes nothing (GIMP keeps even an empty undo group
   * as a step, which would make the next Ctrl+Z seem to do nothing). */
  gint32 out = e->output_layer_id;
  if (!valid_output(image, out, drawable)) out = find_output_layer(image, drawable);
  sige_rect wr = {0, 0, r->width, r->height};
  const gboolean fresh = !valid_output(image, out, drawable);
  if (!fresh) {
    sige_pixels cur;
    g_autofree guint8 *cur_data = read_layer(out, &cur);
    const sige_pixels now = {r->pixels, r->width, r->height, r->bpp, 8};
    wr = sige_pixels_diff_rect(&cur, &now);
  }
  if (wr.width > 0) {
    gimp_image_undo_group_start(image);
    /* An indexed image cannot hold the generated picture.  RGB holds the
     * indexed layers' colours exactly, and the run's undo step undoes the
     * conversion too; the layers were read through an RGB format. */
    if (gimp_image_base_type(image) == GIMP_INDEXED) {
      gimp_image_convert_rgb(image);
      if (host->message)
        host->message(_("Sparse Regenerate: the image was indexed; it is now RGB, so that it can "
                       "hold the generated picture. The label layer's colours are unchanged, and "
                       "Ctrl+Z undoes the conversion with the run."),
                     host->data);
    }
    if (fresh) {
      out = new_output_layer(image, drawable, r->model_path, r->bpp,
                             sige_regen_output_opacity(r));
      g_autofree gchar *text = g_strdup_printf("%d", drawable);
      parasite_attach_text(out, SIGE_OUTPUT_PARASITE, text);
    }
    g_autofree guint8 *part = sige_pixels_crop(r->pixels, r->width, r->bpp, wr);
    write_rect(image, out, part, r->bpp, wr, !fresh);
    gimp_image_undo_group_end(image);
  }
  if (parasite_session_id(drawable) != e->id) {
    g_autofree gchar *tag = sige_regen_tag_format(e);
    parasite_attach_text(drawable, SIGE_PARASITE, tag);
  }
  e->output_layer_id = out;
  /* Inserting the output made it the active layer; the artist goes on
   * painting on the source. */
  gimp_image_set_active_layer(image, drawable);
  g_autofree gchar *source_name = gimp_item_get_name(drawable);
  g_autofree gchar *note = sige_regen_run_note(r, source_name);
  if (note && host->message) host->message(note, host->data);
  sige_regen_finish(r, wr);
  return out;
}
