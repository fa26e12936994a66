#!/bin/sh
# End-to-end tests of the GIMP 3 plug-in (TAP output), in a Debian 13
# chroot: the host is Debian 12 with GIMP 2.10, and trixie's libgimp links
# against trixie's glib, so the whole project is built inside the chroot.
#   tests/gimp3/run-gimp3-tests.sh
# Needs root (chroot, mount).  Environment:
#   SIGE_GIMP3_CHROOT   the chroot, made by make-chroot.sh when missing and
#                       kept between runs (default /var/cache/sparse-regenerate/trixie)
#   SIGE_REFERENCE_DIR  the reference vectors (default ../shared/reference
#                       next to the source tree); the DDPM cases fail without
#   SIGE_NUM_THREADS    engine threads (default 2)
# The source tree is bind-mounted at /src and built in build-gimp3/ (GIMP 3
# on, GIMP 2.10 off); the cases are tests/gimp3/*.scm, checked by the same
# tests/gimp/run-gimp-tests.sh as the GIMP 2.10 ones.  Whatever happens, the
# mounts go again on exit; runs sharing a chroot take turns (a lock).
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd -P)
root=${SIGE_GIMP3_CHROOT:-/var/cache/sparse-regenerate/trixie}
ref=${SIGE_REFERENCE_DIR:-$src/../shared/reference}
if [ "$(id -u)" -ne 0 ]; then
  echo "Bail out! the GIMP 3 tests need root (debootstrap, chroot, mount)"
  exit 1
fi
t0=$(date +%s)
mkdir -p "$(dirname "$root")"
exec 9> "$root.lock"
flock 9

# 1. the chroot (cached; redone when half-made)
if ! "$src/tests/gimp3/make-chroot.sh" "$root" > "$root.log" 2>&1; then
  sed 's/^/# make-chroot: /' "$root.log"
  echo "Bail out! could not make the Debian 13 chroot $root"
  exit 1
fi
t1=$(date +%s)
echo "# chroot $root ready in $((t1 - t0)) s"

# 2. the mounts, undone in reverse order whatever happens
mounts=""
unmount_all() {
  for m in $mounts; do
    umount "$m" 2> /dev/null || umount -l "$m" || echo "# could not unmount $m" >&2
  done
}
trap unmount_all EXIT
trap 'exit 130' INT TERM HUP
mount_one() { # target, mount arguments...
  target=$1; shift
  mkdir -p "$target"
  mount "$@" "$target"
  mounts="$target $mounts"
}
mount_one "$root/proc" -t proc proc
mount_one "$root/dev/shm" -t tmpfs tmpfs # libgimp's shared memory with GIMP
mount_one "$root/src" --bind "$src"
mkdir -p "$root/reference"
if [ -d "$ref" ]; then
  mount_one "$root/reference" --bind "$ref"
  mount -o remount,bind,ro "$root/reference"
else
  echo "# the reference vectors $ref are missing: the DDPM cases will fail"
fi

in_chroot() {
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    SIGE_REFERENCE_DIR=/reference SIGE_NUM_THREADS="${SIGE_NUM_THREADS:-2}" "$@"
}

# 3. the build: the whole project against trixie's libraries, and the
# catalogues (not built by default); the tests use the plug-in, sige,
# png_compare and the catalogues
build=build-gimp3
if [ ! -f "$src/$build/build.ninja" ]; then
  in_chroot sh -c "cd /src && meson setup $build -Dgimp=disabled -Dgimp3=enabled -Dreference_dir=/reference" \
    > "$root.build.log" 2>&1 || { sed 's/^/# meson: /' "$root.build.log"; echo "Bail out! meson setup failed"; exit 1; }
fi
if ! in_chroot ninja -C "/src/$build" all sparse-regenerate-gmo > "$root.build.log" 2>&1; then
  sed 's/^/# ninja: /' "$root.build.log"
  echo "Bail out! the build in the chroot failed"
  exit 1
fi
t2=$(date +%s)
echo "# built in the chroot in $((t2 - t1)) s"

# 4. GIMP 3 in batch mode, checked as the GIMP 2.10 tests are
status=0
in_chroot sh "/src/tests/gimp/run-gimp-tests.sh" --gimp 3 /src "/src/$build" "/src/$build/tools/sige" \
  "/src/$build/tests/gimp/png_compare" || status=$?
t3=$(date +%s)
echo "# GIMP 3 tests took $((t3 - t2)) s; $((t3 - t0)) s in all"
exit $status
