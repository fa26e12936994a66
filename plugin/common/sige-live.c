/* Live mode's timing, shared by both front-ends (sige-live.h says why it
 * polls). */
#include "sige-live.h"

#include <stdlib.h>
#include <string.h>

#include "sige-i18n.h"

void sige_live_init(sige_live *L) {
  memset(L, 0, sizeof *L);
  L->debounce_ms = SIGE_LIVE_DEBOUNCE_MS;
  const gchar *env = g_getenv("SIGE_LIVE_DEBOUNCE_MS");
  if (env && *env) L->debounce_ms = (guint)CLAMP(atoi(env), 0, 10000);
}

void sige_live_clear(sige_live *L) { g_clear_pointer(&L->last, g_free); }

/* TRUE when the read differs from the previous one (or there was none). */
static gboolean take_read(sige_live *L, guint8 *pixels, gsize size) {
  const gboolean changed =
      !L->last || size != L->last_size || memcmp(pixels, L->last, size) != 0;
  g_free(L->last);
  L->last = pixels;
  L->last_size = size;
  return changed;
}

void sige_live_prime(sige_live *L, guint8 *pixels, gsize size, gint64 t_start_us,
                     gint64 t_end_us) {
  take_read(L, pixels, size);
  L->read_ms = (t_end_us - t_start_us) / 1000.0;
  L->pending = FALSE;
}

sige_live_action sige_live_poll(sige_live *L, guint8 *pixels, gsize size, gint64 t_start_us,
                                gint64 t_end_us, gint64 *since_change_us) {
  L->read_ms = 0.8 * L->read_ms + 0.2 * (t_end_us - t_start_us) / 1000.0;
  if (take_read(L, pixels, size)) {
    L->pending = TRUE;
    L->last_change_us = t_start_us;
    return SIGE_LIVE_WAIT;
  }
  if (L->pending && t_start_us - L->last_change_us >= (gint64)L->debounce_ms * 1000) {
    L->pending = FALSE;
    if (since_change_us) *since_change_us = t_start_us - L->last_change_us;
    return SIGE_LIVE_UPDATE;
  }
  return SIGE_LIVE_WAIT;
}

void sige_live_updated(sige_live *L) { L->updates++; }

guint sige_live_poll_ms(const sige_live *L) {
  const double ms = L->read_ms / SIGE_LIVE_POLL_SHARE;
  if (!(ms >= SIGE_LIVE_POLL_MIN_MS)) return SIGE_LIVE_POLL_MIN_MS; /* NaN too */
  if (ms >= SIGE_LIVE_POLL_MAX_MS) return SIGE_LIVE_POLL_MAX_MS;
  return (guint)ms;
}

gchar *sige_live_intro(const char *layer_name) {
  return g_strdup_printf(_("Watching \"%s\": paint on it, and once it stops changing the output "
                           "layer follows. Each update is one undo step."),
                         layer_name);
}

gchar *sige_live_status(guint updates, double last_ms) {
  if (last_ms < 10000.0)
    return g_strdup_printf(_("Updates so far: %u; the last took %.0f ms."), updates, last_ms);
  return g_strdup_printf(_("Updates so far: %u; the last took %.1f s."), updates, last_ms / 1000.0);
}
