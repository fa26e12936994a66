#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include "sige/context.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cblas.h>

#include "buffer.h"
#include "sige/error.h"
#include "sige/tensor.h"

/* A reading of the CPU time this process may run on (its affinity mask's
 * CPUs, /proc/stat) and of its own CPU time. */
typedef struct {
  gint64 at;          /* monotonic, us */
  double others_busy; /* seconds: non-niced busy time of those CPUs less ours */
  gboolean ok;
} cpu_reading;

struct sige_ctx {
  int n_threads;      /* the most this context runs with */
  int active_threads; /* what it runs with now (sige_ctx_fit_threads) */
  cpu_reading last;
  sige_backend *backend; /* NULL: the CPU */
  char *device_info;
  float *scratch[SIGE_CTX_SCRATCH_SLOTS];
  size_t scratch_len[SIGE_CTX_SCRATCH_SLOTS];
  uint64_t macs;
  uint64_t saved; /* multiplications the convolutions did not execute */
  unsigned algos;
  size_t prepared_bytes, winograd_keep_bytes;
  int band_rows;
  uint64_t widened_values, widen_ns;
  sige_conv_policy conv_policy;
};

/* The CPUs this process may run on (its affinity mask: a container or
 * taskset may give fewer than the machine has). */
static int usable_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static int default_threads(void) {
  const char *env = g_getenv("SIGE_NUM_THREADS");
  if (env && *env) {
    char *end = NULL;
    long v = strtol(env, &end, 10);
    if (end && *end == '\0' && v > 0 && v <= 1024) return (int)v;
    g_warning("SIGE_NUM_THREADS=%s is not a positive integer; using all cores", env);
  }
  return usable_cpus();
}

static cpu_reading read_cpu(void);

/* OpenBLAS gives every thread that runs a GEMM a 128 MiB work buffer, and
 * when the address space cannot hold one more it retries forever (16
 * threads under a 2 GB ulimit -v spun at 100 % CPU).  Under a finite
 * address-space or data limit, the threads get at most half of it at 256
 * MiB each (a buffer for the thread and one for OpenBLAS's own); 0: no cap. */
#define SIGE_BYTES_PER_THREAD ((guint64)256 << 20)

static int thread_cap(guint64 *limit_out) {
  guint64 limit = G_MAXUINT64;
  const int which[] = {RLIMIT_AS, RLIMIT_DATA};
  for (size_t i = 0; i < G_N_ELEMENTS(which); i++) {
    struct rlimit rl;
    if (getrlimit(which[i], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (guint64)rl.rlim_cur < limit)
      limit = (guint64)rl.rlim_cur;
  }
  *limit_out = limit;
  if (limit == G_MAXUINT64) return 0;
  const guint64 n = limit / 2 / SIGE_BYTES_PER_THREAD;
  return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

/* SIGE_CONV=auto|im2col|wino4|wino2: the starting conv policy (for the
 * reference checks and benchmarks run under each algorithm). */
static sige_conv_policy default_conv_policy(void) {
  static const char *const names[] = {"auto", "im2col", "wino4", "wino2"};
  const char *env = g_getenv("SIGE_CONV");
  if (!env || !*env) return SIGE_CONV_POLICY_AUTO;
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
    if (!strcmp(env, names[i])) return (sige_conv_policy)i;
  g_warning("SIGE_CONV=%s is not auto, im2col, wino4 or wino2; using auto", env);
  return SIGE_CONV_POLICY_AUTO;
}

/* SIGE_WINOGRAD_KEEP_MB: the starting limit of kept Winograd weights. */
static size_t default_winograd_keep_bytes(void) {
  const char *env = g_getenv("SIGE_WINOGRAD_KEEP_MB");
  if (env && *env) {
    char *end = NULL;
    const guint64 mb = g_ascii_strtoull(env, &end, 10);
    if (end && !*end && mb <= ((guint64)1 << 30)) return (size_t)mb << 20;
    g_warning("SIGE_WINOGRAD_KEEP_MB=%s is not a number of MiB; using 1024", env);
  }
  return (size_t)1024 << 20;
}

/* SIGE_SPADE_BAND_ROWS: the starting rows per band (sige_ctx_set_band_rows). */
static int default_band_rows(void) {
  const char *env = g_getenv("SIGE_SPADE_BAND_ROWS");
  if (env && *env) {
    char *end = NULL;
    const gint64 rows = g_ascii_strtoll(env, &end, 10);
    if (end && !*end && rows >= 0 && rows <= 1 << 20) return (int)rows;
    g_warning("SIGE_SPADE_BAND_ROWS=%s is not a number of rows (0 = unbanded); using auto", env);
  }
  return SIGE_BAND_ROWS_AUTO;
}

sige_ctx *sige_ctx_new(int n_threads) {
  sige_ctx *ctx = g_new0(sige_ctx, 1);
  ctx->conv_policy = default_conv_policy();
  ctx->winograd_keep_bytes = default_winograd_keep_bytes();
  ctx->band_rows = default_band_rows();
  ctx->n_threads = n_threads > 0 ? n_threads : default_threads();
  guint64 limit;
  const int cap = thread_cap(&limit);
  if (cap > 0 && ctx->n_threads > cap) {
    ctx->device_info = g_strdup_printf(
        "cpu, %d thread%s (%d asked; the %" G_GUINT64_FORMAT " MiB address-space limit holds "
        "the work buffers of %d)",
        cap, cap == 1 ? "" : "s", ctx->n_threads, limit >> 20, cap);
    ctx->n_threads = cap;
  } else {
    ctx->device_info =
        g_strdup_printf("cpu, %d thread%s", ctx->n_threads, ctx->n_threads == 1 ? "" : "s");
  }
  ctx->active_threads = ctx->n_threads;
  ctx->last = read_cpu();
  openblas_set_num_threads(ctx->n_threads);
  return ctx;
}

sige_ctx *sige_ctx_new_device(int n_threads, sige_device device, GError **error) {
  if (device != SIGE_DEVICE_CPU && device != SIGE_DEVICE_CUDA && device != SIGE_DEVICE_AUTO &&
      device != SIGE_DEVICE_SIM) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID, "unknown device %d", (int)device);
    return NULL;
  }
  sige_ctx *ctx = sige_ctx_new(n_threads);
  if (device == SIGE_DEVICE_CPU) return ctx;
  GError *why = NULL;
  ctx->backend = sige_backend_new(device == SIGE_DEVICE_AUTO ? SIGE_DEVICE_CUDA : device,
                                  ctx->n_threads, &why);
  if (ctx->backend) return ctx;
  if (device == SIGE_DEVICE_AUTO) { /* the CPU, saying why */
    char *cpu = ctx->device_info;
    ctx->device_info = g_strdup_printf("%s (auto: %s)", cpu, why->message);
    g_free(cpu);
    g_error_free(why);
    return ctx;
  }
  g_propagate_error(error, why);
  sige_ctx_free(ctx);
  return NULL;
}

