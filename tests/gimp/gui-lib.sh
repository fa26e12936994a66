# The GUI GIMP 2.10 tests' harness (POSIX sh, sourced after `set -u` and
# after SOURCE_DIR and BUILD_DIR are in $src and $build:
#   . "$(dirname "$0")/gui-lib.sh"
# ).  It runs the real gimp-2.10 on a private Xvfb display with a private
# profile and drives it through the Script-Fu server (sf_client in $client):
#   gui_init NAME                 $work, the cleanup traps, $t_start
#   gimp_setup                    the profile, the plug-in, labels.png, undo.scm
#   start_xvfb TIMEOUT_S          $DISPLAY
#   start_gimp TIMEOUT_S OPTIONS [VAR=VALUE...]   GIMP with the server on
#                                 $port, once it answers
#   sf TIMEOUT_S SCRIPT           evaluate SCRIPT in GIMP
#   window PATTERN, image_window ID, press WINDOW KEY   the X side
#   gimp_quit_checks; gui_finish SUMMARY   the end (the last command)
# Run such a test alone: it takes a display and a TCP port on 127.0.0.1,
# and its keystrokes must not race another GIMP's.
. "${gui_lib_dir:-$(dirname "$0")}/tap-lib.sh"

# Xvfb and GIMP each run under `timeout`, which makes a process group of
# its own (GIMP's plug-ins included): on every exit path the whole group
# gets SIGTERM, then SIGKILL after 10 s; the timeouts bound them even if
# the script is killed outright.  $bg_pids: other background processes of
# the script, killed too.
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
  for p in $bg_pids; do kill "$p" 2>/dev/null; done
  [ -n "$gimp_pid" ] && stop_group "$gimp_pid"
  [ -n "$xvfb_pid" ] && stop_group "$xvfb_pid"
  rm -rf "$work"
}
# gui_init NAME: a scratch folder $work (sige-gimp-NAME.*) that goes on
# every exit path, with Xvfb and GIMP
gui_init() {
  t_start=$(date +%s.%N)
  work=$(mktemp -d "${TMPDIR:-/tmp}/sige-gimp-$1.XXXXXX")
  xvfb_pid='' gimp_pid='' bg_pids='' diag_shot=''
  trap cleanup EXIT
  trap 'exit 1' INT TERM HUP
}

# GIMP's own output, without the theme engine warnings of a bare system
show_log() {
  [ -f "$work/gimp.log" ] || return 0
  grep -v -e 'Unable to locate theme engine' -e '^$' "$work/gimp.log" | sed 's/^/# gimp: /'
}
# diagnostics: the logs, GIMP's windows and the focus; a screenshot into
# $diag_shot if set
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
    if [ -n "$diag_shot" ]; then
      import -window root "$diag_shot" 2>/dev/null && echo "# screenshot: $diag_shot"
    fi
  fi
}
bail() { echo "Bail out! $1"; diagnostics; exit 1; }
# same A B: two PNGs of $work are equal
same() { "$compare" "$work/$1" "$work/$2" --max-diff 0; }
# flat RESULT: a Script-Fu list answer as words
flat() { echo "$1" | tr -d '()'; }

# gimp_setup: the private profile $profile (image windows titled by the
# image's id), XDG folders, the plug-in installed into it, labels.png and
# undo.scm in $work; $ddpm_model: the reference DDPM weights
gimp_setup() {
  profile=$work/profile
  gimp2_profile "$profile"
  mkdir -p "$work/xdg-config" "$work/xdg-cache"
  # the image windows are found by the image's id in their title
  printf '(image-title-format "sige-image-%%p")\n' > "$profile/gimprc"
  GIMP2_DIRECTORY=$profile "$src/tools/install-plugin.sh" --gimp 2.10 "$build" >/dev/null ||
    bail "could not install the plug-in"
  cp "$src/data/examples/street_labels.png" "$work/labels.png"
  sed "s|@OUT@|$work|g" "$src/tests/gimp/undo.scm" > "$work/undo.scm"
  ref=${SIGE_REFERENCE_DIR:-$src/../shared/reference}
  ddpm_model=$ref/ddpm-church-tiny/weights.safetensors
}

# bind_f7: the menu entry on F7, as a user could set it (before start_gimp)
bind_f7() {
  cat > "$profile/menurc" <<'MENURC'
(gtk_accel_path "<Actions>/plug-in/plug-in-sparse-regenerate" "F7")
MENURC
}

