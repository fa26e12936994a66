#!/bin/sh
# GUI test of cancelling and closing a run (TAP output), issue 16 points 1,
# 2 and 6, in the real gimp-2.10 on a private Xvfb display, driven through
# the Script-Fu server (sf_client; helpers in undo.scm) and xdotool:
#   run-gimp-cancel-test.sh SOURCE_DIR BUILD_DIR PNG_COMPARE_EXE SF_CLIENT_EXE
# A long DDPM snapshot (the tiny church UNet of $SIGE_REFERENCE_DIR, many
# steps) started from the menu (dialog, OK) and again with Ctrl+F (no
# dialog) is cancelled with the Cancel on screen; each time the pass must
# stop within 0.5 s, the layer stay as it was, the resident plug-in stay
# alive with its procedure and its sessions, and no progress window stay on
# screen; a following Ctrl+F on a layer with a snapshot is sparse and its
# window closes; an error in a Ctrl+F run is reported once.
set -u
src=$1 build=$2 compare=$3 client=$4
. "$(dirname "$0")/gui-lib.sh"
gui_init cancel
gimp_setup
start_xvfb 200
start_gimp 180 -d
load_undo_scm

[ -f "$ddpm_model" ] ||
  bail "the reference weights $ddpm_model are missing (get ../shared/reference or configure -Dreference_dir=...)"
shots=$build/gimp-cancel-shots
rm -rf "$shots" && mkdir -p "$shots"
# Enough steps for a snapshot long enough to cancel in the middle (a few
# seconds on 2 cores) and few enough for the sparse run afterwards.
steps=${SIGE_CANCEL_STEPS:-4}
args="\"$ddpm_model\" $steps 1.0 7"

# the resident plug-in's processes (the private profile makes them ours)
plugin_pids() { pgrep -f "$profile/plug-ins/" | sort | tr '\n' ' '; }
proc_exists() { flat "$(sf 30 '(gimp-procedural-db-proc-exists "plug-in-sparse-regenerate")')"; }
# the visible progress windows (the title says "running")
progress_windows() { xdotool search --onlyvisible --name 'Sparse Regenerate .running' 2>/dev/null; }
shot() { import -window root "$shots/$1.png" 2>/dev/null; }
log_count() { grep -c "$1" "$work/gimp.log" 2>/dev/null || true; }
# wait_log PATTERN COUNT TIMEOUT: until the log has COUNT lines matching
wait_log() {
  deadline=$(awk "BEGIN { printf \"%.3f\", $(date +%s.%N) + $3 }")
  while [ "$(log_count "$1")" -lt "$2" ]; do
    awk "BEGIN { exit !($(date +%s.%N) > $deadline) }" && return 1
    sleep 0.02
  done
}
# wait_window: the id of the progress window once it shows (up to 20 s)
wait_window() {
  i=0
  while [ $i -lt 400 ]; do
    w=$(progress_windows | head -n 1)
    [ -n "$w" ] && { echo "$w"; return 0; }
    sleep 0.05; i=$((i + 1))
  done
  return 1
}
# cancel_run C WHAT: with a run of case C on screen, press the Cancel of the
# window it shows, then check what a user needs after a Cancel
cancel_run() {
  c=$1 what=$2
  pw=$(wait_window) || { not_ok "$c: $what shows a progress window with a Cancel"; return; }
  ok "$c: $what shows a progress window with a Cancel"
  sleep 1 # well into the snapshot
  shot "$c-running"
  check "$c: the run is still going after 1 s (else the Cancel proves nothing)" \
    eq "$(log_count 'sparse-regenerate: cancelled')" "$cancels"
  eval "$(xdotool getwindowgeometry --shell "$pw")"
  # the Cancel: the only button, at the bottom right of the window
  n_cancel=$((cancels + 1))
  t_click=$(date +%s.%N)
  xdotool mousemove $((X + WIDTH - 40)) $((Y + HEIGHT - 20)) click 1
  if wait_log 'sparse-regenerate: cancelled' "$n_cancel" 5; then
    lat=$(elapsed "$t_click")
    # 0.5 s is the issue's bound (the measure includes this script's 20 ms
    # poll).  The engine looks at the flag between layers, and on a machine
    # loaded past its cores a layer of the tiny UNet alone can take longer:
    # there the bound is 2 s, said in the check's name.
    load=$(cut -d ' ' -f 1 /proc/loadavg)
    bound=$(awk "BEGIN { print ($load > $(nproc) ? 2 : 0.5) }")
    check "$c: the pass stops within $bound s of the Cancel (${lat} s, load $load)" \
      awk "BEGIN { exit !($lat <= $bound) }"
  else
    not_ok "$c: the pass stops after the Cancel"
  fi
  cancels=$n_cancel
  check "$c: no progress window is left after the cancelled run" eq "$(progress_windows)" ""
  shot "$c-cancelled"
  r=$(sf 30 "(begin (save $c-img $c-src \"$c-after.png\") (n-layers $c-img))")
  check "$c: the cancelled run leaves the image as it was (one layer)" eq "$(flat "$r")" 1
  check "$c: the cancelled run leaves the layer's pixels as they were" same "$c-orig.png" "$c-after.png"
  check "$c: the resident plug-in lives on (same processes)" eq "$(plugin_pids)" "$pids"
  check "$c: its procedure is still in the PDB" eq "$(proc_exists)" 1
}