void sige_ctx_free(sige_ctx *ctx) {
  if (!ctx) return;
  sige_backend_free(ctx->backend);
  g_free(ctx->device_info);
  for (int i = 0; i < SIGE_CTX_SCRATCH_SLOTS; i++) sige_aligned_free(ctx->scratch[i]);
  g_free(ctx);
}

int sige_ctx_threads(const sige_ctx *ctx) { return ctx->active_threads; }

/* Busy time of the CPUs in our affinity mask that runs at nice 0 or below
 * (user, system, irq, softirq, steal; /proc/stat "cpuN" lines, in clock
 * ticks), minus our own CPU time when we run at nice 0 (it is in those
 * columns then).  Niced work (the "nice" column) is left out: the
 * scheduler gives it way to us, so it does not take a core from a pass. */
static cpu_reading read_cpu(void) {
  cpu_reading r = {.at = g_get_monotonic_time()};
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return r;
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return r;
  const long hz = sysconf(_SC_CLK_TCK);
  char line[512];
  unsigned long long busy = 0;
  gboolean any = FALSE;
  while (fgets(line, sizeof line, f)) {
    int cpu;
    unsigned long long v[8] = {0};
    if (strncmp(line, "cpu", 3) != 0 || !g_ascii_isdigit(line[3])) continue;
    if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7]) < 9)
      continue;
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &set)) continue;
    busy += v[0] + v[2] + v[5] + v[6] + v[7]; /* user system irq softirq steal */
    any = TRUE;
  }
  fclose(f);
  struct timespec ts;
  if (!any || hz <= 0 || clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return r;
  errno = 0;
  const int nice_now = getpriority(PRIO_PROCESS, 0);
  const double self = nice_now <= 0 && errno == 0 ? ts.tv_sec + ts.tv_nsec / 1e9 : 0.0;
  r.others_busy = (double)busy / (double)hz - self;
  r.ok = TRUE;
  return r;
}

/* Readings closer than this say little at 100 ticks a second. */
#define FIT_MIN_WINDOW_US 50000

