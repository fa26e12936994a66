#!/bin/sh
# Takes the user guide's screenshots under Xvfb (no display needed):
#   tools/screenshots.sh [BUILD_DIR]      -> docs/images/*.png
# Needs  apt-get install gimp xvfb imagemagick  and a build with the plug-in.
# GIMP runs in a private profile; the dialog is shot from the virtual screen
# while the plug-in waits for input, the before/after images are the
# plug-in's own outputs exported by Script-Fu.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
out=$src/docs/images
work=$(mktemp -d)
xvfb_pid="" gimp_pid=""
cleanup() {
  [ -n "$gimp_pid" ] && kill "$gimp_pid" 2>/dev/null || true
  [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
profile=$work/profile
for d in brushes dynamics fonts gradients palettes patterns tool-presets scripts templates plug-ins; do
  mkdir -p "$profile/$d"
done
GIMP2_DIRECTORY=$profile "$src/tools/install-plugin.sh" --gimp 2.10 "$build" >/dev/null
mkdir -p "$out"
export GIMP2_DIRECTORY="$profile" XDG_CONFIG_HOME="$work/cfg" XDG_CACHE_HOME="$work/cache"
export LANGUAGE=C LC_ALL=C.UTF-8 NO_AT_BRIDGE=1

# 1. before/after: label map, first (full) run, edited map, second (sparse) run
cp "$src/data/examples/street_labels.png" "$work/labels.png"
cat > "$work/shots.scm" <<SCM
(define (save img d name) (file-png-save-defaults RUN-NONINTERACTIVE img d (string-append "$work/" name) name))
(define img (car (file-png-load RUN-NONINTERACTIVE "$work/labels.png" "labels.png")))
(define src (car (gimp-image-get-active-layer img)))
(define out (car (plug-in-sparse-regenerate RUN-NONINTERACTIVE img src "" 0 0 -1)))
(save img out "before.png")
(gimp-context-set-foreground '(0 0 142))
(gimp-context-set-antialias FALSE)
(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 150 150 60 30)
(gimp-edit-fill src FILL-FOREGROUND)
(gimp-selection-none img)
(save img src "labels-edited.png")
(plug-in-sparse-regenerate RUN-NONINTERACTIVE img src "" 0 0 -1)
(save img out "after.png")
(gimp-image-delete img)
SCM
timeout 300 gimp-console-2.10 -i -d -f -b "(load \"$work/shots.scm\")" -b '(gimp-quit 0)' >/dev/null 2>&1
montage -label '%t' -pointsize 14 -tile 2x2 -geometry +6+6 \
  "$work/labels.png" "$work/before.png" "$work/labels-edited.png" "$work/after.png" \
  "$out/before-after.png"

# 2. the dialog, shot from the virtual screen while it waits for OK
Xvfb :97 -screen 0 1024x900x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
sleep 2
cat > "$work/dialog.scm" <<SCM
(define img (car (file-png-load RUN-NONINTERACTIVE "$work/labels.png" "labels.png")))
(plug-in-sparse-regenerate RUN-INTERACTIVE img (car (gimp-image-get-active-layer img)) "" 0 0 -1)
SCM
DISPLAY=:97 gimp-2.10 -n -d -f -s --no-splash -b "(load \"$work/dialog.scm\")" >/dev/null 2>&1 &
gimp_pid=$!
# wait for the dialog (GIMP's start time varies from 5 s to 30 s)
for i in $(seq 1 60); do
  sleep 2
  if DISPLAY=:97 xwininfo -root -tree 2>/dev/null | grep -q '"Sparse Regenerate"'; then break; fi
done
sleep 2
id=$(DISPLAY=:97 xwininfo -root -tree | sed -n 's/^ *\(0x[0-9a-f]*\) "Sparse Regenerate".*/\1/p' | head -n 1)
if [ -n "$id" ]; then
  DISPLAY=:97 import -window "$id" -frame "$out/dialog.png"
else
  DISPLAY=:97 import -window root "$out/dialog.png"
fi
echo "wrote $out/before-after.png $out/dialog.png"
