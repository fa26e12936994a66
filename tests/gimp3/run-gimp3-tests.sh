#!/bin/sh
# End-to-end tests of the GIMP 3 plug-in (TAP output), in a Debian 13
# chroot (tests/gimp3/chroot-lib.sh: why, and the environment it reads):
#   tests/gimp3/run-gimp3-tests.sh
# Needs root (chroot, mount).  The project is built in build-gimp3/ (GIMP 3
# on, GIMP 2.10 off); the cases are tests/gimp3/*.scm, checked by the same
# tests/gimp/run-gimp-tests.sh as the GIMP 2.10 ones.  The GUI cases are
# tests/gimp3/run-gimp3-gui-test.sh's.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd -P)
. "$src/tests/gimp3/chroot-lib.sh"
t0=$(date +%s)
chroot_enter # batch: no X server
chroot_build
t2=$(date +%s)

# GIMP 3 in batch mode, checked as the GIMP 2.10 tests are
status=0
in_chroot sh "/src/tests/gimp/run-gimp-tests.sh" --gimp 3 /src "/src/$build" "/src/$build/tools/sige" \
  "/src/$build/tests/gimp/png_compare" || status=$?
t3=$(date +%s)
echo "# GIMP 3 tests took $((t3 - t2)) s; $((t3 - t0)) s in all"
exit $status