int sige_ctx_fit_threads(sige_ctx *ctx) {
  if (ctx->backend || ctx->n_threads <= 1) return ctx->active_threads;
  cpu_reading now = read_cpu();
  if (!now.ok) return ctx->active_threads;
  if (!ctx->last.ok) {
    ctx->last = now;
    return ctx->active_threads;
  }
  const gint64 window = now.at - ctx->last.at;
  if (window < FIT_MIN_WINDOW_US) return ctx->active_threads;
  /* CPUs' worth of other work at nice <= 0 over the window */
  const double others = MAX(0.0, (now.others_busy - ctx->last.others_busy) / (window / 1e6));
  const double free_cpus = usable_cpus() - others;
  int t = (int)(free_cpus + 0.5);
  t = CLAMP(t, 1, ctx->n_threads);
  ctx->last = now;
  if (t != ctx->active_threads) {
    ctx->active_threads = t;
    openblas_set_num_threads(t);
  }
  return t;
}

sige_backend *sige_ctx_backend(const sige_ctx *ctx) { return ctx->backend; }

sige_device sige_ctx_device(const sige_ctx *ctx) { return sige_backend_device(ctx->backend); }

const char *sige_ctx_device_info(const sige_ctx *ctx) {
  return ctx->backend ? sige_backend_info(ctx->backend) : ctx->device_info;
}

float *sige_ctx_scratch(sige_ctx *ctx, int slot, size_t n_floats, GError **error) {
  g_return_val_if_fail(slot >= 0 && slot < SIGE_CTX_SCRATCH_SLOTS, NULL);
  if (ctx->scratch_len[slot] >= n_floats && ctx->scratch[slot]) return ctx->scratch[slot];
  sige_aligned_free(ctx->scratch[slot]);
  ctx->scratch[slot] = NULL;
  ctx->scratch_len[slot] = 0;
  if (n_floats > SIZE_MAX / sizeof(float)) n_floats = SIZE_MAX / sizeof(float);
  float *p = sige_aligned_alloc(n_floats * sizeof(float));
  if (!p) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_NOMEM, "out of memory allocating %zu MiB of scratch",
                (n_floats * sizeof(float)) >> 20);
    return NULL;
  }
  ctx->scratch[slot] = p;
  ctx->scratch_len[slot] = n_floats;
  return p;
}

void sige_ctx_add_macs(sige_ctx *ctx, uint64_t macs) {
#pragma omp atomic
  ctx->macs += macs;
}
uint64_t sige_ctx_macs(const sige_ctx *ctx) { return ctx->macs; }
void sige_ctx_reset_macs(sige_ctx *ctx) {
  ctx->macs = 0;
  ctx->saved = 0;
  ctx->algos = 0;
}

void sige_ctx_add_conv(sige_ctx *ctx, sige_conv_algo algo, uint64_t macs, uint64_t mults) {
  sige_ctx_add_macs(ctx, macs);
  const uint64_t saved = mults < macs ? macs - mults : 0;
#pragma omp atomic
  ctx->saved += saved;
#pragma omp atomic
  ctx->algos |= (unsigned)algo;
}

uint64_t sige_ctx_mults(const sige_ctx *ctx) { return ctx->macs - ctx->saved; }
unsigned sige_ctx_take_conv_algos(sige_ctx *ctx) {
  const unsigned a = ctx->algos;
  ctx->algos = 0;
  return a;
}
size_t sige_ctx_prepared_bytes(const sige_ctx *ctx) { return ctx->prepared_bytes; }
void sige_ctx_set_conv_policy(sige_ctx *ctx, sige_conv_policy policy) {
  ctx->conv_policy = policy;
}
sige_conv_policy sige_ctx_conv_policy(const sige_ctx *ctx) { return ctx->conv_policy; }

void sige_ctx_widen_stats(const sige_ctx *ctx, uint64_t *values, uint64_t *ns) {
  if (values) *values = ctx->widened_values;
  if (ns) *ns = ctx->widen_ns;
}

void sige_ctx_add_widen(sige_ctx *ctx, uint64_t values, uint64_t ns) {
#pragma omp atomic
  ctx->widened_values += values;
#pragma omp atomic
  ctx->widen_ns += ns;
}

void sige_ctx_set_winograd_keep_bytes(sige_ctx *ctx, size_t bytes) {
  ctx->winograd_keep_bytes = bytes;
}
size_t sige_ctx_winograd_keep_bytes(const sige_ctx *ctx) { return ctx->winograd_keep_bytes; }

void sige_ctx_set_band_rows(sige_ctx *ctx, int rows) {
  ctx->band_rows = rows < 0 ? SIGE_BAND_ROWS_AUTO : rows;
}
int sige_ctx_band_rows(const sige_ctx *ctx) { return ctx->band_rows; }

void sige_ctx_add_prepared_bytes(sige_ctx *ctx, size_t bytes) {
#pragma omp atomic
  ctx->prepared_bytes += bytes;
}