# search_run WINDOW LABEL: runs the menu item LABEL through GIMP's action
# search ("/"), as a user would run it from the menu
search_run() {
  press "$1" slash || return 1
  search=''
  i=0
  while [ -z "$search" ] && [ $i -lt 200 ]; do
    search=$(xdotool search --onlyvisible --name '^Search Actions$' 2>/dev/null | head -n 1)
    sleep 0.05; i=$((i + 1))
  done
  [ -n "$search" ] || { shot no-search; return 1; }
  # no window manager: the search window gets the focus from xdotool
  timeout 10 xdotool windowfocus --sync "$search" > /dev/null 2>&1
  xdotool type --delay 30 "$2"
  sleep 1
  shot "search-$(echo "$2" | tr -cd 'A-Za-z')"
  xdotool key Return
}

# ---- A: a snapshot through Script-Fu, kept for the sparse run later -----
img=$(sf 60 "(begin (define a-new (church-image)) (define a-img (car a-new))
               (define a-src (cadr a-new)) (define a-disp (car (gimp-display-new a-img))) a-img)") ||
  bail "could not make the first image"
img_a=$img
win_a=$(image_window "$img") || bail "image $img has no window"
t=$(date +%s.%N)
r=$(sf 120 "(begin (regen a-img a-src $args) (n-layers a-img))") || bail "the snapshot failed: $r"
echo "# A: the snapshot ($steps steps) took $(elapsed "$t") s"
check "A: the snapshot adds the output layer" eq "$(flat "$r")" 2
check "A: no progress window is left after a finished run" eq "$(progress_windows)" ""
pids=$(plugin_pids)
[ -n "$pids" ] || bail "no plug-in process found under $profile/plug-ins"
cancels=0

# ---- B: from the menu (the dialog, then OK), cancelled ------------------
img=$(sf 60 "(begin (define b-new (church-image)) (define b-img (car b-new))
               (define b-src (cadr b-new)) (define b-disp (car (gimp-display-new b-img)))
               (save b-img b-src \"b-orig.png\") b-img)") || bail "could not make image B"
win_b=$(image_window "$img") || bail "image $img has no window"
# GIMP's action search ("/") runs the menu item as a user would
search_run "$win_b" "Sparse Regenerate..." || bail "/ did not open GIMP's action search"
dlg=''
i=0
while [ -z "$dlg" ] && [ $i -lt 200 ]; do
  dlg=$(xdotool search --onlyvisible --name '^Sparse Regenerate$' 2>/dev/null | head -n 1)
  sleep 0.05; i=$((i + 1))
done
[ -n "$dlg" ] || { shot B-nodialog; bail "the menu item did not open the dialog"; }
sleep 0.5
shot B-dialog
# OK: the last button, at the bottom right of the dialog
eval "$(xdotool getwindowgeometry --shell "$dlg")"
xdotool mousemove $((X + WIDTH - 50)) $((Y + HEIGHT - 25)) click 1
cancel_run b "the menu run"

# ---- B again: Ctrl+F (Repeat, no dialog), cancelled ---------------------
press "$win_b" ctrl+f || not_ok "b: Ctrl+F pressed"
check "b: Ctrl+F opens no dialog" sh -c "sleep 0.3; ! xdotool search --onlyvisible --name '^Sparse Regenerate\$'"
cancel_run b "Ctrl+F"

# ---- A again: an edit, then Ctrl+F: sparse, its window closes -----------
# GIMP shows one image at a time in its single window: B's display goes
sf 30 "(gimp-display-delete b-disp)" > /dev/null
win_a=$(image_window "$img_a") || bail "image A has no window any more"
# the source layer active, as the artist paints on it (a run leaves its
# output layer active: issue 16 point 3, not this test's)
sf 30 "(begin (edit a-img a-src '(200 30 30) 150 140 40 30 20 200 30 30)
         (gimp-image-set-active-layer a-img a-src))" > /dev/null
