#!/bin/sh
# End-to-end test of live mode in the GIMP GUI (TAP output): Sparse
# Regenerate Live keeps the output layer in step with the label layer while
# strokes are painted with the pencil.
#   run-gimp-live-test.sh SOURCE_DIR BUILD_DIR PNG_COMPARE_EXE SF_CLIENT_EXE SIGE_EXE
# The real gimp-2.10 on a private Xvfb display with a private profile,
# driven through the Script-Fu server (sf_client; helpers in undo.scm and
# live.scm) and xdotool, as run-gimp-undo-test.sh.  Live mode is started
# from GIMP's command search ("/"), as a user would from the menu: the
# procedure runs until stopped, and everything else (painting, the
# Script-Fu server) goes on in GIMP's nested main loop meanwhile.
# Checks: live mode's first update takes the snapshot and adds the output
# layer, leaving the label layer active; strokes of about 1 % of the
# 512x256 street label map show up in
# the output layer within LIVE_BOUND_S (0.5 s, the target) of the mouse
# button's release, the first stroke after live mode starts within
# LIVE_FIRST_BOUND_S (1 s: it pays GIMP's first undoable write into the
# output layer, 0.50-0.55 s measured on an idle 2-core machine before live
# mode's start took over the plug-in's own first-time cost, see
# docs/PERFORMANCE.md; the target is not met there yet) (the plug-in logs a
# wall-clock time per update); one update per
# stroke; the output equals `sige edit` (a non-live sparse run) on the same
# label maps; one Ctrl+Z takes back one update, a second the stroke, after
# which live mode brings the output back in step (a new undo step, so
# Ctrl+Y has nothing left to redo: docs/USER-GUIDE.md); Stop ends live mode, the plug-in stays resident and strokes no
# longer update the output; closing the window also stops it.
# GIMP starts with its data (no -d): the pencil needs a plain round brush.
# Run it alone (flock /work/gimp-gui.lock): its latency is what it measures.
set -u
# meson sets MALLOC_PERTURB_ for every test, which makes glibc fill each
# allocation and each free with a pattern: every page of every large buffer
# is touched twice per pass.  An artist's GIMP has no such setting, and the
# latency measured here is what the artist sees.
unset MALLOC_PERTURB_
src=$1 build=$2 compare=$3 client=$4 sige=$5
. "$(dirname "$0")/gui-lib.sh"
gui_init live
gimp_setup
# The pencil paints 10 pixels wide (its default is 51), without the brush's
# own size overriding it: GIMP reads its tool options from the profile.
mkdir -p "$profile/tool-options"
printf '(brush-size 10.0)\n(brush-link-size no)\n' > "$profile/tool-options/gimp-pencil-tool"
start_xvfb 560
# with its data (no -d): the pencil needs a plain round brush
start_gimp 520 ""
load_undo_scm
sf 30 "(load \"$src/tests/gimp/live.scm\")" > /dev/null || bail "could not load live.scm into Script-Fu"

# ---- live mode ----------------------------------------------------------
bound=${LIVE_BOUND_S:-0.5}
first_bound=${LIVE_FIRST_BOUND_S:-1.0}
# the plug-in's log lines (gimp.log holds GIMP's and the plug-in's stderr)
n_updates() { grep -c 'sparse-regenerate: live update ' "$work/gimp.log"; }
update_time() { sed -n "s/.*live update $1 done at \([0-9.]*\) s.*/\1/p" "$work/gimp.log" | tail -n 1; }
# wait_for TIMEOUT_S COMMAND...: until COMMAND succeeds
wait_for() {
  wf_deadline=$(($(date +%s) + $1)); shift
  until "$@"; do
    [ "$(date +%s)" -lt $wf_deadline ] || return 1
    sleep 0.05
  done
}
logged() { grep -q "$1" "$work/gimp.log"; }
updates_reach() { [ "$(n_updates)" -ge "$1" ]; }
# pixels that differ between two PNGs of the test's folder
n_differ() { "$compare" "$work/$1" "$work/$2" | sed -n 's/.*, \([0-9]*\) pixels differ.*/\1/p'; }
bbox() { "$compare" "$work/$1" "$work/$2" | sed -n 's/.*bbox \([0-9,x ]*\)$/\1/p'; }
shot() { import -window root "$work/$1.png" 2>/dev/null && cp "$work/$1.png" "$shots/" 2>/dev/null; }
live_window() { xdotool search --onlyvisible --name '^Sparse Regenerate Live$' 2>/dev/null | head -n 1; }
shots=${LIVE_SHOTS_DIR:-$work}
mkdir -p "$shots"

