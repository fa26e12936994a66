#!/bin/sh
# The documented benchmark set (docs/BENCHMARKS.md): dense vs sparse for
# GauGAN, DDPM and GAN-Compression at four edit ratios, a whole 10-step SDEdit
# edit, the raw sgemm rates, the PyTorch peer's dense timing, the published
# SIGE as a peer (when SIGE_CHECKOUT is set), the Stable Diffusion 1.5 UNet
# step and decoder, the sparse pass under one competing busy process, and the
# peak memory of a GauGAN session; one JSON object per line in $OUT, then the
# plots, and the generated part of docs/BENCHMARKS.md rewritten from $OUT.
#
#   tools/run_benchmarks.sh [OUT]          (default docs/benchmarks/results.jsonl)
#
# Knobs (environment), so that a loaded machine can run a reduced set:
#   SIGE=build-peer/tools/sige  THREADS=2  RUNS=5  WARMUP=1
#   MODELS="gaugan ddpm gancomp"  RATIOS="0.005 0.012 0.05 0.2"  SDEDIT_STEPS=10 (0: skip)
#   PEER_RUNS=3 (0: skip the peer)  PYTHON=/usr/bin/python3 (Debian's, with torch)
#   SIGE_CHECKOUT=DIR (a checkout of lmxyy/sige: the published peer, ~11 min; unset: skipped)
#   SD_RATIOS="0.012 0.05" (empty: skip)  CONTENTION=1 (0: skip)  SESSION=1 (0: skip)
#   DOC=docs/BENCHMARKS.md (empty: print the tables instead of rewriting the file)
# Run it on an idle machine: every number is wall-clock time.
set -eu
cd "$(dirname "$0")/.."

OUT=${1:-docs/benchmarks/results.jsonl}
SIGE=${SIGE:-build-peer/tools/sige}
THREADS=${THREADS:-2}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
MODELS=${MODELS:-gaugan ddpm gancomp}
RATIOS=${RATIOS:-0.005 0.012 0.05 0.2}
SDEDIT_STEPS=${SDEDIT_STEPS:-10}
PEER_RUNS=${PEER_RUNS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}
SD_RATIOS=${SD_RATIOS-0.012 0.05}
CONTENTION=${CONTENTION:-1}
SESSION=${SESSION:-1}
DOC=${DOC-docs/BENCHMARKS.md}

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
# the peers exist for GauGAN and DDPM only
PEER_MODELS=
for m in $MODELS; do case $m in gaugan|ddpm) PEER_MODELS="$PEER_MODELS $m" ;; esac; done
if [ "$PEER_RUNS" -gt 0 ]; then
  for m in $PEER_MODELS; do
    echo "peer $m" >&2
    SIGE=$SIGE "$PYTHON" tools/peer/peer.py --model "$m" --threads "$THREADS" --runs "$PEER_RUNS" \
      --warmup "$WARMUP" >> "$OUT" || echo "peer $m: outputs disagree (see agree in $OUT)" >&2
  done
fi
if [ -n "${SIGE_CHECKOUT:-}" ]; then
  peer_out=$(mktemp)
  SIGE=$SIGE THREADS=$THREADS PYTHON=$PYTHON MODELS=$PEER_MODELS tools/peer/run_peer_table.sh "$peer_out" > /dev/null ||
    echo "published peer: outputs or masks disagree (see the agree fields)" >&2
  grep -v '"kind": "machine' "$peer_out" >> "$OUT" || true
  rm -f "$peer_out"
fi
# SD 1.5 at 512 x 512: one timed run each, the passes take seconds
for r in $SD_RATIOS; do
  echo "sige bench --model sd --edit-ratio $r" >&2
  "$SIGE" bench --model sd --threads "$THREADS" --runs 1 --warmup 0 --edit-ratio "$r" --json >> "$OUT"
