#!/bin/sh
# End-to-end test of undo in the GIMP GUI (TAP output): one Ctrl+Z undoes
# one run of Sparse Regenerate.
#   run-gimp-undo-test.sh SOURCE_DIR BUILD_DIR PNG_COMPARE_EXE SF_CLIENT_EXE
# GIMP 2.10's PDB has no undo procedure, so this runs the real gimp-2.10 on
# a private Xvfb display with a private profile, drives it through the
# Script-Fu server (sf_client; helpers in undo.scm) and presses the keys
# with xdotool in the image window.  Per model kind (GauGAN on a label
# layer, DDPM on an image layer with the tiny church UNet of the reference
# vectors in $SIGE_REFERENCE_DIR): run 1 (full), a painted edit, run 2
# (sparse); then Ctrl+Z must bring back run 1's output exactly and leave the
# output layer, the edit and the selection in place; a second Ctrl+Z takes
# back the edit, a third run 1 (the output layer goes); Ctrl+Y three times
# brings all back; a run after an undo writes run 2's output again; and a
# run with nothing to do adds no undo step.  The same on an indexed label
# map (run 1 converts the image to RGB; the third Ctrl+Z makes it indexed
# again), and the menu entry reached from the GUI on an indexed image.
# Run it alone: it takes a display and a TCP port on 127.0.0.1, and its
# keystrokes must not race another GIMP's.
set -u
src=$1 build=$2 compare=$3 client=$4
. "$(dirname "$0")/gui-lib.sh"
gui_init undo
gimp_setup
start_xvfb 440
start_gimp 400 -d
load_undo_scm

# key C WINDOW KEY: press KEY and wait (up to 20 s) until GIMP has acted
# on it, that is until the state of case C's image changes
key() {
  before=$(sf 30 "(state $1-img $1-src $1-out)") || return 1
  t_key=$(date +%s.%N)
  press "$2" "$3" || return 1
  deadline=$(($(date +%s) + 20))
  while [ "$(date +%s)" -lt $deadline ]; do
    now=$(sf 30 "(state $1-img $1-src $1-out)") || return 1
    if [ "$now" != "$before" ]; then
      echo "# $3: GIMP acted on it after $(elapsed "$t_key") s"
      return 0
    fi
    sleep 0.1
  done
  echo "# $3: nothing changed in 20 s"
  return 1
}

# ---- one case -----------------------------------------------------------
# pressed C WINDOW KEY NAME: press KEY, one check that GIMP acted on it
pressed() {
  if key "$1" "$2" "$3"; then ok "$1: $4 changed the image"; else not_ok "$1: $4 changed the image"; fi
}

