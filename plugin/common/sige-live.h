/* Live mode without GIMP: when to run an update while the artist paints.
 *
 * Neither libgimp (2.10 or 3) tells a plug-in that a drawable changed, so
 * both front-ends read the layer's pixels on a timer and feed each read
 * here.  A change is an exact difference from the previous read (memcmp,
 * no hash that could collide); an update is due once the layer has stayed
 * the same for the debounce time after a change, since the end of a
 * stroke cannot be seen, only the pixels staying the same.  The poll
 * interval follows the measured cost of a read so that polling stays
 * under a share of one core. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* 0.2 s plus a poll (40 ms) plus the pass and the layer write (0.1 s for a
 * 1 % stroke on the 512 x 256 GauGAN on 2 cores, 0.2 s for the first after
 * a snapshot) fits the 0.5 s target of GIMP 2.10; 0.25 s did not for the
 * first stroke (0.515 s measured). */
#define SIGE_LIVE_DEBOUNCE_MS 200
#define SIGE_LIVE_POLL_MIN_MS 40
#define SIGE_LIVE_POLL_MAX_MS 1000
/* polling's share of one core at most: a 512x256 read costs a few ms, so
 * the interval is the minimum, which bounds how late a stroke is seen */
#define SIGE_LIVE_POLL_SHARE 0.10

typedef struct {
  guint debounce_ms;
  guint8 *last; /* the previous read */
  gsize last_size;
  gint64 last_change_us; /* monotonic µs of the read that saw the last change */
  gboolean pending;      /* changed since the last update */
  double read_ms;        /* a smoothed read cost */
  guint updates;         /* counted by sige_live_updated */
} sige_live;

/* The debounce is SIGE_LIVE_DEBOUNCE_MS unless the environment's
 * SIGE_LIVE_DEBOUNCE_MS (0 to 10000) says otherwise (for measurements). */
void sige_live_init(sige_live *L);
void sige_live_clear(sige_live *L);

/* The first read, before the first update: it only sets what later reads
 * are compared with.  Takes `pixels` (g_malloc'd). */
void sige_live_prime(sige_live *L, guint8 *pixels, gsize size, gint64 t_start_us,
                     gint64 t_end_us);

typedef enum {
  SIGE_LIVE_WAIT,   /* nothing to do: unchanged, or still changing */
  SIGE_LIVE_UPDATE, /* run an update now */
} sige_live_action;

/* One read, started at t_start_us and done at t_end_us (monotonic).  Takes
 * `pixels`.  On SIGE_LIVE_UPDATE *since_change_us (if not NULL) is how
 * long the layer has been unchanged, and the change counts as handled. */
sige_live_action sige_live_poll(sige_live *L, guint8 *pixels, gsize size, gint64 t_start_us,
                                gint64 t_end_us, gint64 *since_change_us);

/* After an update that wrote the output. */
void sige_live_updated(sige_live *L);

/* The interval until the next read, in ms. */
guint sige_live_poll_ms(const sige_live *L);

/* The live window's texts, translated, for both front-ends.  The intro
 * makes no promise of a time: an update takes a fifth of a second on the
 * GauGAN models but seconds to tens of seconds with Stable Diffusion, so
 * the status line says what the last one took (ms below 10 s, else s). */
gchar *sige_live_intro(const char *layer_name);
gchar *sige_live_status(guint updates, double last_ms);

G_END_DECLS
