#include "ops_internal.h"

void sige_ops_shape_error(GError **error, const char *op, const char *reason,
                          const sige_tensor *a, const char *a_name, const sige_tensor *b,
                          const char *b_name, const sige_tensor *c, const char *c_name) {
  char sa[96] = "", sb[96] = "", sc[96] = "";
  if (a) sige_tensor_shape_str(a, sa, sizeof sa);
  if (b) sige_tensor_shape_str(b, sb, sizeof sb);
  if (c) sige_tensor_shape_str(c, sc, sizeof sc);
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_SHAPE, "%s: %s (%s%s%s%s%s%s%s%s%s%s%s)", op, reason,
              a ? a_name : "", a ? " " : "", sa, b ? ", " : "", b ? b_name : "", b ? " " : "", sb,
              c ? ", " : "", c ? c_name : "", c ? " " : "", sc);
}
