#include "cli_output.h"

#include <signal.h>

#include "sige-app/image_files.h"

gboolean sige_cli_write_png(const sige_tensor *out, const char *path, GError **error) {
  sigset_t hold, old;
  sigemptyset(&hold);
  sigaddset(&hold, SIGINT);
  sigaddset(&hold, SIGTERM);
  sigaddset(&hold, SIGHUP);
  sigprocmask(SIG_BLOCK, &hold, &old);
  const gboolean ok = sige_output_write_png(out, path, error);
  sigprocmask(SIG_SETMASK, &old, NULL); /* a held signal is delivered here */
  return ok;
}
