#!/bin/sh
# Installs the GIMP plug-in into a GIMP profile (not meson install: GIMP
# finds user plug-ins in its profile, not under the install prefix).
#   tools/install-plugin.sh [--gimp 2.10|3] [BUILD_DIR] [PLUGIN_DIR]
# Installs every front-end BUILD_DIR (default ./build) has, or the one
# --gimp names:
#   GIMP 2.10: plugin/gimp210/sparse-regenerate into
#     ${GIMP2_DIRECTORY:-~/.config/GIMP/2.10}/plug-ins/sparse-regenerate/
#   GIMP 3:    plugin/gimp3/sparse-regenerate into
#     ${GIMP3_DIRECTORY:-~/.config/GIMP/3.0}/plug-ins/sparse-regenerate/
# PLUGIN_DIR overrides the folder (one front-end only).  Copies the binary,
# the default model, the Cityscapes palette, the translations and the help
# (the user guide as HTML, help/en/); the plug-in finds them next to its
# binary.  System-wide: meson install (or the Debian package,
# tools/bootstrap.sh package) puts the same files into GIMP's own folder.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
only=
if [ "${1:-}" = --gimp ]; then
  only=${2:?"--gimp needs 2.10 or 3"}
  shift 2
fi
case "$only" in ''|2.10|3) ;; *) echo "install-plugin: --gimp takes 2.10 or 3, not $only" >&2; exit 2 ;; esac
build=${1:-$src/build}
dest_override=${2:-}

install_one() { # binary, plug-in folder
  mkdir -p "$2"
  html=$(dirname "$1")/index.html
  if [ -f "$html" ]; then
    mkdir -p "$2/help/en/images"
    cp "$html" "$src/plugin/help/gimp-help.xml" "$2/help/en/"
    cp "$src"/docs/images/*.png "$2/help/en/images/"
  else
    echo "install-plugin: no help pages in $(dirname "$1") (apt-get install python3-markdown, then reconfigure)" >&2
  fi
  cp "$1" "$2/sparse-regenerate.tmp" && mv "$2/sparse-regenerate.tmp" "$2/sparse-regenerate"
  cp "$src/data/models/gaugan-street.safetensors" "$src/data/models/ddpm-church.safetensors" \
    "$src/data/palettes/Cityscapes.gpl" "$src/data/clip/bpe_simple_vocab_16e6.txt.gz" "$2/"
  for mo in "$build"/po/*/LC_MESSAGES/sparse-regenerate.mo; do
    [ -f "$mo" ] || continue
    lang=$(basename "$(dirname "$(dirname "$mo")")")
    mkdir -p "$2/locale/$lang/LC_MESSAGES"
    cp "$mo" "$2/locale/$lang/LC_MESSAGES/"
  done
  echo "installed into $2 (restart GIMP; Filters > Generative > Sparse Regenerate...)"
}

bin210=$build/plugin/gimp210/sparse-regenerate
bin3=$build/plugin/gimp3/sparse-regenerate
want210=no want3=no
case "$only" in
  2.10) want210=yes ;;
  3) want3=yes ;;
  *) [ -x "$bin210" ] && want210=yes; [ -x "$bin3" ] && want3=yes ;;
esac
if [ "$want210" = no ] && [ "$want3" = no ] || \
   { [ "$want210" = yes ] && [ ! -x "$bin210" ]; } || { [ "$want3" = yes ] && [ ! -x "$bin3" ]; }; then
  echo "install-plugin: no plug-in binary for ${only:-either GIMP} in $build/plugin/; build with" >&2
  echo "  meson setup $build && ninja -C $build" >&2
  echo "(GIMP 2.10 needs  apt-get install gimp libgimp2.0-dev,  GIMP 3  apt-get install gimp libgimp-3.0-dev," >&2
  echo " before meson setup)" >&2
  exit 1
fi
if [ -n "$dest_override" ] && [ "$want210" = yes ] && [ "$want3" = yes ]; then
  echo "install-plugin: both front-ends are built; choose one with --gimp 2.10 or --gimp 3 for PLUGIN_DIR" >&2
  exit 2
fi
if [ "$want210" = yes ]; then
  install_one "$bin210" "${dest_override:-${GIMP2_DIRECTORY:-$HOME/.config/GIMP/2.10}/plug-ins/sparse-regenerate}"
fi
if [ "$want3" = yes ]; then
  install_one "$bin3" "${dest_override:-${GIMP3_DIRECTORY:-$HOME/.config/GIMP/3.0}/plug-ins/sparse-regenerate}"
fi
