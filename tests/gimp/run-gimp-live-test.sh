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
# the output layer within LIVE_BOUND_S (0.5 s) of the mouse button's
# release (the plug-in logs a wall-clock time per update); one update per
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
t_start=$(date +%s.%N)
work=$(mktemp -d "${TMPDIR:-/tmp}/sige-gimp-live.XXXXXX")
xvfb_pid='' gimp_pid=''

# Xvfb and GIMP each run under `timeout`, which makes a process group of
# its own (GIMP's plug-ins included): on every exit path the whole group
# gets SIGTERM, then SIGKILL after 10 s; the timeouts bound them even if
# this script is killed outright.
# (dash's kill takes no "--": a negative number is a process group.)
stop_group() {
  kill -0 "-$1" 2>/dev/null || return 0
  kill -TERM "-$1" 2>/dev/null
  i=0
  while kill -0 "-$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "-$1" 2>/dev/null
  return 0
}
cleanup() {
  [ -n "$gimp_pid" ] && stop_group "$gimp_pid"
  [ -n "$xvfb_pid" ] && stop_group "$xvfb_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

elapsed() { awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $1 }"; }
# GIMP's own output, without the theme engine warnings of a bare system
show_log() {
  [ -f "$work/gimp.log" ] || return 0
  grep -v -e 'Unable to locate theme engine' -e '^$' "$work/gimp.log" | sed 's/^/# gimp: /'
}
diagnostics() {
  show_log
  [ -f "$work/session.log" ] && tail -n 200 "$work/session.log" | sed "s/^/# session: /"
  [ -f "$work/server.log" ] && tail -n 20 "$work/server.log" | sed 's/^/# script-fu server: /'
  [ -f "$work/xvfb.log" ] && sed 's/^/# Xvfb: /' "$work/xvfb.log"
  if [ -n "${DISPLAY:-}" ]; then
    for w in $(xdotool search --class gimp 2>/dev/null); do
      echo "# window $w: $(xdotool getwindowname "$w" 2>/dev/null)"
    done
    echo "# focus: $(xdotool getwindowfocus 2>/dev/null)"
  fi
}
bail() { echo "Bail out! $1"; diagnostics; exit 1; }

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { # name, command...
  name=$1; shift
  if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name"; fi
  [ -n "$out" ] && echo "$out" | sed 's/^/# /'
}
note() { echo "$1" | sed 's/^/# /'; }
eq() { [ "$1" = "$2" ] || { echo "got '$1', expected '$2'"; return 1; }; }
same() { "$compare" "$work/$1" "$work/$2" --max-diff 0; }

# ---- a private profile, display and GIMP --------------------------------
profile=$work/profile
# GIMP refuses to start without the profile's writable data folders.
for d in brushes dynamics fonts gradients palettes patterns tool-presets scripts templates \
         plug-ins modules interpreters environ themes; do
  mkdir -p "$profile/$d"
done
mkdir -p "$work/xdg-config" "$work/xdg-cache"
# the image windows are found by the image's id in their title
printf '(image-title-format "sige-image-%%p")\n' > "$profile/gimprc"
GIMP2_DIRECTORY=$profile "$src/tools/install-plugin.sh" --gimp 2.10 "$build" >/dev/null ||
  bail "could not install the plug-in"
cp "$src/data/examples/street_labels.png" "$work/labels.png"
sed "s|@OUT@|$work|g" "$src/tests/gimp/undo.scm" > "$work/undo.scm"
# The pencil paints 10 pixels wide (its default is 51), without the brush's
# own size overriding it: GIMP reads its tool options from the profile.
mkdir -p "$profile/tool-options"
printf '(brush-size 10.0)\n(brush-link-size no)\n' > "$profile/tool-options/gimp-pencil-tool"

# Xvfb picks a free display itself and writes its number when ready.
timeout 560 Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp \
  3> "$work/display" > "$work/xvfb.log" 2>&1 &
xvfb_pid=$!
deadline=$(($(date +%s) + 30))
until grep -q '^[0-9][0-9]*$' "$work/display" 2>/dev/null; do
  kill -0 "$xvfb_pid" 2>/dev/null || bail "Xvfb exited"
  [ "$(date +%s)" -lt $deadline ] || bail "Xvfb did not start in 30 s"
  sleep 0.1
done
DISPLAY=:$(cat "$work/display")
export DISPLAY

port=$("$client" --free-port) || bail "no free TCP port"
t_gimp=$(date +%s.%N)
GIMP2_DIRECTORY=$profile XDG_CONFIG_HOME=$work/xdg-config XDG_CACHE_HOME=$work/xdg-cache \
  SIGE_NUM_THREADS=${SIGE_NUM_THREADS:-2} LANGUAGE=C LC_ALL=C \
  timeout 520 gimp-2.10 -n -s -f --stack-trace-mode never \
  -b "(plug-in-script-fu-server RUN-NONINTERACTIVE \"127.0.0.1\" $port \"$work/server.log\")" \
  > "$work/gimp.log" 2>&1 &
gimp_pid=$!

# sf TIMEOUT_S SCRIPT: evaluate SCRIPT in GIMP; the answer on stdout, and
# both in session.log
sf() {
  echo "> $2" >> "$work/session.log"
  sf_out=$("$client" "$port" "$1" "$2" 2>&1)
  sf_rc=$?
  echo "< [$sf_rc] $sf_out" >> "$work/session.log"
  echo "$sf_out"
  return $sf_rc
}
deadline=$(($(date +%s) + 120))
until "$client" "$port" 2 '(+ 1 1)' > /dev/null 2>&1; do
  kill -0 "$gimp_pid" 2>/dev/null || bail "GIMP exited before its Script-Fu server answered"
  [ "$(date +%s)" -lt $deadline ] || bail "GIMP's Script-Fu server did not answer in 120 s"
done
echo "# GIMP answered after $(elapsed "$t_gimp") s (display $DISPLAY, Script-Fu server port $port)"
sf 30 "(load \"$work/undo.scm\")" > /dev/null || bail "could not load undo.scm into Script-Fu"
sf 30 "(load \"$src/tests/gimp/live.scm\")" > /dev/null || bail "could not load live.scm into Script-Fu"

# ---- the X side ---------------------------------------------------------
# image_window ID: the X window that shows image ID (polls up to 30 s)
image_window() {
  deadline=$(($(date +%s) + 30))
  while [ "$(date +%s)" -lt $deadline ]; do
    for w in $(xdotool search --onlyvisible --class gimp 2>/dev/null); do
      case $(xdotool getwindowname "$w" 2>/dev/null) in
        "sige-image-$1 "*) echo "$w"; return 0 ;;
      esac
    done
    sleep 0.1
  done
  return 1
}
# press WINDOW KEY: focus the window (no window manager here, so xdotool
# sets the input focus itself; checked) and type the key through XTEST,
# as a user's keyboard would
press() {
  timeout 10 xdotool windowfocus --sync "$1" > /dev/null 2>&1
  focus=$(xdotool getwindowfocus 2>/dev/null)
  [ "$focus" = "$1" ] || { echo "# the focus is on window $focus, not on the image window $1"; return 1; }
  xdotool key --clearmodifiers "$2"
}
# ---- live mode ----------------------------------------------------------
bound=${LIVE_BOUND_S:-0.5}
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
  check "stroke $k: in the output layer within $bound s of the stroke's end ($lat s)" \
    awk "BEGIN { exit !($lat <= $bound) }"
  prev=src-$k.png prev_out=out-$k.png
}
stroke "0 0 142" -60    # car
stroke "220 20 60" 0    # person
stroke "107 142 35" 60  # vegetation
shot live
note "latencies (s):$lat_all"