# the plug-in's one line per pass on stderr: how many, and the last one's kind
passes() { grep -c '^sparse-regenerate: .* pass ' "$work/gimp.log"; }
last_pass() { grep '^sparse-regenerate: .* pass ' "$work/gimp.log" | tail -n 1 | cut -d' ' -f2; }
# wait_until COMMAND VALUE: until COMMAND prints VALUE (up to 120 s: a full
# GauGAN pass on 2 busy cores)
wait_until() {
  deadline=$(($(date +%s) + 120))
  while [ "$(date +%s)" -lt $deadline ]; do
    [ "$($1)" = "$2" ] && return 0
    sleep 0.2
  done
  echo "# waited 120 s for '$1' to be '$2', it is '$($1)'"
  return 1
}

# start_xvfb TIMEOUT_S: Xvfb picks a free display itself and writes its
# number when ready; exports DISPLAY
start_xvfb() {
  timeout "$1" Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp \
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
}

# start_gimp TIMEOUT_S OPTIONS [VAR=VALUE...]: gimp-2.10 (-n -s OPTIONS -f;
# OPTIONS as words, e.g. -d or "") with the Script-Fu server on a free port
# $port, the extra environment VAR=VALUE; returns once the server answers
start_gimp() {
  gimp_timeout=$1 gimp_opts=$2
  shift 2
  port=$("$client" --free-port) || bail "no free TCP port"
  t_gimp=$(date +%s.%N)
  # shellcheck disable=SC2086 # the options as words
  env GIMP2_DIRECTORY="$profile" XDG_CONFIG_HOME="$work/xdg-config" XDG_CACHE_HOME="$work/xdg-cache" \
    SIGE_NUM_THREADS="${SIGE_NUM_THREADS:-2}" LANGUAGE=C LC_ALL=C "$@" \
    timeout "$gimp_timeout" gimp-2.10 -n -s $gimp_opts -f --stack-trace-mode never \
    -b "(plug-in-script-fu-server RUN-NONINTERACTIVE \"127.0.0.1\" $port \"$work/server.log\")" \
    > "$work/gimp.log" 2>&1 &
  gimp_pid=$!
  deadline=$(($(date +%s) + 120))
  until "$client" "$port" 2 '(+ 1 1)' > /dev/null 2>&1; do
    kill -0 "$gimp_pid" 2>/dev/null || bail "GIMP exited before its Script-Fu server answered"
    [ "$(date +%s)" -lt $deadline ] || bail "GIMP's Script-Fu server did not answer in 120 s"
  done
  echo "# GIMP answered after $(elapsed "$t_gimp") s (display $DISPLAY, Script-Fu server port $port)"
}

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
# load_undo_scm: the helpers of undo.scm into Script-Fu
load_undo_scm() {
  sf 30 "(load \"$work/undo.scm\")" > /dev/null || bail "could not load undo.scm into Script-Fu"
}

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
# image_window ID: the X window that shows image ID (polls up to 30 s)
image_window() { window "sige-image-$1 *"; }
# press WINDOW KEY: focus the window (no window manager here, so xdotool
# sets the input focus itself; checked) and type the key through XTEST,
# as a user's keyboard would
press() {
  timeout 10 xdotool windowfocus --sync "$1" > /dev/null 2>&1
  focus=$(xdotool getwindowfocus 2>/dev/null)
  [ "$focus" = "$1" ] || { echo "# the focus is on window $focus, not on window $1"; return 1; }
  xdotool key --clearmodifiers "$2"
}

# ---- the end ------------------------------------------------------------
# gimp_quit: ask GIMP to quit; fails if it still runs 30 s later
gimp_quit() {
  sf 10 "(gimp-quit 1)" > /dev/null 2>&1 # GIMP quits before it answers
  deadline=$(($(date +%s) + 30))
  while kill -0 "$gimp_pid" 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do sleep 0.1; done
  ! kill -0 "$gimp_pid" 2>/dev/null
}
# gimp_quit_checks: gimp_quit, and checks that GIMP quit cleanly and that
# its log has no CRITICAL message
gimp_quit_checks() {
  if gimp_quit; then
    wait "$gimp_pid"
    check "GIMP quits cleanly" eq "$?" 0
  else
    not_ok "GIMP quits within 30 s"
  fi
  check "no CRITICAL messages from GIMP or the plug-in" sh -c "! grep CRITICAL '$work/gimp.log'"
}
# gui_finish SUMMARY: GIMP's log (the diagnostics after a failure), the
# summary as a comment, the plan; the status says whether all passed
gui_finish() {
  if [ "$failed" -eq 0 ]; then show_log; else diagnostics; fi
  echo "# $1"
  tap_plan
}