n_runs=$(log_count 'sparse-regenerate: .* pass ')
press "$win_a" ctrl+f || not_ok "a: Ctrl+F pressed"
if wait_log 'sparse-regenerate: .* pass ' $((n_runs + 1)) 60; then
  line=$(grep 'sparse-regenerate: .* pass ' "$work/gimp.log" | tail -n 1)
  note "$line"
  check "A: Ctrl+F after the cancels is a sparse run: the session survived" \
    sh -c "echo '$line' | grep -q 'sparse-regenerate: sparse pass'"
  sleep 0.3
  check "A: no progress window is left after the finished Ctrl+F run" eq "$(progress_windows)" ""
  r=$(sf 30 "(n-layers a-img)")
  check "A: the run wrote into the same output layer" eq "$(flat "$r")" 2
else
  not_ok "A: Ctrl+F after the cancels runs and finishes"
fi
shot A-done

# ---- an error in a Ctrl+F run: said once --------------------------------
img=$(sf 60 "(begin (define e-img (car (gimp-image-new 64 64 RGB)))
   (define e-src (car (gimp-layer-new e-img 64 64 RGB-IMAGE \"small\" 100 LAYER-MODE-NORMAL)))
   (gimp-image-insert-layer e-img e-src 0 0) (define e-disp (car (gimp-display-new e-img))) e-img)") ||
  bail "could not make the small image"
win_e=$(image_window "$img") || bail "image $img has no window"
n_err=$(log_count 'sparse-regenerate: error:')
press "$win_e" ctrl+f || not_ok "e: Ctrl+F pressed"
if wait_log 'sparse-regenerate: error:' $((n_err + 1)) 30; then
  sleep 1 # GIMP's own message, if any, comes after the plug-in's return
  msg=$(grep 'sparse-regenerate: error:' "$work/gimp.log" | tail -n 1 | sed 's/^sparse-regenerate: error: //')
  note "the error: $msg"
  key_text=$(echo "$msg" | cut -c 1-40)
  # the message handler is the console (undo.scm), so each message GIMP
  # shows is a line of its log; the plug-in's own stderr line aside
  shown=$(grep -F "$key_text" "$work/gimp.log" | grep -vc '^sparse-regenerate: error:')
  check "e: the error is shown once (got $shown)" eq "$shown" 1
  check "e: no \"Execution error\" from GIMP as well" sh -c "! grep -q 'Execution error' '$work/gimp.log'"
  check "e: no progress window is left after the failed run" eq "$(progress_windows)" ""
else
  not_ok "e: a Ctrl+F run on a 64x64 layer fails with an error"
fi
# A short message (Reset on a layer without a snapshot) with GIMP's default
# handler: a message window that stays, not the status bar, where GIMP
# puts a short message when the plug-in's progress can show one (and the
# next progress text overwrote it).
# From the menu (the action search), so that GIMP hands the image window's
# progress to the call as it does for a user.
sf 30 "(gimp-message-set-handler MESSAGE-BOX)" > /dev/null
search_run "$win_e" "Reset Sparse Regenerate Snapshot" || not_ok "e: Reset from the menu"
i=0 msgw=''
while [ -z "$msgw" ] && [ $i -lt 60 ]; do
  msgw=$(xdotool search --onlyvisible --name '^GIMP Message$' 2>/dev/null | head -n 1)
  sleep 0.05; i=$((i + 1))
done
shot e-message
check "e: a short message shows in a message window that stays" test -n "$msgw"
check "the plug-in processes are the same as at the start" eq "$(plugin_pids)" "$pids"

# ---- the end ------------------------------------------------------------
gimp_quit_checks
gui_finish "cancel test: $(elapsed "$t_start") s in all"
