#!/bin/sh
# Ours vs the published SIGE implementation (lmxyy/sige), docs/BENCHMARKS.md
# "The published implementation as a peer": GauGAN and one DDPM step at
# 1.2 % and 5 % edits, one JSON line per case in $OUT, then the markdown
# table (stdout) and the plot.  One command:
#
#   SIGE_CHECKOUT=/path/to/lmxyy-sige tools/peer/run_peer_table.sh [OUT]
#                                   (default docs/benchmarks/sige-peer.jsonl)
#
# Knobs (environment): SIGE=build/tools/sige THREADS=2 RUNS=3 WARMUP=1
#   ROUNDS=3 (interleaved ours/theirs processes) MODELS="gaugan ddpm"
#   RATIOS="0.012 0.05" PYTHON=/usr/bin/python3 (Debian's, with torch)
# Builds their CPU extension in the checkout when it is missing (Debian:
# python3-torch libtorch-dev pybind11-dev g++).  Run it on an idle machine:
# every number is wall-clock time.
set -eu
cd "$(dirname "$0")/../.."

OUT=${1:-docs/benchmarks/sige-peer.jsonl}
SIGE=${SIGE:-build/tools/sige}
THREADS=${THREADS:-2}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
MODELS=${MODELS:-gaugan ddpm}
RATIOS=${RATIOS:-0.012 0.05}
PYTHON=${PYTHON:-/usr/bin/python3}

[ -n "${SIGE_CHECKOUT:-}" ] || { echo "set SIGE_CHECKOUT to a checkout of https://github.com/lmxyy/sige" >&2; exit 1; }
[ -x "$SIGE" ] || { echo "no $SIGE: meson setup build && ninja -C build tools/sige" >&2; exit 1; }
if ! ls "$SIGE_CHECKOUT"/sige/cpu*.so > /dev/null 2>&1; then
  echo "building their CPU extension in $SIGE_CHECKOUT" >&2
  (cd "$SIGE_CHECKOUT" && MAX_JOBS=2 "$PYTHON" setup.py build_ext --inplace > build-ext.log 2>&1) ||
    { echo "their extension did not build: see $SIGE_CHECKOUT/build-ext.log" >&2; exit 1; }
fi
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

load() { cut -d' ' -f1 /proc/loadavg; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
printf '{"kind": "machine", "cpu": "%s", "cores": %s, "load_start": %s, "date": "%s", "commit": "%s", "threads": %s, "runs": %s, "warmup": %s, "rounds": %s}\n' \
  "$cpu" "$(nproc)" "$(load)" "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git rev-parse --short HEAD)" \
  "$THREADS" "$RUNS" "$WARMUP" "$ROUNDS" >> "$OUT"
status=0
for m in $MODELS; do
  for r in $RATIOS; do
    echo "sige_peer $m $r" >&2
    SIGE=$SIGE "$PYTHON" tools/peer/sige_peer.py --model "$m" --edit-ratio "$r" --threads "$THREADS" \
      --runs "$RUNS" --warmup "$WARMUP" --rounds "$ROUNDS" >> "$OUT" ||
      { echo "sige_peer $m $r: outputs or masks disagree (see $OUT)" >&2; status=1; }
  done
done
printf '{"kind": "machine_end", "load_end": %s, "date": "%s"}\n' "$(load)" "$(date -u +%Y-%m-%dT%H:%MZ)" >> "$OUT"
"$PYTHON" tools/plot_benchmarks.py "$OUT" --peer-png "$(dirname "$OUT")/sige-peer.png"
exit $status
