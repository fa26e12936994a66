/* What every `sige bench` report carries, whichever model it times: the
 * process's peak RSS, the CPU's name and the JSON form of its numbers. */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

double bench_peak_rss_mb(void);
/* /proc/cpuinfo's first "model name", or "unknown". */
char *bench_cpu_model(void);
void bench_json_num(JsonBuilder *jb, const char *name, double v);
/* Ends the report's outer object and prints it as one line. */
void bench_json_print(JsonBuilder *jb);

G_END_DECLS
