#!/bin/sh
# Makes (or completes) the Debian 13 chroot the GIMP 3 tests run in.
#   make-chroot.sh DIR
# debootstrap --variant=minbase trixie, then GIMP 3, its headers and what
# the engine builds with, from the Debian mirror ($SIGE_TRIXIE_MIRROR,
# default http://deb.debian.org/debian).  Nothing of trixie touches the host.
# Stamps in DIR say what is done: a debootstrap without its stamp (stopped
# half-way) is redone from scratch; a package list other than the stamped
# one is installed again.  About 1 minute for debootstrap and 5 for the
# packages here (1.9 GB); nothing when both stamps are there.
set -eu
dir=${1:?usage: make-chroot.sh DIR}
mirror=${SIGE_TRIXIE_MIRROR:-http://deb.debian.org/debian}
# libcmocka-dev: the project's test build (png_compare lives there);
# python3-markdown: the plug-in's help pages
packages="gimp libgimp-3.0-dev gcc libc6-dev pkgconf meson ninja-build gettext python3-markdown \
libglib2.0-dev libjson-glib-dev libopenblas-openmp-dev libpng-dev libzip-dev libcmocka-dev"
base_stamp=$dir/.sige-debootstrap-done
pkg_stamp=$dir/.sige-packages

mounted_below() { # prints the mount points under $1
  awk -v d="$(cd "$1" && pwd -P)/" 'index($2 "/", d) == 1 { print $2 }' /proc/mounts
}

if [ ! -f "$base_stamp" ]; then
  if ! command -v debootstrap > /dev/null; then
    echo "make-chroot: debootstrap is missing: apt-get install debootstrap" >&2
    exit 1
  fi
  if [ -e "$dir" ]; then
    # Never delete through a mount: a bind-mounted source tree would go too.
    if [ -n "$(mounted_below "$dir")" ]; then
      echo "make-chroot: $dir is half-made but has mounts below it; unmount them first:" >&2
      mounted_below "$dir" >&2
      exit 1
    fi
    echo "make-chroot: $dir has no stamp (an interrupted debootstrap?); starting again"
    rm -rf --one-file-system "$dir"
  fi
  mkdir -p "$(dirname "$dir")"
  debootstrap --variant=minbase trixie "$dir" "$mirror"
  rm -f "$pkg_stamp"
  touch "$base_stamp"
fi

if [ "$(cat "$pkg_stamp" 2>/dev/null)" != "$packages" ]; then
  # Package scripts want /proc; it is unmounted whatever happens.
  mount -t proc proc "$dir/proc"
  trap 'umount "$dir/proc"' EXIT
  chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages > /dev/null && apt-get clean"
  echo "$packages" > "$pkg_stamp"
fi
