#!/bin/sh
# The dialog with a Stable Diffusion checkpoint in the GIMP 2.10 GUI (TAP
# output): with an SD model remembered, the dialog opens on a picture with
# the Stable Diffusion settings; a prompt typed into it (Alt+P, the Prompt
# field) is what the run uses and what is remembered, and the run is an SD
# img2img snapshot.  Then a diffusers folder (made by make_sd_tiny
# --diffusers) chosen with the dialog's "Diffusers folder..." button is the
# model of the next run and is remembered as sd:FOLDER.  Last, live mode
# with that model: a change of the picture gets a sparse SD update.
# Screenshots of the
# dialog go to $SIGE_SCREENSHOT_DIR (sd-dialog*.png) when that is set.
#   run-gimp-sd-dialog-test.sh SOURCE_DIR BUILD_DIR SF_CLIENT_EXE
# Driven through the Script-Fu server (sf_client) and xdotool, as
# run-gimp-undo-test.sh; run it alone (a display, a port, keystrokes).
set -u
src=$1 build=$2 client=$3
. "$(dirname "$0")/gui-lib.sh"
gui_init sd-dialog
gimp_setup
sd_model=$work/tiny-sd.safetensors
"$build/plugin/common/tests/make_sd_tiny" "$ref" "$sd_model" > "$work/make-sd.log" 2>&1 ||
  bail "no tiny SD checkpoint: $(cat "$work/make-sd.log")"
sd_folder=$work/tiny-diffusers
"$build/plugin/common/tests/make_sd_tiny" --diffusers "$ref" "$sd_folder" > "$work/make-sd.log" 2>&1 ||
  bail "no tiny diffusers folder: $(cat "$work/make-sd.log")"
# 4 DDIM steps at strength 0.5 keep the run short
printf '[settings]\nmodel=%s\nsteps=4\nstrength=0.5\nseed=3\nprompt=a church\nnegative-prompt=blurry\nsd-sampler=ddim\n' \
  "$sd_model" > "$profile/sparse-regenerate.ini"

start_xvfb 300
start_gimp 280 -d