done
# as a record: the sparse GauGAN pass with one competing busy process
# (issue #19 point 3), 1 and 2 threads, fixed and following the free CPUs
tagged() { # KIND KEY=VALUE... -- bench arguments: the bench's JSON with the tags added
  kind=$1; shift
  tags=
  while [ "$1" != -- ]; do tags="$tags $1"; shift; done
  shift
  "$SIGE" bench --json "$@" | "$PYTHON" -c '
import json, sys
rec = json.loads(sys.stdin.read().strip().splitlines()[-1])
rec["kind"] = sys.argv[1]
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    rec[k] = v
print(json.dumps(rec))' "$kind" $tags >> "$OUT"
}
# session and contention records say which build ran: a CUDA build linked
# cuBLAS until 2026-12-07 and was then resident at about 0.2 GB more from the
# start, GPU or not ("CUDA-linked build"); it now opens cuBLAS only for a
# CUDA backend ("CUDA build")
build="CPU-only build"
if ldd "$SIGE" 2> /dev/null | grep -q libcublas; then
  build="CUDA-linked build"
elif ldd "$SIGE" 2> /dev/null | grep -q libcudart; then
  build="CUDA build"
fi
if [ "$CONTENTION" = 1 ]; then
  nice -n 0 sh -c 'while :; do :; done' &
  hog=$!
  trap 'kill $hog 2>/dev/null' EXIT INT TERM
  sleep 1
  for follow in no yes; do
    opt=; [ "$follow" = yes ] && opt=--follow-free-cpus
    for t in 1 2; do
      echo "contention: threads $t follow $follow" >&2
      # shellcheck disable=SC2086 # opt: one option or none
      tagged contention busy=1 follow=$follow "build=$build" -- --model gaugan --edit-ratio 0.012 --sparse-only \
        --runs "$RUNS" --warmup 1 --threads "$t" $opt
    done
  done
  kill $hog; trap - EXIT INT TERM
fi
# peak memory of a whole GauGAN session (snapshot + one sparse edit), full
# size, F16 weights kept half, fp16 caches, with and without kept Winograd
# weights; the shipped street model for comparison
if [ "$SESSION" = 1 ]; then
  w=$(mktemp -d)
  "$SIGE" bench --model gaugan --runs 1 --warmup 0 --threads "$THREADS" --sparse-only \
    --save-weights "$w/f32.safetensors" > /dev/null
  "$SIGE" convert --f16 "$w/f32.safetensors" "$w/f16.safetensors" > /dev/null
  session() { # LABEL KEEP_MB MODEL_ARGS...
    label=$1; keep=$2; shift 2
    echo "session $label keep $keep" >&2
    SIGE_WINOGRAD_KEEP_MB=$keep /usr/bin/time -v "$SIGE" edit "$@" -a data/examples/street_labels.png \
      -b data/examples/street_labels_edit.png -o "$w/out.png" -t "$THREADS" --fp16-caches \
      > "$w/edit.log" 2> "$w/time.log"
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$w/time.log")
    secs=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$w/time.log")
    printf '{"kind": "session", "label": "%s", "winograd_keep_mb": %s, "peak_rss_kib": %s, "wall": "%s"}\n' \
      "$label" "$keep" "$rss" "$secs" >> "$OUT"
  }
  session "GauGAN ngf 64, F16 weights, $build" 0 -m "spade:$w/f16.safetensors"
  session "GauGAN ngf 64, F16 weights, $build" 1024 -m "spade:$w/f16.safetensors"
  session "the shipped street model (ngf 16, F16), $build" 1024
  rm -rf "$w"
fi
printf '{"kind": "machine_end", "load_end": %s, "date": "%s"}\n' "$(load)" "$(date -u +%Y-%m-%dT%H:%MZ)" >> "$OUT"

"$PYTHON" tools/plot_benchmarks.py "$OUT" --png "$(dirname "$OUT")/speedup.png" \
  --peer-png "$(dirname "$OUT")/sige-peer.png" ${DOC:+--doc "$DOC"}
