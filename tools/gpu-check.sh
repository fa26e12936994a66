#!/bin/sh
# The CUDA backend on a machine with a GPU, in one command from the
# repository root (meant to finish in under 8 minutes on one H100):
#   1. builds with -Dcuda=enabled into build-gpu/ (no GIMP plug-in);
#   2. runs the device unit test on the GPU (every op, the sparse kernels,
#      the undo log and small models of the four kinds, CPU vs GPU);
#   3. runs `sige check-reference --device cuda` on every case under the
#      reference folder (the same checks the CPU passes, against PyTorch);
#   4. times `sige bench` dense vs sparse for GauGAN and DDPM at a 1.2 %
#      edit on the GPU (--json), and compares the speedups with the targets
#      (sparse >= 6x dense for GauGAN, >= 4x for DDPM).
# Logs, JSON and nvidia-smi's report go to $OUT (default build-gpu/gpu-check);
# summary.txt there is what to read first.
#
#   tools/gpu-check.sh                 OUT=/somewhere tools/gpu-check.sh
# Environment: OUT, SIGE_REFERENCE_DIR (default ../shared/reference), BUILD
# (default build-gpu); RUNS and WARMUP of the benchmarks (default 10, 2);
# DEVICE=sim rehearses the whole script on the CPU through the simulated
# device (slow: use RUNS=1 WARMUP=0).  Exit status 0 when the build, the
# device test and every reference case passed; the speed targets are
# reported, not enforced.
set -u
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build-gpu}
OUT=${OUT:-$BUILD/gpu-check}
REF=${SIGE_REFERENCE_DIR:-../shared/reference}
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
mkdir -p "$OUT"
: > "$OUT/summary.txt"
start=$(date +%s)
status=0
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
fail() { say "FAIL: $*"; status=1; }
elapsed() { echo $(($(date +%s) - start)); }

say "== gpu-check $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit \
    --format=csv > "$OUT/nvidia-smi.csv" 2>&1
  say "gpu: $(sed -n 2p "$OUT/nvidia-smi.csv")"
else
  say "nvidia-smi not found: no NVIDIA driver on this machine?"
fi

# 1. build
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" -Dcuda=enabled -Dgimp=disabled -Dbuildtype=release \
    -Dreference_dir="$(cd "$REF" 2>/dev/null && pwd || echo "$REF")" > "$OUT/setup.log" 2>&1 ||
    { fail "meson setup (see $OUT/setup.log)"; tail -n 20 "$OUT/setup.log"; exit 1; }
fi
if ! ninja -C "$BUILD" > "$OUT/build.log" 2>&1; then
  fail "build (see $OUT/build.log)"
  tail -n 30 "$OUT/build.log"
  exit 1
fi
say "built $BUILD in $(elapsed) s: $(grep -m1 'CUDA backend' "$BUILD/meson-logs/meson-log.txt" | sed 's/^ *//')"
SIGE=$BUILD/tools/sige

# 2. the device unit test (exit 77 = no usable device: a failure here)
"$BUILD/tests/unit/device/test_device_$DEVICE" > "$OUT/device-test.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
  say "device test ($DEVICE): PASS $(grep -m1 '^# device:' "$OUT/device-test.log" | sed 's/^# device: //')"
elif [ $rc -eq 77 ]; then
  fail "device test: $(head -n 1 "$OUT/device-test.log")"
  say "no usable CUDA device: stopping here"
  exit 1
else
  fail "device test (see $OUT/device-test.log)"
  grep -E 'FAILED|ERROR|failed' "$OUT/device-test.log" | head -n 10 | tee -a "$OUT/summary.txt"
fi

# 3. every reference case on the GPU
for dir in "$REF"/*/; do
  [ -f "$dir/case.json" ] || continue
  name=$(basename "$dir")
  t0=$(date +%s)
  "$SIGE" check-reference --device "$DEVICE" "$dir" > "$OUT/check-$name.log" 2>&1
  rc=$?
  line=$(tail -n 1 "$OUT/check-$name.log")
  case $rc in
    0) say "check-reference $name: PASS ($line, $(($(date +%s) - t0)) s)" ;;
    3) say "check-reference $name: not a kind this build knows ($line)" ;;
    *) fail "check-reference $name: $line (see $OUT/check-$name.log)"
       grep -E 'FAIL$|ERROR' "$OUT/check-$name.log" | head -n 5 | tee -a "$OUT/summary.txt" ;;
  esac
done

# 4. dense vs sparse at a 1.2 % edit (median of RUNS runs after WARMUP warm-ups)
json_num() { sed -n "s/.*\"$2\":\\([-0-9.eE+]*\\).*/\\1/p" "$1"; }
for spec in gaugan:6 ddpm:4; do
  model=${spec%%:*}
  target=${spec##*:}
  if "$SIGE" bench --model "$model" --device "$DEVICE" --edit-ratio 0.012 --runs "$RUNS" \
      --warmup "$WARMUP" --json \
      > "$OUT/bench-$model.json" 2> "$OUT/bench-$model.log"; then
    say "bench $model: $(awk -v d="$(json_num "$OUT/bench-$model.json" dense_ms)" \
      -v s="$(json_num "$OUT/bench-$model.json" sparse_ms)" \
      -v x="$(json_num "$OUT/bench-$model.json" speedup)" \
      -v m="$(json_num "$OUT/bench-$model.json" mac_ratio)" -v t="$target" 'BEGIN {
        printf "dense %.2f ms, sparse %.2f ms, speedup %.2fx (MAC ratio %.2fx); target >= %dx %s",
          d, s, x, m, t, (x >= t) ? "met" : "MISSED" }')"
  else
    fail "bench $model (see $OUT/bench-$model.log)"
    tail -n 3 "$OUT/bench-$model.log" | tee -a "$OUT/summary.txt"
  fi
done

say "total $(elapsed) s; status $status; logs and JSON in $OUT"
exit $status
