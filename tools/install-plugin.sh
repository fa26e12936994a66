#!/bin/sh
# Installs the GIMP 2.10 plug-in into a GIMP profile (not meson install: GIMP
# finds user plug-ins in its profile, not under the install prefix).
#   tools/install-plugin.sh [BUILD_DIR] [PLUGIN_DIR]
# BUILD_DIR defaults to ./build; PLUGIN_DIR to
# ${GIMP2_DIRECTORY:-~/.config/GIMP/2.10}/plug-ins/sparse-regenerate.
# Copies the binary, the default model, the Cityscapes palette and the
# translations; the plug-in finds them next to its binary.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
profile=${GIMP2_DIRECTORY:-$HOME/.config/GIMP/2.10}
dest=${2:-$profile/plug-ins/sparse-regenerate}
bin=$build/plugin/sparse-regenerate
if [ ! -x "$bin" ]; then
  echo "install-plugin: $bin is missing; build with  meson setup $build && ninja -C $build" >&2
  echo "(the plug-in needs  apt-get install gimp libgimp2.0-dev  before meson setup)" >&2
  exit 1
fi
mkdir -p "$dest"
cp "$bin" "$dest/sparse-regenerate.tmp" && mv "$dest/sparse-regenerate.tmp" "$dest/sparse-regenerate"
cp "$src/data/models/gaugan-demo.safetensors" "$src/data/palettes/Cityscapes.gpl" "$dest/"
for mo in "$build"/po/*/LC_MESSAGES/sparse-regenerate.mo; do
  [ -f "$mo" ] || continue
  lang=$(basename "$(dirname "$(dirname "$mo")")")
  mkdir -p "$dest/locale/$lang/LC_MESSAGES"
  cp "$mo" "$dest/locale/$lang/LC_MESSAGES/"
done
echo "installed into $dest (restart GIMP; Filters > Generative > Sparse Regenerate...)"
