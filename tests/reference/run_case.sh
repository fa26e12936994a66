#!/bin/sh
# Runs `sige check-reference` on one reference case; fails (never skips) when
# the reference vectors are missing.
#   run_case.sh SIGE_BINARY CASE_DIR [EXPECTED_STATUS [CHECK-REFERENCE OPTIONS...]]
sige=$1; case_dir=$2; expected=${3:-0}
shift 2; [ $# -gt 0 ] && shift
if [ ! -f "$case_dir/case.json" ]; then
  echo "FAIL: reference case $case_dir is missing." >&2
  echo "The reference vectors are expected in ../shared/reference next to the source tree;" >&2
  echo "configure with -Dreference_dir=/path/to/reference to point elsewhere." >&2
  exit 1
fi
"$sige" check-reference "$@" "$case_dir"
status=$?
if [ "$status" -ne "$expected" ]; then
  echo "FAIL: sige check-reference exited with $status, expected $expected" >&2
  exit 1
fi
exit 0
