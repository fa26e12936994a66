# TAP helpers for the CLI test scripts of tests/cli/ (POSIX sh, sourced
# after `tmp` is set:
#   . "$(dirname "$0")/tap-lib.sh"
# ).  A failed check shows $tmp/out, the output of the command it judged.

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; sed 's/^/# /' "$tmp/out"; }
# check DESCRIPTION PATTERN...: ok when every grep -E pattern matches $tmp/out
check() {
  d=$1; shift
  for p in "$@"; do
    if ! grep -Eq -- "$p" "$tmp/out"; then not_ok "$d (no '$p')"; return; fi
  done
  ok "$d"
}