img=$(sf 60 "(let* ((img (car (gimp-image-new 256 256 RGB)))
                    (l (car (gimp-layer-new img 256 256 RGB-IMAGE \"picture\" 100 LAYER-MODE-NORMAL))))
               (gimp-image-insert-layer img l 0 0)
               (gimp-context-set-foreground '(96 128 176))
               (gimp-drawable-fill l FILL-FOREGROUND)
               (gimp-display-new img) img)")
"$client" "$port" 280 "(plug-in-sparse-regenerate RUN-INTERACTIVE $img (car (gimp-image-get-active-layer $img)) \"\" 0 0 -1)" \
  > "$work/dialog.out" 2>&1 &
dialog_pid=$!
bg_pids=$dialog_pid
dlg=''
deadline=$(($(date +%s) + 60))
while [ -z "$dlg" ] && [ "$(date +%s)" -lt $deadline ]; do
  dlg=$(xdotool search --onlyvisible --name '^Sparse Regenerate$' 2>/dev/null | head -n 1)
  [ -z "$dlg" ] && sleep 0.2
done
if [ -z "$dlg" ]; then
  not_ok "the dialog opens"
else
  ok "the dialog opens (window $dlg)"
  sleep 1 # GTK maps the window before it takes keys
  [ -n "${SIGE_SCREENSHOT_DIR:-}" ] && import -window root "$SIGE_SCREENSHOT_DIR/sd-dialog.png" 2>/dev/null
  timeout 10 xdotool windowfocus --sync "$dlg" > /dev/null 2>&1
  # Alt+P focuses the Prompt field (selecting its text); typing replaces it
  xdotool key --clearmodifiers alt+p
  sleep 0.3
  xdotool key --clearmodifiers ctrl+a
  xdotool type --delay 20 "a red barn"
  sleep 0.3
  [ -n "${SIGE_SCREENSHOT_DIR:-}" ] && import -window root "$SIGE_SCREENSHOT_DIR/sd-dialog-typed.png" 2>/dev/null
  xdotool key --clearmodifiers alt+o
fi
deadline=$(($(date +%s) + 200))
while kill -0 "$dialog_pid" 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do sleep 0.5; done
wait "$dialog_pid" 2>/dev/null
bg_pids=''
check "the run is a Stable Diffusion img2img snapshot" \
  grep -q '^sparse-regenerate: full pass .*\[sd-img2img\]$' "$work/gimp.log"
check "the prompt typed in the dialog is remembered" \
  grep -q '^prompt=a red barn$' "$profile/sparse-regenerate.ini"
check "the negative prompt shown is kept" \
  grep -q '^negative-prompt=blurry$' "$profile/sparse-regenerate.ini"
check "the output layer was added" eq "$(flat "$(sf 30 "(car (gimp-image-get-layers $img))")")" 2

# the dialog again: Alt+U (Diffusers folder...) opens a folder chooser; the
# folder's name typed into its location field (Ctrl+L) and Select make it the model
# find_named REGEX: a visible window so named (the plug-in's windows are
# not GIMP's class), polled up to 60 s
find_named() {
  deadline=$(($(date +%s) + 60))
  while [ "$(date +%s)" -lt $deadline ]; do
    w=$(xdotool search --onlyvisible --name "$1" 2>/dev/null | head -n 1)
    [ -n "$w" ] && { echo "$w"; return 0; }
    sleep 0.2
  done
  return 1
}
passes_before=$(passes)
"$client" "$port" 280 "(plug-in-sparse-regenerate RUN-INTERACTIVE $img (car (gimp-image-get-active-layer $img)) \"\" 0 0 -1)" \
  > "$work/dialog2.out" 2>&1 &
dialog_pid=$!
bg_pids=$dialog_pid
dlg=$(find_named '^Sparse Regenerate$')
if [ -z "$dlg" ]; then
  not_ok "the dialog opens again"
else
  sleep 1
  timeout 10 xdotool windowfocus --sync "$dlg" > /dev/null 2>&1
  xdotool key --clearmodifiers alt+u
  fc=$(find_named '^Choose a Stable Diffusion folder')
  if [ -z "$fc" ]; then
    not_ok "Diffusers folder... opens a folder chooser"
  else
    ok "Diffusers folder... opens a folder chooser (window $fc)"
    sleep 1
    timeout 10 xdotool windowfocus --sync "$fc" > /dev/null 2>&1
    xdotool key --clearmodifiers ctrl+l
    sleep 0.3
    # the chooser opens in the folder of the model in use ($work), where
    # the diffusers folder is: its name is enough
    xdotool type --delay 20 "$(basename "$sd_folder")"
    sleep 0.5
    [ -n "${SIGE_SCREENSHOT_DIR:-}" ] && import -window root "$SIGE_SCREENSHOT_DIR/sd-dialog-folder-chooser.png" 2>/dev/null
    xdotool key --clearmodifiers alt+s
    # the chooser closes; the dialog says which folder and what it holds
    deadline=$(($(date +%s) + 20))
    while xdotool getwindowname "$fc" > /dev/null 2>&1 && [ "$(date +%s)" -lt $deadline ]; do sleep 0.2; done
    sleep 1
    [ -n "${SIGE_SCREENSHOT_DIR:-}" ] && import -window root "$SIGE_SCREENSHOT_DIR/sd-dialog-folder.png" 2>/dev/null
    timeout 10 xdotool windowfocus --sync "$dlg" > /dev/null 2>&1
  fi
  xdotool key --clearmodifiers alt+o
fi
deadline=$(($(date +%s) + 200))
while kill -0 "$dialog_pid" 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do sleep 0.5; done
wait "$dialog_pid" 2>/dev/null
bg_pids=''
check "the folder is remembered as the model (sd:FOLDER)" \
  grep -qx "model=sd:$sd_folder" "$profile/sparse-regenerate.ini"
check "the folder's model ran: a new Stable Diffusion img2img snapshot" \
  sh -c "[ $(passes) -eq $((passes_before + 1)) ] && grep '^sparse-regenerate: .* pass ' '$work/gimp.log' | tail -n 1 | grep -q '^sparse-regenerate: full pass .*\[sd-img2img\]\$'"
check "the run with the folder reported no error" \
  sh -c "! grep -qi 'error' '$work/dialog2.out'"

# Live mode with the Stable Diffusion model of the last run (the folder):
# started from the command search (as from the menu; the procedure runs
# until stopped, the Script-Fu server answers meanwhile), a rectangle
# filled into the picture (one Script-Fu request: the selection is gone
# again before live mode's next read) is followed by a sparse SD img2img
# update; Escape in its window stops it.
logged() { grep -q "$1" "$work/gimp.log"; }
wait_for() {
  wf_deadline=$(($(date +%s) + $1)); shift
  until "$@"; do
    [ "$(date +%s)" -lt $wf_deadline ] || return 1
    sleep 0.1
  done
}
live_started=no
if win=$(image_window "$img"); then
  press "$win" slash
  sw=$(find_named '^Search Actions$')
  if [ -n "$sw" ]; then
    timeout 10 xdotool windowfocus --sync "$sw" > /dev/null 2>&1
    xdotool type --delay 20 "Sparse Regenerate Live"
    sleep 1
    xdotool key Return
    wait_for 120 logged 'sparse-regenerate: live: watching layer' && live_started=yes
  fi
fi
if [ "$live_started" = yes ]; then
  ok "live mode starts with a Stable Diffusion model"
  n_sd=$(grep -c '^sparse-regenerate: sparse pass .*\[sd-img2img\]$' "$work/gimp.log")
  # the start's own update (nothing to do) is the first
  n_up=$(grep -c 'sparse-regenerate: live update ' "$work/gimp.log")
  sf 30 "(let ((l (car (gimp-image-get-active-layer $img))))
           (gimp-image-select-rectangle $img CHANNEL-OP-REPLACE 24 24 16 16)
           (gimp-context-set-foreground '(250 20 20))
           (gimp-edit-fill l FILL-FOREGROUND)
           (gimp-selection-none $img))" > /dev/null
  if wait_for 120 logged "sparse-regenerate: live update $((n_up + 1)) done"; then
    ok "a change of the picture is followed by a live update"
  else
    not_ok "a change of the picture is followed by a live update within 120 s"
  fi
  check "the live update is a sparse Stable Diffusion img2img pass" \
    eq "$(grep -c '^sparse-regenerate: sparse pass .*\[sd-img2img\]$' "$work/gimp.log")" $((n_sd + 1))
  [ -n "${SIGE_SCREENSHOT_DIR:-}" ] && import -window root "$SIGE_SCREENSHOT_DIR/sd-live.png" 2>/dev/null
  lw=$(find_named '^Sparse Regenerate Live$')
  press "$lw" Escape
  if wait_for 20 logged 'sparse-regenerate: live: stopped'; then ok "Escape stops live mode"; else not_ok "Escape stops live mode"; fi
  check "no live update failed" sh -c "! grep -q 'sparse-regenerate: live: error' '$work/gimp.log'"
else
  not_ok "live mode starts with a Stable Diffusion model (within 120 s)"
fi
gimp_quit
gui_finish "sd dialog test: $(elapsed "$t_start") s in all"
