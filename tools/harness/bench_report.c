#include "bench_report.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

double bench_peak_rss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

char *bench_cpu_model(void) {
  g_autofree char *text = NULL;
  if (!g_file_get_contents("/proc/cpuinfo", &text, NULL, NULL)) return g_strdup("unknown");
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    if (g_str_has_prefix(line, "model name")) {
      const char *colon = strchr(line, ':');
      if (colon) return g_strstrip(g_strdup(colon + 1));
    }
    line = nl ? nl + 1 : NULL;
  }
  return g_strdup("unknown");
}

void bench_json_num(JsonBuilder *jb, const char *name, double v) {
  json_builder_set_member_name(jb, name);
  json_builder_add_double_value(jb, v);
}

void bench_json_print(JsonBuilder *jb) {
  json_builder_end_object(jb);
  g_autoptr(JsonNode) root = json_builder_get_root(jb);
  g_autofree char *s = json_to_string(root, FALSE);
  printf("%s\n", s);
}