# undo_case C SETUP RUN_ARGS EDIT_ARGS: SETUP is Script-Fu that defines
# C-img (with an empty undo stack) and its layer C-src; RUN_ARGS are the
# plug-in's model, steps, strength and seed; EDIT_ARGS the colour and
# rectangle painted and the rectangle selected afterwards.
undo_case() {
  c=$1 setup=$2 args=$3 edit=$4
  t_case=$(date +%s.%N)
  img=$(sf 60 "(begin $setup (define $c-out 0) (define $c-disp (car (gimp-display-new $c-img)))
                (save $c-img $c-src \"$c-orig.png\") $c-img)") || {
    not_ok "$c: the image is shown in a display"; return; }
  win=$(image_window "$img") || { not_ok "$c: the image's window appears"; return; }
  ok "$c: image $img shown in window $win"

  r=$(sf 300 "(begin (set! $c-out (regen $c-img $c-src $args)) (save $c-img $c-out \"$c-run1.png\")
              (list $c-out (n-layers $c-img)))") || { not_ok "$c: run 1"; note "$r"; return; }
  # shellcheck disable=SC2046 # the answer's words
  set -- $(flat "$r")
  out1=$1
  check "$c: run 1 (full pass) adds the output layer" eq "$2" 2
  sel=$(sf 30 "(begin (edit $c-img $c-src $edit) (save $c-img $c-src \"$c-edited.png\")
               (selection $c-img))") || { not_ok "$c: the edit"; note "$sel"; return; }
  r=$(sf 300 "(begin (set! $c-out (regen $c-img $c-src $args)) (save $c-img $c-out \"$c-run2.png\")
              (list $c-out (n-layers $c-img)))") || { not_ok "$c: run 2"; note "$r"; return; }
  check "$c: run 2 (sparse) writes into the same layer" eq "$(flat "$r")" "$out1 2"
  check "$c: run 2 changed the output (else an undo could not be told from none)" \
    "$compare" "$work/$c-run1.png" "$work/$c-run2.png" --differ

  # one Ctrl+Z: exactly run 2 is taken back
  pressed "$c" "$win" ctrl+z "Ctrl+Z"
  r=$(sf 30 "(begin (save $c-img $c-out \"$c-undo1.png\") (save $c-img $c-src \"$c-undo1-src.png\")
             (list (car (gimp-item-is-valid $c-out)) (n-layers $c-img) (selection $c-img)))") ||
    { not_ok "$c: after one Ctrl+Z the output layer can be saved"; note "$r"; return; }
  # shellcheck disable=SC2046 # the answer's words
  set -- $(flat "$r")
  check "$c: one Ctrl+Z keeps the output layer (valid, 2 layers)" eq "$1 $2" "1 2"
  check "$c: one Ctrl+Z brings back run 1's output exactly" same "$c-run1.png" "$c-undo1.png"
  check "$c: one Ctrl+Z leaves the edit in the source" same "$c-edited.png" "$c-undo1-src.png"
  shift 2
  check "$c: one Ctrl+Z leaves the selection of before run 2" eq "$*" "$(flat "$sel")"

  # a second Ctrl+Z takes back the edit, a third run 1
  pressed "$c" "$win" ctrl+z "second Ctrl+Z"
  r=$(sf 30 "(begin (save $c-img $c-out \"$c-undo2.png\") (save $c-img $c-src \"$c-undo2-src.png\")
             (n-layers $c-img))")
  check "$c: second Ctrl+Z undoes the edit" same "$c-orig.png" "$c-undo2-src.png"
  check "$c: second Ctrl+Z leaves run 1's output and 2 layers" sh -c \
    "[ '$(flat "$r")' = 2 ] && '$compare' '$work/$c-run1.png' '$work/$c-undo2.png' --max-diff 0"
  pressed "$c" "$win" ctrl+z "third Ctrl+Z"
  r=$(sf 30 "(list (car (gimp-item-is-valid $c-out)) (n-layers $c-img) (car (gimp-image-base-type $c-img)))")
  # run 1 on an indexed image converted it to RGB in its undo step
  mode=0; [ "$c" = indexed ] && mode=2
  check "$c: third Ctrl+Z undoes run 1: the output layer is gone (image mode $mode)" \
    eq "$(flat "$r")" "0 1 $mode"

  # Ctrl+Y three times: run 1, the edit and run 2 are back
  key "$c" "$win" ctrl+y && key "$c" "$win" ctrl+y && key "$c" "$win" ctrl+y
  rc=$?
  r=$(sf 30 "(begin (save $c-img $c-out \"$c-redo.png\") (save $c-img $c-src \"$c-redo-src.png\")
             (n-layers $c-img))")
  check "$c: Ctrl+Y three times redoes run 1, the edit and run 2" sh -c \
    "[ $rc = 0 ] && [ '$(flat "$r")' = 2 ] &&
     '$compare' '$work/$c-edited.png' '$work/$c-redo-src.png' --max-diff 0 &&
     '$compare' '$work/$c-run2.png' '$work/$c-redo.png' --max-diff 0"

  # undo run 2 again, then run on the unchanged source: the plug-in has
  # nothing to compute but finds the output layer behind its output and
  # writes run 2's output again
  key "$c" "$win" ctrl+z
  rc=$?
  r=$(sf 300 "(begin (set! $c-out (regen $c-img $c-src $args)) (save $c-img $c-out \"$c-run3.png\")
              (list $c-out (n-layers $c-img)))")
  check "$c: a run after Ctrl+Z writes run 2's output again, into the same layer" sh -c \
    "[ $rc = 0 ] && [ '$(flat "$r")' = '$out1 2' ] &&
     '$compare' '$work/$c-run2.png' '$work/$c-run3.png' --max-diff 0"

  # a run with nothing to do leaves no undo step: the next Ctrl+Z takes
  # back run 3
  r=$(sf 300 "(begin (regen $c-img $c-src $args) (n-layers $c-img))")
  key "$c" "$win" ctrl+z
  rc=$?
  sf 30 "(save $c-img $c-out \"$c-undo3.png\")" > /dev/null
  check "$c: a run with nothing to do adds no undo step (Ctrl+Z then undoes run 3)" sh -c \
    "[ $rc = 0 ] && [ '$(flat "$r")' = 2 ] && '$compare' '$work/$c-run1.png' '$work/$c-undo3.png' --max-diff 0"

  sf 30 "(gimp-display-delete $c-disp)" > /dev/null
  echo "# $c case: $(elapsed "$t_case") s"
}

undo_case labels \
  "(define labels-img (car (file-png-load RUN-NONINTERACTIVE (path \"labels.png\") \"labels.png\")))
   (define labels-src (car (gimp-image-get-active-layer labels-img)))" \
  '"" 0 0 -1' "'(0 0 142) 150 150 60 30 300 40 20 20"
# an indexed label map: run 1 converts the image to RGB in its own undo step
undo_case indexed \
  "(define indexed-img (car (file-png-load RUN-NONINTERACTIVE (path \"labels.png\") \"labels.png\")))
   (gimp-image-undo-disable indexed-img)
   (gimp-image-convert-indexed indexed-img CONVERT-DITHER-NONE CONVERT-PALETTE-GENERATE 256 FALSE FALSE \"\")
   (gimp-image-undo-enable indexed-img)
   (define indexed-src (car (gimp-image-get-active-layer indexed-img)))" \
  '"" 0 0 -1' "'(0 0 142) 150 150 60 30 300 40 20 20"

# The menu entry on an indexed label map, as a user reaches it: GIMP's
# action search ("/") finds "Sparse Regenerate...", Return activates it
# (an insensitive, greyed-out action does not run), alt+O presses the
# dialog's OK; the run must add the output layer.
t_menu=$(date +%s.%N)
img=$(sf 60 "(begin (define menu-img (car (file-png-load RUN-NONINTERACTIVE (path \"labels.png\") \"labels.png\")))
              (gimp-image-convert-indexed menu-img CONVERT-DITHER-NONE CONVERT-PALETTE-GENERATE 256 FALSE FALSE \"\")
              (define menu-disp (car (gimp-display-new menu-img))) menu-img)")
win=$(image_window "$img")
menu_layers=
if [ -n "$win" ] && press "$win" slash; then
  # the search window takes the focus once shown
  deadline=$(($(date +%s) + 20)) search=
  while [ -z "$search" ] && [ "$(date +%s)" -lt $deadline ]; do
    search=$(xdotool search --onlyvisible --name '^Search Actions$' 2>/dev/null | head -n 1)
    sleep 0.2
  done
  if [ -n "$search" ]; then
    timeout 10 xdotool windowfocus --sync "$search" > /dev/null 2>&1
    xdotool type --delay 30 "Sparse Regenerate..."
    sleep 1
    import -window root "$work/menu-search.png" 2>/dev/null
    xdotool key --clearmodifiers Return
    deadline=$(($(date +%s) + 30)) dlg=
    while [ -z "$dlg" ] && [ "$(date +%s)" -lt $deadline ]; do
      dlg=$(xdotool search --onlyvisible --name '^Sparse Regenerate$' 2>/dev/null | head -n 1)
      sleep 0.2
    done
    if [ -n "$dlg" ]; then
      import -window root "$work/menu-dialog.png" 2>/dev/null
      timeout 10 xdotool windowfocus --sync "$dlg" > /dev/null 2>&1
      xdotool key --clearmodifiers alt+o
      deadline=$(($(date +%s) + 120))
      while [ "$(date +%s)" -lt $deadline ]; do
        menu_layers=$(sf 30 "(list (n-layers menu-img) (car (gimp-image-base-type menu-img)))")
        [ "$(flat "$menu_layers")" = "2 0" ] && break
        sleep 0.5
      done
    else
      note "no Sparse Regenerate dialog after Return in the action search"
    fi
  else
    note "the action search window did not appear"
  fi
fi
[ -n "${SIGE_UNDO_SHOTS:-}" ] && cp "$work"/menu-*.png "$SIGE_UNDO_SHOTS"/ 2>/dev/null
check "indexed: the menu entry runs from the GUI and adds the output layer (RGB image)" \
  eq "$(flat "$menu_layers")" "2 0"
sf 30 "(gimp-display-delete menu-disp)" > /dev/null
echo "# menu case: $(elapsed "$t_menu") s"

# DDPM: 3 steps of DPM-Solver++ at strength 0.2, as in e2e-ddpm.scm; the
# DDPM case fails (never skips) without the reference weights
if [ -f "$ddpm_model" ]; then
  undo_case ddpm \
    "(define ddpm-new (church-image)) (define ddpm-img (car ddpm-new)) (define ddpm-src (cadr ddpm-new))" \
    "\"$ddpm_model\" 3 0.2 7" "'(200 30 30) 150 140 40 30 20 200 30 30"
else
  not_ok "ddpm: the reference weights $ddpm_model are missing (get ../shared/reference or configure -Dreference_dir=...)"
fi

# Stable Diffusion: the tiny checkpoint of the reference weights (as in
# e2e-sd.scm), 4 DDIM steps at strength 0.5.  The edit leaves a rectangle
# selected, so that run 2 inpaints it (a new inpainting snapshot and the
# sparse inpainting); run 3 and the run with nothing to do are sparse
# inpaintings of the same selection.
sd_model=$work/tiny-sd.safetensors
if "$build/plugin/common/tests/make_sd_tiny" "$ref" "$sd_model" > "$work/make-sd.log" 2>&1; then
  undo_case sd \
    "(define sd-new (church-image)) (define sd-img (car sd-new)) (define sd-src (cadr sd-new))" \
    "\"sd:$sd_model\" 4 0.5 3" "'(250 20 20) 16 16 16 16 192 192 32 32"
else
  not_ok "sd: no tiny checkpoint: $(cat "$work/make-sd.log")"
fi

# ---- the end ------------------------------------------------------------
gimp_quit_checks
gui_finish "undo test: $(elapsed "$t_start") s in all"
