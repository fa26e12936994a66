#!/bin/sh
# GUI test of the layer traps and the first run's note (issue 16, points 3
# and 4), in the real gimp-2.10 (TAP output).
#   run-gimp-layers-test.sh SOURCE_DIR BUILD_DIR PNG_COMPARE_EXE SF_CLIENT_EXE
# As run-gimp-undo-test.sh: a private Xvfb display and profile, the
# Script-Fu server (sf_client; helpers in undo.scm) and xdotool.  The
# regeneration is run as a GIMP action, as a click on its menu entry would
# run it (F7 in the profile's menurc), which is what Filters > Repeat
# (Ctrl+F) remembers; a PDB call from Script-Fu would not count.
#  labels: F7 + OK runs a full pass; the label layer stays active and the
#    output layer lets the labels show through; Ctrl+F with the output
#    layer active regenerates sparsely from the labels (no third layer);
#    a script's run on the output layer uses its source; an
#    output whose source is gone is refused with a message saying so.
#  ddpm: the first run's note reaches GIMP's messages (the console handler:
#    the log), in two lines; a sparse run adds none.
set -u
src=$1 build=$2 compare=$3 client=$4
. "$(dirname "$0")/gui-lib.sh"
gui_init layers
shots=$build/tests/gimp-layers
mkdir -p "$shots"
diag_shot=$shots/failure.png
gimp_setup
bind_f7
start_xvfb 440
start_gimp 400 -d
load_undo_scm

# the messages (console)
count() { grep -c "$1" "$work/gimp.log"; }
# layer facts: the layer count, the active layer, the top layer and its opacity
facts() {
  flat "$(sf 30 "(list (n-layers img) (car (gimp-image-get-active-layer img))
                       (vector-ref (cadr (gimp-image-get-layers img)) 0)
                       (car (gimp-layer-get-opacity (vector-ref (cadr (gimp-image-get-layers img)) 0))))")"
}

# ---- labels: the menu, Ctrl+F on the output, Reset, Ctrl+F ---------------
r=$(sf 60 "(begin (define img (car (file-png-load RUN-NONINTERACTIVE (path \"labels.png\") \"labels.png\")))
                  (define src (car (gimp-image-get-active-layer img)))
                  (define disp (car (gimp-display-new img))) (gimp-displays-flush)
                  (list img src))") || bail "could not open the label map: $r"
# shellcheck disable=SC2046
set -- $(flat "$r")
img=$1 src_layer=$2
win=$(window "sige-image-$img *") || bail "the image window did not appear"
ok "labels: image $img shown in window $win"

press "$win" F7 || bail "could not press F7"
dlg=$(window 'Sparse Regenerate') || bail "F7 did not open the dialog"
sleep 1
import -window root "$shots/dialog.png" 2>/dev/null
press "$dlg" alt+o || bail "could not press OK"
check "labels: F7 and OK run a full pass" wait_until passes 1
check "labels: the pass was the snapshot" eq "$(last_pass)" full
# shellcheck disable=SC2046
set -- $(facts)
out_layer=$3
check "labels: the run adds the output layer on top" sh -c "[ '$1' = 2 ] && [ '$3' != '$src_layer' ]"
check "labels: after the run the label layer is still the active one" eq "$2" "$src_layer"
check "labels: the output lets the labels show through (opacity 50 %)" eq "$4" 50.0
import -window root "$shots/labels-run1.png" 2>/dev/null

sf 30 "(begin (edit img src '(0 0 142) 150 150 60 30 300 40 20 20) (gimp-selection-none img)
              (gimp-image-set-active-layer img $out_layer) (save img $out_layer \"run1.png\"))" > /dev/null
check "labels: the output layer is made active" eq "$(facts | cut -d' ' -f2)" "$out_layer"
press "$win" ctrl+f
check "labels: Ctrl+F with the output layer active runs" wait_until passes 2
check "labels: ... a sparse pass from the label layer's snapshot" eq "$(last_pass)" sparse
sf 30 "(save img $out_layer \"run2.png\")" > /dev/null
# shellcheck disable=SC2046
set -- $(facts)
check "labels: ... into the same output layer (2 layers, no third)" eq "$1 $3" "2 $out_layer"
check "labels: ... which shows the edit" "$compare" "$work/run1.png" "$work/run2.png" --differ
check "labels: ... and the label layer is active again" eq "$2" "$src_layer"

# Ctrl+F after the menu's Reset: run-gimp-repeat-test.sh (gimp_repeat).

r=$(sf 300 "(regen img $out_layer \"\" 0 0 -1)")
check "labels: a script's run on the output layer regenerates its source into it" sh -c \
  "[ '$(flat "$r")' = '$out_layer' ] && [ \$(echo '$(facts)' | cut -d' ' -f1) = 2 ]"
r=$(sf 60 "(begin (define orphan (car (gimp-layer-copy $out_layer FALSE)))
                  (gimp-image-insert-layer img orphan 0 0)
                  (gimp-item-attach-parasite orphan (list \"sparse-regenerate-output\" 0 \"999999\"))
                  (regen img orphan \"\" 0 0 -1))")
check "labels: an output layer whose source is gone is refused, saying why" sh -c \
  "echo '$r' | grep -q 'is the output of Sparse Regenerate, and the layer it was made from is no longer'"
sf 30 "(gimp-display-delete disp)" > /dev/null

# ---- ddpm: the first run's note ------------------------------------------
if [ -f "$ddpm_model" ]; then
  sf 60 "(begin (define ddpm-new (church-image)) (define dimg (car ddpm-new))
                (define dsrc (cadr ddpm-new)) (define ddisp (car (gimp-display-new dimg)))
                (gimp-message-set-handler CONSOLE))" > /dev/null
  p0=$(passes)
  sf 300 "(regen dimg dsrc \"$ddpm_model\" 3 0.2 7)" > /dev/null
  check "ddpm: the first run is a snapshot" sh -c "[ $(passes) = $((p0 + 1)) ] && [ $(last_pass) = full ]"
  check "ddpm: the note says what happened and what to do next" sh -c \
    "grep -q 'snapshot taken' '$work/gimp.log' && grep -q 'Next: paint on the picture' '$work/gimp.log'"
  sf 60 "(begin (edit dimg dsrc '(200 30 30) 150 140 40 30 20 200 30 30)
                (regen dimg dsrc \"$ddpm_model\" 3 0.2 7))" > /dev/null
  check "ddpm: a sparse run adds no note" eq "$(count 'snapshot taken')" 1
else
  not_ok "ddpm: the reference weights $ddpm_model are missing"
fi

# ---- the end ------------------------------------------------------------
gimp_quit_checks
gui_finish "layers test: $(elapsed "$t_start") s in all"
