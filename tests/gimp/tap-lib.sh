# TAP helpers for the GIMP test scripts of tests/gimp/ (POSIX sh, sourced:
#   . "$(dirname "$0")/tap-lib.sh"
# ).  Each check prints "ok N - NAME" or "not ok N - NAME"; the script ends
# with `echo "1..$n"` (tap_plan) and its exit status says whether any failed.

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
# check NAME COMMAND...: ok when COMMAND succeeds; its output as comments
check() {
  name=$1; shift
  if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name"; fi
  [ -n "$out" ] && echo "$out" | sed 's/^/# /'
}
note() { echo "$1" | sed 's/^/# /'; }
eq() { [ "$1" = "$2" ] || { echo "got '$1', expected '$2'"; return 1; }; }
# elapsed T0: seconds since T0 (a `date +%s.%N`), one decimal
elapsed() { awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $1 }"; }
# tap_plan: the plan line; the status says whether every check passed
tap_plan() {
  echo "1..$n"
  [ "$failed" -eq 0 ]
}

# gimp2_profile DIR: a private GIMP 2.10 profile; GIMP 2.10 refuses to
# start without the profile's writable data folders.
gimp2_profile() {
  for d in brushes dynamics fonts gradients palettes patterns tool-presets scripts templates \
           plug-ins modules interpreters environ themes; do
    mkdir -p "$1/$d"
  done
}
