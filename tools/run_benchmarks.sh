#!/bin/sh
# The documented benchmark set (docs/BENCHMARKS.md): dense vs sparse for
# GauGAN and DDPM at four edit ratios, a whole 10-step SDEdit edit, the raw
# sgemm rates, and the PyTorch peer's dense timing; one JSON object per line
# in $OUT, then the plot and the markdown tables.
#
#   tools/run_benchmarks.sh [OUT]          (default docs/benchmarks/results.jsonl)
#
# Knobs (environment), so that a loaded machine can run a reduced set:
#   SIGE=build-peer/tools/sige  THREADS=2  RUNS=5  WARMUP=1
#   MODELS="gaugan ddpm"  RATIOS="0.005 0.012 0.05 0.2"  SDEDIT_STEPS=10 (0: skip)
#   PEER_RUNS=3 (0: skip the peer)  PYTHON=/usr/bin/python3 (Debian's, with torch)
# Run it on an idle machine: every number is wall-clock time.
set -eu
cd "$(dirname "$0")/.."

OUT=${1:-docs/benchmarks/results.jsonl}
SIGE=${SIGE:-build-peer/tools/sige}
THREADS=${THREADS:-2}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
MODELS=${MODELS:-gaugan ddpm}
RATIOS=${RATIOS:-0.005 0.012 0.05 0.2}
SDEDIT_STEPS=${SDEDIT_STEPS:-10}
PEER_RUNS=${PEER_RUNS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}

[ -x "$SIGE" ] || { echo "no $SIGE: meson setup build-peer && ninja -C build-peer" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

# the conditions the numbers were taken under, as the first line
load() { cut -d' ' -f1 /proc/loadavg; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
printf '{"kind": "machine", "cpu": "%s", "cores": %s, "load_start": %s, "date": "%s", "commit": "%s", "threads": %s, "runs": %s, "warmup": %s}\n' \
  "$cpu" "$(nproc)" "$(load)" "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git rev-parse --short HEAD)" \
  "$THREADS" "$RUNS" "$WARMUP" >> "$OUT"

bench() { # one sige bench run, its JSON line appended
  echo "sige bench $*" >&2
  "$SIGE" bench --threads "$THREADS" --json "$@" >> "$OUT"
}

bench --sgemm
for m in $MODELS; do
  for r in $RATIOS; do
    bench --model "$m" --edit-ratio "$r" --runs "$RUNS" --warmup "$WARMUP"
  done
done
# a whole SDEdit edit: the dense forward once more is the cheapest way in
case " $MODELS " in *" ddpm "*)
  [ "$SDEDIT_STEPS" -gt 0 ] && bench --model ddpm --dense-only --runs 1 --warmup 0 --sdedit "$SDEDIT_STEPS" ;;
esac
if [ "$PEER_RUNS" -gt 0 ]; then
  for m in $MODELS; do
    echo "peer $m" >&2
    SIGE=$SIGE "$PYTHON" tools/peer/peer.py --model "$m" --threads "$THREADS" --runs "$PEER_RUNS" \
      --warmup "$WARMUP" >> "$OUT" || echo "peer $m: outputs disagree (see agree in $OUT)" >&2
  done
fi
printf '{"kind": "machine_end", "load_end": %s, "date": "%s"}\n' "$(load)" "$(date -u +%Y-%m-%dT%H:%MZ)" >> "$OUT"

"$PYTHON" tools/plot_benchmarks.py "$OUT" --png "$(dirname "$OUT")/speedup.png"