img=$(sf 60 "(begin
  (define img (car (file-png-load RUN-NONINTERACTIVE (path \"labels.png\") \"labels.png\")))
  (define src (car (gimp-image-get-active-layer img)))
  (define disp (car (gimp-display-new img)))
  (save img src \"orig.png\") img)") || bail "could not open the label map"
win=$(image_window "$img") || bail "the image window did not appear"
# Live mode from GIMP's command search, as from Filters > Generative.
start_live() {
  press "$win" slash || return 1
  wait_for 10 sh -c "xdotool search --onlyvisible --name '^Search Actions\$' > '$work/search-win'" ||
    { echo "# no Search Actions window"; return 1; }
  # no window manager gives the popup the focus
  sw=$(head -n 1 "$work/search-win")
  timeout 10 xdotool windowfocus --sync "$sw" > /dev/null 2>&1
  xdotool type --delay 20 "Sparse Regenerate Live"
  sleep 1
  shot search
  xdotool key Return
}
start_live || bail "could not start live mode from the command search"
if wait_for 120 logged 'sparse-regenerate: live: watching layer'; then
  ok "live mode starts from the command search and brings the output up to date"
else
  bail "live mode did not start in 120 s"
fi
note "$(grep 'sparse-regenerate: live: watching' "$work/gimp.log")"
# Its first update was the snapshot (a full pass), which added the output
# layer on top; the label layer stays the active one, to paint on.
r=$(sf 30 "(begin (define out (vector-ref (cadr (gimp-image-get-layers img)) 0))
           (save img out \"out-0.png\") (list out (active img) src (n-layers img)))") ||
  bail "could not read the image's layers: $r"
# shellcheck disable=SC2046
set -- $(echo "$r" | tr -d '()')
out_id=$1 # (check() keeps its output in $out)
check "live mode's first update adds the output layer and leaves the label layer active" \
  eq "$2 $4" "$3 2"
lw=$(live_window)
[ -n "$lw" ] || bail "no window titled 'Sparse Regenerate Live'"
# out of the way of the canvas (there is no window manager)
xdotool windowmove "$lw" 860 760
# the pencil
press "$win" n || bail "could not choose the pencil"

# GIMP runs the live procedure in a nested main loop: the Script-Fu server
# (another plug-in) still answers, which the strokes' checks rely on.
r=$(sf 30 "(n-layers img)")
check "GIMP answers the Script-Fu server while live mode runs" eq "$r" 2

# The canvas: the image is centred in the window; the first stroke's
# place in the layer tells the offset exactly (the others are relative).
eval "$(xdotool getwindowgeometry --shell "$win")"
cx=$((X + WIDTH / 2)) cy=$((Y + HEIGHT / 2))
prev=orig.png prev_out=out-0.png
lat_all='' k=0
# stroke COLOUR DY: a 1 % stroke, 10 px wide and 120 px long, DY pixels
# below the centre, then its checks
stroke() {
  k=$((k + 1))
  sf 30 "(set-colour '($1))" > /dev/null || note "could not set the colour"
  n0=$(n_updates)
  x=$((cx - 60)) y=$((cy + $2))
  set -- mousemove $x $y mousedown 1
  i=1
  while [ $i -le 12 ]; do set -- "$@" sleep 0.02 mousemove $((x + 10 * i)) $y; i=$((i + 1)); done
  xdotool "$@" mouseup 1
  t_end=$(date +%s.%N)
  if ! wait_for 30 updates_reach $((n0 + 1)); then
    not_ok "stroke $k: an update follows within 30 s"
    sf 30 "(begin (save img src \"src-$k.png\") (save img out \"out-$k.png\") (list (active img) src out))"
    note "the source changed in $(n_differ "$prev" "src-$k.png") pixels, the output in $(n_differ "$prev_out" "out-$k.png")"
    shot "stroke-$k"
    return
  fi
  t_up=$(update_time $((n0 + 1)))
  lat=$(awk "BEGIN { printf \"%.3f\", $t_up - $t_end }")
  lat_all="$lat_all $lat"
  sleep 1.5 # long enough for a second update, if there were one
  sf 30 "(begin (save img src \"src-$k.png\") (save img out \"out-$k.png\"))" > /dev/null
  px=$(n_differ "$prev" "src-$k.png")
  note "stroke $k: ${px:-?} pixels ($(awk "BEGIN { printf \"%.2f\", 100 * ${px:-0} / 131072 }") %) at $(bbox "$prev" "src-$k.png"); in the output after $lat s; $(grep 'sparse-regenerate: sparse pass\|sparse-regenerate: full' "$work/gimp.log" | tail -n 1 | sed 's/^sparse-regenerate: //')"
  check "stroke $k: about 1 % of the layer (0.6 to 1.4 %)" \
    awk "BEGIN { exit !(${px:-0} >= 786 && ${px:-0} <= 1835) }"
  check "stroke $k: one update" eq "$(n_updates)" $((n0 + 1))
  check "stroke $k: the output changed" "$compare" "$work/$prev_out" "$work/out-$k.png" --differ
  if [ "$k" = 1 ]; then
    check "stroke 1, the first after live mode starts: in the output layer within $first_bound s of the stroke's end ($lat s; the 0.5 s target holds from the second stroke)" \
      awk "BEGIN { exit !($lat <= $first_bound) }"
  else
    check "stroke $k: in the output layer within $bound s of the stroke's end ($lat s)" \
      awk "BEGIN { exit !($lat <= $bound) }"
  fi
  prev=src-$k.png prev_out=out-$k.png
}
stroke "0 0 142" -60    # car
stroke "220 20 60" 0    # person
stroke "107 142 35" 60  # vegetation
shot live
note "latencies (s):$lat_all"

# The same as a non-live sparse run (sige edit) on the same label maps.
# After one update: within 1 level, as the batch test's single run (8-bit
# rounding of float outputs).  After three chained updates: within 6
# levels, because each update starts from caches that earlier sparse
# updates computed in float32, which sige edit's one sparse run from the
# original does not.  Measured: 2 levels at most (about 3000 pixels) with
# im2col everywhere; 4 with the trained street model, whose wide layers run
# Winograd F(4x4, 3x3) in full passes but im2col on a sparse pass's few
# blocks, so the chained caches mix both roundings.
for pair in "1 orig.png src-1.png 1" "$k orig.png src-$k.png 6"; do
  # shellcheck disable=SC2086
  set -- $pair
  "$sige" edit --model "$src/data/models/gaugan-street.safetensors" --original "$work/$2" \
    --edited "$work/$3" --out "$work/cli-edit-$1.png" > "$work/cli.log" 2>&1
  check "after stroke $1 the output equals sige edit on the same label maps (within $4 levels)" \
    "$compare" "$work/out-$1.png" "$work/cli-edit-$1.png" --max-diff "$4"
done

# Undo, as docs/USER-GUIDE.md "Live mode" says: one Ctrl+Z takes back the
# last update, a second the stroke; then live mode brings the output in
# step with the source again, which is a new undo step (a sparse pass from
# the newer caches is not bit-identical to the earlier output), so GIMP
# drops the redo of the stroke.
n0=$(n_updates)
press "$win" ctrl+z
sleep 1
sf 30 "(begin (save img src \"undo1-src.png\") (save img out \"undo1-out.png\"))" > /dev/null
check "one Ctrl+Z takes back the last update (the output of before the stroke)" \
  "$compare" "$work/out-$((k - 1)).png" "$work/undo1-out.png" --max-diff 0
check "one Ctrl+Z leaves the stroke" "$compare" "$work/src-$k.png" "$work/undo1-src.png" --max-diff 0
check "one Ctrl+Z starts no update (the source did not change)" eq "$(n_updates)" "$n0"
press "$win" ctrl+z
if wait_for 20 updates_reach $((n0 + 1)); then ok "after a second Ctrl+Z an update follows"; else not_ok "after a second Ctrl+Z an update follows"; fi
sleep 1
sf 30 "(begin (save img src \"undo2-src.png\") (save img out \"undo2-out.png\"))" > /dev/null
check "a second Ctrl+Z takes back the stroke" "$compare" "$work/src-$((k - 1)).png" "$work/undo2-src.png" --max-diff 0
# within the stroke's reach, and close: the same sparse pass from the
# caches of the later state (measured: 5 levels at most)
reach=$(bbox "out-$((k - 1)).png" "out-$k.png" | tr ' x' ',,')
check "the output is again that of before the stroke (within 8 levels, only where the stroke reached)" \
  "$compare" "$work/out-$((k - 1)).png" "$work/undo2-out.png" --max-diff 8 --within "$reach"
note "$(grep 'sparse-regenerate: sparse pass\|sparse-regenerate: none' "$work/gimp.log" | tail -n 1)"
press "$win" ctrl+y
sleep 1.5
sf 30 "(begin (save img src \"redo-src.png\") (save img out \"redo-out.png\"))" > /dev/null
check "Ctrl+Y then has nothing to redo (the update was a new step), as documented" sh -c \
  "'$compare' '$work/undo2-src.png' '$work/redo-src.png' --max-diff 0 &&
   '$compare' '$work/undo2-out.png' '$work/redo-out.png' --max-diff 0"

# Stop (the default button: Return in the focused window, through XTEST
# as a keyboard would)
timeout 10 xdotool windowfocus --sync "$lw" > /dev/null 2>&1
shot live-window
xdotool key Return
if wait_for 10 logged 'sparse-regenerate: live: stopped'; then ok "Stop ends live mode"; else not_ok "Stop ends live mode"; fi
check "the live window is gone" eq "$(live_window)" ""
n0=$(n_updates)
sf 30 "(save img out \"stopped-out.png\")" > /dev/null
press "$win" n
xdotool mousemove $((cx - 60)) $((cy + 30)) mousedown 1 mousemove $((cx)) $((cy + 30)) mouseup 1
sleep 1.5
sf 30 "(begin (save img out \"after-stop-out.png\") (save img src \"after-stop-src.png\"))" > /dev/null
check "after Stop a stroke changes the source" "$compare" "$work/src-$k.png" "$work/after-stop-src.png" --differ
check "but not the output (no update)" sh -c "[ $(n_updates) = $n0 ] && '$compare' '$work/stopped-out.png' '$work/after-stop-out.png' --max-diff 0"
r=$(sf 300 "(list (proc-exists \"plug-in-sparse-regenerate-live\") (regen img src \"\" 0 0 -1))")
check "the plug-in stays resident: its procedures are there and a normal run works" eq "$r" "(1 $out_id)"

# closing the window
start_live
if wait_for 60 sh -c "[ \$(grep -c 'sparse-regenerate: live: watching' '$work/gimp.log') -ge 2 ]"; then
  wait_for 10 sh -c "[ -n \"\$(xdotool search --onlyvisible --name '^Sparse Regenerate Live\$')\" ]"
  lw=$(live_window)
  # Escape is GtkDialog's close: the same delete event as a window
  # manager's close button (there is none here)
  timeout 10 xdotool windowfocus --sync "$lw" > /dev/null 2>&1
  xdotool key Escape
  if wait_for 10 sh -c "[ \$(grep -c 'sparse-regenerate: live: stopped' '$work/gimp.log') -ge 2 ]"; then
    ok "closing the window ends live mode"
  else
    not_ok "closing the window ends live mode"
  fi
else
  not_ok "live mode starts a second time"
fi
r=$(sf 60 "(proc-exists \"plug-in-sparse-regenerate-live\")")
check "the plug-in is still resident after the window was closed" eq "$r" 1

# ---- the end ------------------------------------------------------------
gimp_quit_checks
gui_finish "live test: $(elapsed "$t_start") s in all; load average $(cut -d' ' -f1-3 /proc/loadavg)"
