#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz/ with clang + ASan/UBSan and runs
# each from its seed corpus, for SECONDS each, or by default for the seconds
# of the table below: two targets at a time (one per core of CI's 2-core
# machine), about 20 minutes of wall time in all (the execution counts these
# seconds give, and fuzz_session's shortfall from 10^6, are in
# tests/fuzz/README.md).
# Exits non-zero when any target crashes, leaks, times out or runs out of
# memory; the failing input is left as build-fuzz/artifacts/<target>/crash-*
# (or leak-*, timeout-*, oom-*), and the FAIL line names it and the log.
#   tools/fuzz.sh [SECONDS]
# Needs (Debian 12): clang libclang-rt-14-dev libomp-dev, and libsige's own
# build dependencies.  Known reproducers in tests/fuzz/crashes/<target>/ are
# replayed first (not fuzzed from): one that still crashes fails the run, so
# an open bug stays visible, and a fixed one stays as a regression test.
set -eu
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-}
TARGETS="fuzz_safetensors fuzz_pickle fuzz_torch_zip fuzz_png fuzz_model_load fuzz_case_json fuzz_session"

# Seconds of the default run, from the execution rates of CI runs on an idle
# 2-core machine (tests/fuzz/README.md): the five readers' targets get at
# least 1.3 times what 10^6 executions take at the rates of the two-lane CI
# run (safetensors, torch_zip and png were cut to that from 210, 180 and
# 120 s, for fuzz_model_load); fuzz_model_load and fuzz_session, which load
# a model or run its passes per input, share the rest.  With the safetensors header
# parser, fuzz_model_load ran 2,621/s beside fuzz_session (120 s, README), so
# its 810 s hold twice what 10^6 take; fuzz_session, short of 10^6 whatever
# it gets, keeps 660 s.  Each lane runs its targets one after the other,
# both 1200 s.
LANE1="fuzz_session fuzz_case_json fuzz_pickle"
LANE2="fuzz_model_load fuzz_safetensors fuzz_torch_zip fuzz_png"
seconds_of() {
  case $1 in
    fuzz_safetensors) echo 140 ;;
    fuzz_pickle) echo 60 ;;
    fuzz_torch_zip) echo 160 ;;
    fuzz_png) echo 90 ;;
    fuzz_model_load) echo 810 ;;
    fuzz_case_json) echo 480 ;;
    fuzz_session) echo 660 ;;
  esac
}
# Input size caps, per class: large enough for what the class must reach
# (nesting and size bounds, the bombs, a whole tiny model's weights, the
# published case.json files of up to 4 KB), small enough to keep executions
# fast; fuzz_session's inputs only steer a tiny model.  fuzz_model_load's
# largest seed (the smallest SPADE generator the engine builds, I8) is 109
# KiB; tests/cli/test_fuzz_seeds.sh checks that every seed fits.
max_len_of() {
  case $1 in
    fuzz_model_load) echo 131072 ;;
    fuzz_case_json) echo 16384 ;;
    fuzz_session) echo 256 ;;
    *) echo 65536 ;;
  esac
}
BUILD=build-fuzz

if [ ! -f "$BUILD/build.ninja" ]; then
  # Only the fuzz targets are built (not the tests, tools or plug-in); the
  # sanitizers apply to the whole build, the fuzzer coverage is added by
  # tests/fuzz/meson.build.
  CC=clang meson setup "$BUILD" -Dfuzz=true -Dtests=false -Dgimp=disabled -Dcuda=disabled \
    -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C "$BUILD" $(for t in $TARGETS; do printf 'tests/fuzz/%s ' "$t"; done)

# UBSan reports abort (the code is also built with -fno-sanitize-recover);
# the temp files live in /dev/shm, so keep allocations bounded with rss_limit.
# ASan's quarantine is 16 MiB, not 256: with the default, freed memory is not
# reused for 256 MiB, so every execution faults in fresh pages (fuzz_session
# ran 4 times slower, fuzz_case_json and fuzz_model_load spent a quarter of
# their time in the kernel); 16 MiB still holds several executions' frees, so
# a use after free within an input is still caught.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:quarantine_size_mb=16
status=0
for t in $TARGETS; do
  known=tests/fuzz/crashes/$t
  if [ -d "$known" ] && [ -n "$(ls "$known")" ]; then
    echo "== $t: replaying $known/"
    if ! "$BUILD/tests/fuzz/$t" -rss_limit_mb=2048 -timeout=10 "$known"/* >"$BUILD/$t.known.log" 2>&1; then
      echo "FAIL: $t: a known reproducer in $known/ still fails (log: $BUILD/$t.known.log)"
      grep -E '^(==[0-9]+==|SUMMARY|Running:)|#[0-9]+ .* in .*core/' "$BUILD/$t.known.log" | head -n 12
      status=1
    fi
  fi
done
# One target's run; its result line goes to $BUILD/$t.result ("ok" or "FAIL ...").
fuzz_one() {
  t=$1
  seeds=tests/fuzz/corpus/$t
  # New inputs go to a scratch corpus so the committed seeds stay as they are.
  work=$BUILD/corpus/$t
  art=$BUILD/artifacts/$t
  mkdir -p "$work" "$art"
  dict=""
  [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
  # libFuzzer's default cap (4096 bytes, or the largest seed) reaches neither
  # the bombs nor a whole model's weights
  maxlen=-max_len=$(max_len_of "$t")
  secs=${SECONDS_EACH:-$(seconds_of "$t")}
  echo "== $t: ${secs}s (lane $2)"
  if "$BUILD/tests/fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      $maxlen -print_final_stats=1 -artifact_prefix="$art/" $dict "$work" "$seeds" \
      >"$BUILD/$t.log" 2>&1; then
    echo ok >"$BUILD/$t.result"
  else
    found=$(ls "$art" | head -n 1)
    [ -n "$found" ] && found=$art/$found || found="none saved"
    echo "FAIL: $t (log: $BUILD/$t.log; input: $found)" >"$BUILD/$t.result"
  fi
}
# Two lanes, one per core of CI's 2-core machine, each running its targets
# one after the other; the lanes' seconds are balanced (the table above).
lane() {
  n=$1
  shift
  for t in "$@"; do fuzz_one "$t" "$n"; done
}
for t in $TARGETS; do rm -f "$BUILD/$t.result"; done
lane 1 $LANE1 &
pid1=$!
lane 2 $LANE2 &
pid2=$!
wait $pid1 || status=1
wait $pid2 || status=1
for t in $TARGETS; do
  if [ ! -f "$BUILD/$t.result" ]; then
    echo "FAIL: $t did not run (log: $BUILD/$t.log)"
    status=1
  elif [ "$(cat "$BUILD/$t.result")" != ok ]; then
    cat "$BUILD/$t.result"
    tail -n 40 "$BUILD/$t.log"
    status=1
  else
    printf '%s: ' "$t"
    grep -E '^stat::number_of_executed_units' "$BUILD/$t.log" || echo "(no stats)"
  fi
done
exit $status
