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
t_start=$(date +%s.%N)
work=$(mktemp -d "${TMPDIR:-/tmp}/sige-gimp-layers.XXXXXX")
shots=$build/tests/gimp-layers
mkdir -p "$shots"
xvfb_pid='' gimp_pid=''

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
show_log() {
  [ -f "$work/gimp.log" ] || return 0
  grep -v -e 'Unable to locate theme engine' -e '^$' "$work/gimp.log" | sed 's/^/# gimp: /'
}
diagnostics() {
  show_log
  [ -f "$work/session.log" ] && tail -n 100 "$work/session.log" | sed "s/^/# session: /"
  [ -f "$work/xvfb.log" ] && sed 's/^/# Xvfb: /' "$work/xvfb.log"
  if [ -n "${DISPLAY:-}" ]; then
    for w in $(xdotool search --onlyvisible --class gimp 2>/dev/null); do
      echo "# window $w: $(xdotool getwindowname "$w" 2>/dev/null)"
    done
    import -window root "$shots/failure.png" 2>/dev/null && echo "# screenshot: $shots/failure.png"
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
eq() { [ "$1" = "$2" ] || { echo "got '$1', expected '$2'"; return 1; }; }

# ---- a private profile, display and GIMP --------------------------------
profile=$work/profile
for d in brushes dynamics fonts gradients palettes patterns tool-presets scripts templates \
         plug-ins modules interpreters environ themes; do
  mkdir -p "$profile/$d"
done
mkdir -p "$work/xdg-config" "$work/xdg-cache"
printf '(image-title-format "sige-image-%%p")\n' > "$profile/gimprc"
cat > "$profile/menurc" <<'MENURC'
(gtk_accel_path "<Actions>/plug-in/plug-in-sparse-regenerate" "F7")
MENURC
GIMP2_DIRECTORY=$profile "$src/tools/install-plugin.sh" --gimp 2.10 "$build" >/dev/null ||
  bail "could not install the plug-in"
cp "$src/data/examples/street_labels.png" "$work/labels.png"
sed "s|@OUT@|$work|g" "$src/tests/gimp/undo.scm" > "$work/undo.scm"
ref=${SIGE_REFERENCE_DIR:-$src/../shared/reference}
ddpm_model=$ref/ddpm-church-tiny/weights.safetensors

timeout 440 Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp \
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
  timeout 400 gimp-2.10 -n -s -d -f --stack-trace-mode never \
  -b "(plug-in-script-fu-server RUN-NONINTERACTIVE \"127.0.0.1\" $port \"$work/server.log\")" \
  > "$work/gimp.log" 2>&1 &
gimp_pid=$!

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

# ---- the X side ---------------------------------------------------------
# window PATTERN: the visible GIMP window whose title matches the shell
# PATTERN (polls up to 30 s; xdotool's --name regex misses UTF-8 titles)
window() {
  deadline=$(($(date +%s) + 30))
  while [ "$(date +%s)" -lt $deadline ]; do
    for w in $(xdotool search --onlyvisible --class gimp 2>/dev/null); do
      # shellcheck disable=SC2254 # the pattern is the argument
      case $(xdotool getwindowname "$w" 2>/dev/null) in
        $1) echo "$w"; return 0 ;;
      esac
    done
    sleep 0.1
  done
  return 1
}
press() {
  timeout 10 xdotool windowfocus --sync "$1" > /dev/null 2>&1
  focus=$(xdotool getwindowfocus 2>/dev/null)
  [ "$focus" = "$1" ] || { echo "# the focus is on window $focus, not on window $1"; return 1; }
  xdotool key --clearmodifiers "$2"
}
# the plug-in's one line per pass on stderr, and the messages (console)
passes() { grep -c '^sparse-regenerate: .* pass ' "$work/gimp.log"; }
last_pass() { grep '^sparse-regenerate: .* pass ' "$work/gimp.log" | tail -n 1 | cut -d' ' -f2; }
count() { grep -c "$1" "$work/gimp.log"; }
# wait_for COMMAND VALUE: until COMMAND prints VALUE (up to 120 s: a full
# GauGAN pass on 2 busy cores)
wait_for() {
  deadline=$(($(date +%s) + 120))
  while [ "$(date +%s)" -lt $deadline ]; do
    [ "$($1)" = "$2" ] && return 0
    sleep 0.2
  done
  echo "# waited 120 s for '$1' to be '$2', it is '$($1)'"
  return 1
}
flat() { echo "$1" | tr -d '()'; }
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
check "labels: F7 and OK run a full pass" wait_for passes 1
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
check "labels: Ctrl+F with the output layer active runs" wait_for passes 2
check "labels: ... a sparse pass from the label layer's snapshot" eq "$(last_pass)" sparse
sf 30 "(save img $out_layer \"run2.png\")" > /dev/null
# shellcheck disable=SC2046
set -- $(facts)
check "labels: ... into the same output layer (2 layers, no third)" eq "$1 $3" "2 $out_layer"
check "labels: ... which shows the edit" "$compare" "$work/run1.png" "$work/run2.png" --differ
check "labels: ... and the label layer is active again" eq "$2" "$src_layer"

# Not here: Ctrl+F after the menu's Reset.  Driving that menu entry from
# xdotool failed in this harness (a menurc key did not reach the action and
# the action search popup did not take the typed text), so Repeat after
# Reset is not covered by this test yet.

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
sf 10 "(gimp-quit 1)" > /dev/null 2>&1
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
echo "# layers test: $(elapsed "$t_start") s in all"
echo "1..$n"
[ "$failed" -eq 0 ]
