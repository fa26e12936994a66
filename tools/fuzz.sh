#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz/ with clang + ASan/UBSan and runs
# each from its seed corpus, for SECONDS each, or by default for the seconds
# of the table below (7 minutes in all, what CI gives fuzzing; the execution
# rates, and how far they are from 10^6 runs, are in tests/fuzz/README.md).
# Exits non-zero when any target crashes, leaks, times out or runs out of
# memory; the failing input is left as build-fuzz/artifacts/<target>/crash-*
# (or leak-*, timeout-*, oom-*).
#   tools/fuzz.sh [SECONDS]
# Needs (Debian 12): clang libclang-rt-14-dev libomp-dev, and libsige's own
# build dependencies.  Known reproducers in tests/fuzz/crashes/<target>/ are
# replayed first (not fuzzed from): one that still crashes fails the run, so
# an open bug stays visible, and a fixed one stays as a regression test.
set -eu
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-}
TARGETS="fuzz_safetensors fuzz_pickle fuzz_torch_zip fuzz_png fuzz_model_load fuzz_case_json fuzz_session"

# Seconds of the default run, 7 minutes in all: at the rates measured on this
# project's loaded 2-core machine no target reaches 10^6 executions in them
# (tests/fuzz/README.md: the rates, and the longer runs that go deeper); the
# session target, the slowest per input and the newest, gets the most.
seconds_of() {
  case $1 in
    fuzz_safetensors) echo 45 ;;
    fuzz_pickle) echo 45 ;;
    fuzz_torch_zip) echo 60 ;;
    fuzz_png) echo 60 ;;
    fuzz_model_load) echo 60 ;;
    fuzz_case_json) echo 60 ;;
    fuzz_session) echo 90 ;;
  esac
}
# Input size caps, per class: large enough for what the class must reach
# (nesting and size bounds, the bombs, a whole tiny model's weights, the
# published case.json files of up to 4 KB), small enough to keep executions
# fast; fuzz_session's inputs only steer a tiny model.
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
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
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
for t in $TARGETS; do
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
  # fuzz_session frees and allocates whole activations every pass: with
  # ASan's default 256 MiB quarantine each pass faults in fresh pages (4x
  # slower); 16 MiB still holds the last passes' frees for use-after-free
  asan=$ASAN_OPTIONS
  [ "$t" = fuzz_session ] && asan=$ASAN_OPTIONS:quarantine_size_mb=16
  echo "== $t: ${secs}s"
  if ! ASAN_OPTIONS=$asan "$BUILD/tests/fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      $maxlen -print_final_stats=1 -artifact_prefix="$art/" $dict "$work" "$seeds" \
      >"$BUILD/$t.log" 2>&1; then
    echo "FAIL: $t (log: $BUILD/$t.log; input: $(ls "$art" | head -n 1))"
    tail -n 40 "$BUILD/$t.log"
    status=1
  else
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec)|^Done' "$BUILD/$t.log" || true
  fi
done
exit $status
