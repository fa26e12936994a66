#!/bin/sh
# The GIMP 3 dialog with a Stable Diffusion checkpoint, shot for the user
# guide (docs/images/gimp3-sd-dialog.png), in the real gimp-3.0 of the
# Debian 13 chroot (chroot-lib.sh) on a host Xvfb, as run-gimp3-gui-test.sh
# runs it:
#   tests/gimp3/shoot-sd-dialog.sh [OUT.png]
# Needs root, Xvfb, xdotool and ImageMagick's import on the host.  A fresh
# profile has no last values, so the interactive call's arguments (the tiny
# SD checkpoint of make_sd_tiny, a prompt) are what the dialog shows; the
# dialog is cancelled after the shot.  Exits non-zero when no dialog shows.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd -P)
out=${1:-$src/docs/images/gimp3-sd-dialog.png}
. "$src/tests/gimp3/chroot-lib.sh"
chroot_enter --x11
chroot_build
TMPDIR=$root/tmp
gui_lib_dir=$src/tests/gimp
. "$src/tests/gimp/gui-lib.sh"
gui_init gimp3-sd-shot
trap 'cleanup; chroot_unmount_all' EXIT
cw=${work#"$root"}
client() { chroot "$root" "/src/$build/tests/gimp/sf_client" "$@"; }
profile=$work/profile
mkdir -p "$profile" "$work/xdg-config" "$work/xdg-cache" "$work/xdg-data"
printf '(image-title-format "sige-image-%%p")\n(show-welcome-dialog no)\n(check-updates no)\n' \
  > "$profile/gimprc"
in_chroot env GIMP3_DIRECTORY="$cw/profile" /src/tools/install-plugin.sh --gimp 3 "/src/$build" \
  > /dev/null || bail "could not install the plug-in"
in_chroot "/src/$build/plugin/common/tests/make_sd_tiny" /reference "$cw/tiny-sd.safetensors" ||
  bail "could not make the tiny SD checkpoint"
start_xvfb 300
port=$(client --free-port) || bail "no free TCP port"
timeout 280 chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  DISPLAY="$DISPLAY" GIMP3_DIRECTORY="$cw/profile" XDG_CONFIG_HOME="$cw/xdg-config" \
  XDG_CACHE_HOME="$cw/xdg-cache" XDG_DATA_HOME="$cw/xdg-data" LANGUAGE=C LC_ALL=C \
  gimp-3.0 -n -s -f --stack-trace-mode never --batch-interpreter=plug-in-script-fu-eval \
  -b "(plug-in-script-fu-server #:run-mode RUN-NONINTERACTIVE #:ip \"127.0.0.1\" #:port $port #:logfile \"$cw/server.log\")" \
  > "$work/gimp.log" 2>&1 9>&- &
gimp_pid=$!
deadline=$(($(date +%s) + 120))
until client "$port" 2 '(+ 1 1)' > /dev/null 2>&1; do
  kill -0 "$gimp_pid" 2>/dev/null || bail "GIMP exited before its Script-Fu server answered"
  [ "$(date +%s)" -lt $deadline ] || bail "GIMP's Script-Fu server did not answer in 120 s"
done
img=$(client "$port" 60 "(let* ((img (car (gimp-image-new 512 512 RGB)))
                 (l (car (gimp-layer-new img \"picture\" 512 512 RGB-IMAGE 100 LAYER-MODE-NORMAL))))
            (gimp-image-insert-layer img l 0 0)
            (gimp-context-set-foreground '(96 128 176))
            (gimp-drawable-fill l FILL-FOREGROUND)
            (gimp-display-new img) img)") || bail "could not make the image"
client "$port" 250 "(plug-in-sparse-regenerate #:run-mode RUN-INTERACTIVE #:image $img
   #:drawables (vector (vector-ref (car (gimp-image-get-selected-layers $img)) 0))
   #:model \"sd:$cw/tiny-sd.safetensors\" #:steps 20 #:strength 0.6 #:seed 1
   #:prompt \"a stone church at dusk, oil painting\" #:negative-prompt \"blurry, text\"
   #:guidance 7.5 #:sd-sampler \"dpmsolver++\")" > "$work/dialog.out" 2>&1 &
bg_pids=$!
deadline=$(($(date +%s) + 60))
dlg=''
while [ -z "$dlg" ] && [ "$(date +%s)" -lt $deadline ]; do
  dlg=$(xdotool search --onlyvisible --name '^Sparse Regenerate$' 2>/dev/null | head -n 1)
  [ -z "$dlg" ] && sleep 0.2
done
[ -n "$dlg" ] || bail "the dialog did not show in 60 s"
sleep 2 # the kind line and the frames settle
import -window "$dlg" -frame "$out" 2>/dev/null || import -window root "$out"
echo "# shot the dialog (window $dlg) into $out"
timeout 10 xdotool windowfocus --sync "$dlg" > /dev/null 2>&1
xdotool key --clearmodifiers Escape
client "$port" 10 "(gimp-quit 1)" > /dev/null 2>&1
exit 0
