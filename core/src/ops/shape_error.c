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

gboolean sige_ops_check_f32(GError **error, const char *op, const sige_tensor *a,
                            const sige_tensor *b, const sige_tensor *c, const sige_tensor *d) {
  if (sige_ops_f32(a) && sige_ops_f32(b) && sige_ops_f32(c) && sige_ops_f32(d)) return TRUE;
  g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
              "%s: a tensor has F16 storage; dense ops take float32 (convert it with "
              "sige_tensor_to_f32)", op);
  return FALSE;
}
