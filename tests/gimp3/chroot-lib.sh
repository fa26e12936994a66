# The Debian 13 chroot the GIMP 3 tests run in (POSIX sh, sourced after
# `set -u` with the source tree in $src):
#   chroot_enter [--x11]   root check, the lock, the chroot (made when
#                          missing), the mounts (undone on exit), $root
#   chroot_build           the project built in it (build-gimp3/)
#   in_chroot CMD...       a command in it, with a clean environment
# The host is Debian 12 with GIMP 2.10, and trixie's libgimp links against
# trixie's glib, so the whole project is built inside the chroot; the
# source tree is bind-mounted at /src, the reference vectors at
# /reference.  Environment:
#   SIGE_GIMP3_CHROOT   the chroot, made by make-chroot.sh when missing and
#                       kept between runs (default /var/cache/sparse-regenerate/trixie)
#   SIGE_REFERENCE_DIR  the reference vectors (default ../shared/reference
#                       next to the source tree); the DDPM cases fail without
#   SIGE_NUM_THREADS    engine threads (default 2)
# Runs sharing a chroot take turns (a lock held until the script exits):
# they mount the same /src.
root=${SIGE_GIMP3_CHROOT:-/var/cache/sparse-regenerate/trixie}
ref=${SIGE_REFERENCE_DIR:-$src/../shared/reference}
build="build-gimp3"
chroot_mounts=""

chroot_unmount_all() {
  for m in $chroot_mounts; do
    umount "$m" 2> /dev/null || umount -l "$m" || echo "# could not unmount $m" >&2
  done
  chroot_mounts=""
}
chroot_mount() { # target, mount arguments...
  target=$1; shift
  mkdir -p "$target"
  mount "$@" "$target"
  chroot_mounts="$target $chroot_mounts"
}

# chroot_enter [--x11]: --x11 also shares the host's X server sockets
# (/tmp/.X11-unix), so that GIMP in the chroot can use a host Xvfb.  The
# caller's EXIT trap must call chroot_unmount_all (this sets one that does).
chroot_enter() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "Bail out! the GIMP 3 tests need root (debootstrap, chroot, mount)"
    exit 1
  fi
  t_chroot=$(date +%s)
  mkdir -p "$(dirname "$root")"
  exec 9> "$root.lock"
  flock 9
  # the chroot (cached; redone when half-made)
  if ! "$src/tests/gimp3/make-chroot.sh" "$root" > "$root.log" 2>&1; then
    sed 's/^/# make-chroot: /' "$root.log"
    echo "Bail out! could not make the Debian 13 chroot $root"
    exit 1
  fi
  echo "# chroot $root ready in $(($(date +%s) - t_chroot)) s"
  # the mounts, undone in reverse order whatever happens
  trap chroot_unmount_all EXIT
  trap 'exit 130' INT TERM HUP
  chroot_mount "$root/proc" -t proc proc
  chroot_mount "$root/dev/shm" -t tmpfs tmpfs # libgimp's shared memory with GIMP
  chroot_mount "$root/src" --bind "$src"
  mkdir -p "$root/reference"
  if [ -d "$ref" ]; then
    chroot_mount "$root/reference" --bind "$ref"
    mount -o remount,bind,ro "$root/reference"
  else
    echo "# the reference vectors $ref are missing: the DDPM cases will fail"
  fi
  if [ "${1:-}" = --x11 ]; then
    mkdir -p /tmp/.X11-unix
    chroot_mount "$root/tmp/.X11-unix" --bind /tmp/.X11-unix
  fi
}

in_chroot() {
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    SIGE_REFERENCE_DIR=/reference SIGE_NUM_THREADS="${SIGE_NUM_THREADS:-2}" "$@"
}

# chroot_build: the whole project against trixie's libraries, and the
# catalogues (not built by default); the tests use the plug-in, sige,
# png_compare, sf_client and the catalogues
chroot_build() {
  t_build=$(date +%s)
  if [ ! -f "$src/$build/build.ninja" ]; then
    in_chroot sh -c "cd /src && meson setup $build -Dgimp=disabled -Dgimp3=enabled -Dreference_dir=/reference" \
      > "$root.build.log" 2>&1 || { sed 's/^/# meson: /' "$root.build.log"; echo "Bail out! meson setup failed"; exit 1; }
  fi
  if ! in_chroot ninja -C "/src/$build" all sparse-regenerate-gmo > "$root.build.log" 2>&1; then
    sed 's/^/# ninja: /' "$root.build.log"
    echo "Bail out! the build in the chroot failed"
    exit 1
  fi
  echo "# built in the chroot in $(($(date +%s) - t_build)) s"
}
