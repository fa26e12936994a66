#!/bin/sh
# GUI test: Filters > Repeat (Ctrl+F) stays on the regeneration after the
# menu's Reset (issue 16, point 10), in the real gimp-2.10 (TAP output).
#   run-gimp-repeat-test.sh SOURCE_DIR BUILD_DIR PNG_COMPARE_EXE SF_CLIENT_EXE
# As run-gimp-layers-test.sh: a private Xvfb display and profile, the
# Script-Fu server (sf_client; helpers in undo.scm) and xdotool.  GIMP
# remembers for Repeat only what runs as a GIMP action (a menu entry, its
# key, the command search), never a PDB call from Script-Fu, so both the
# regeneration and the Reset run as actions here: the regeneration from
# its menu entry's key (F7 in the profile's menurc, as a user could set
# it), the Reset from Filters > Generative, reached with the keyboard.
# GIMP 2.10 makes an action the one Repeat repeats when its procedure's
# second argument is an image; the menu's Reset takes a display there
# (plugin/gimp210/main.c), which this test shows to work:
#   F7 + OK: a full pass; an edit and Ctrl+F: a sparse pass (Repeat is the
#   regeneration); Reset from the menu: its message, no pass; Ctrl+F: a
#   full pass (the snapshot is gone, so the Reset did run) and no second
#   Reset message (Repeat did not repeat the Reset); Shift+Ctrl+F
#   (Re-Show) opens the regeneration's dialog, not the Reset.
# Screenshots of the Filters menu before and after the Reset (its first
# entries name what Repeat and Re-Show run) go to BUILD_DIR/tests/gimp-repeat.
set -u
src=$1 build=$2 compare=$3 client=$4
. "$(dirname "$0")/gui-lib.sh"
gui_init repeat
shots=$build/tests/gimp-repeat
mkdir -p "$shots"
diag_shot=$shots/failure.png
gimp_setup
bind_f7
start_xvfb 320
start_gimp 280 -d
load_undo_scm

# the plug-in's line per Reset (any run mode), and its message to the user
resets() { grep -c '^sparse-regenerate: reset of layer ' "$work/gimp.log"; }
reset_msgs() { grep -c 'the snapshot was reset; the next run is a full pass' "$work/gimp.log"; }
# stays COMMAND VALUE S: COMMAND still prints VALUE after S seconds
stays() {
  sleep "$3"
  [ "$($1)" = "$2" ] || { echo "got '$($1)', expected '$2'"; return 1; }
}
# filters_menu NAME: open Filters (its mnemonic, Alt+R) in the image
# window, take a screenshot NAME.png, close it
filters_menu() {
  press "$win" alt+r || return 1
  sleep 1
  import -window root "$shots/$1.png" 2>/dev/null
  xdotool key Escape
  sleep 0.5
}

r=$(sf 60 "(begin (define img (car (file-png-load RUN-NONINTERACTIVE (path \"labels.png\") \"labels.png\")))
                  (define src (car (gimp-image-get-active-layer img)))
                  (define disp (car (gimp-display-new img))) (gimp-displays-flush)
                  (list img src))") || bail "could not open the label map: $r"
# shellcheck disable=SC2046
set -- $(flat "$r")
img=$1 src_layer=$2
win=$(window "sige-image-$img *") || bail "the image window did not appear"
ok "image $img shown in window $win"

press "$win" F7 || bail "could not press F7"
dlg=$(window 'Sparse Regenerate') || bail "F7 did not open the dialog"
sleep 1
press "$dlg" alt+o || bail "could not press OK"
check "F7 and OK run a full pass" wait_until passes 1
sf 30 "(edit img src '(0 0 142) 150 150 60 30 300 40 20 20)" > /dev/null
press "$win" ctrl+f || bail "could not press Ctrl+F"
check "after an edit, Ctrl+F repeats the regeneration: a sparse pass" wait_until passes 2
check "... sparse" eq "$(last_pass)" sparse
filters_menu filters-before-reset

# Filters > Generative > Reset Sparse Regenerate Snapshot, with the keys a
# user without a mouse would press: Generative is the third entry from the
# end of Filters (then Script-Fu, then GIMP's Goat-exercise) and Reset the
# first of its submenu (GIMP sorts the entries by label).  A wrong entry
# fails the checks below (no Reset message, or a pass); the screenshot
# shows what was chosen (the status bar shows the entry's tooltip).
press "$win" alt+r || bail "could not open the Filters menu"
sleep 0.7
for k in End Up Up Right; do xdotool key $k; sleep 0.3; done
sleep 0.7
import -window root "$shots/reset-menu-entry.png" 2>/dev/null
xdotool key Return
check "Reset from the menu runs" wait_until resets 1
check "... and tells the user" eq "$(reset_msgs)" 1
check "... and no pass" eq "$(passes)" 2
filters_menu filters-after-reset

press "$win" ctrl+f || bail "could not press Ctrl+F"
check "Ctrl+F after the Reset runs the regeneration" wait_until passes 3
check "... a full pass (the Reset did forget the snapshot)" eq "$(last_pass)" full
check "... and not the Reset again (still one Reset, 2 s later)" stays resets 1 2
# shellcheck disable=SC2046
set -- $(flat "$(sf 30 "(list (n-layers img) (car (gimp-image-get-active-layer img)))")")
check "... into the same output layer, with the label layer active" eq "$1 $2" "2 $src_layer"

# Re-Show: the regeneration's dialog, not the Reset
press "$win" shift+ctrl+f || bail "could not press Shift+Ctrl+F"
if dlg=$(window 'Sparse Regenerate'); then
  ok "Shift+Ctrl+F (Re-Show) opens the Sparse Regenerate dialog"
  sleep 1
  import -window root "$shots/reshow.png" 2>/dev/null
  press "$dlg" Escape
  check "... which cancels without a pass or a Reset" stays passes 3 2
  check "... (no Reset)" eq "$(resets)" 1
else
  not_ok "Shift+Ctrl+F (Re-Show) opens the Sparse Regenerate dialog"
fi

# ---- the end ------------------------------------------------------------
gimp_quit_checks
gui_finish "repeat test: $(elapsed "$t_start") s in all"