# The same as a non-live sparse run (sige edit) on the same label maps.
# After one update: within 1 level, as the batch test's single run (8-bit
# rounding of float outputs).  After three chained updates: within 2
# levels, because each update starts from caches that earlier sparse
# updates computed in float32, which sige edit's one sparse run from the
# original does not (measured: 2 levels at most, in about 3000 pixels).
for pair in "1 orig.png src-1.png 1" "$k orig.png src-$k.png 2"; do
  # shellcheck disable=SC2086
  set -- $pair
  "$sige" edit --model "$src/data/models/gaugan-demo.safetensors" --original "$work/$2" \
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
sf 10 "(gimp-quit 1)" > /dev/null 2>&1 # GIMP quits before it answers
deadline=$(($(date +%s) + 30))
while kill -0 "$gimp_pid" 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do sleep 0.1; done
if kill -0 "$gimp_pid" 2>/dev/null; then
  not_ok "GIMP quits within 30 s"
else
  wait "$gimp_pid"
  check "GIMP quits cleanly" eq "$?" 0
fi
check "no CRITICAL messages from GIMP or the plug-in" sh -c "! grep CRITICAL '$work/gimp.log'"
if [ "$failed" -eq 0 ]; then show_log; else diagnostics; fi
echo "# live test: $(elapsed "$t_start") s in all; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "1..$n"
[ "$failed" -eq 0 ]
