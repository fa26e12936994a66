#!/bin/sh
# The sparse GauGAN pass (1.2 % stroke, seed 0) with 1 and 2 threads, on an
# otherwise quiet machine and with one competing busy process at nice 0
# (issue #19, point 3), for each sige binary given (e.g. the old and the new
# build).  One line per run: binary, competing processes, threads, the
# median of RUNS sparse passes and the thread count the last pass ran with.
#   tools/bench-contention.sh [-r RUNS] SIGE [SIGE ...]
# A SIGE may carry bench options: "build/tools/sige --follow-free-cpus".
# BUSY="1" runs only the loaded case.  Stop other heavy jobs first (the numbers are only as quiet as the machine).
set -u
runs=5
if [ "${1:-}" = "-r" ]; then runs=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: $0 [-r RUNS] SIGE [SIGE ...]" >&2; exit 2; }
hog=
trap '[ -n "$hog" ] && kill "$hog" 2>/dev/null' EXIT INT TERM
for busy in ${BUSY:-0 1}; do
  if [ "$busy" = 1 ]; then
    nice -n 0 sh -c 'while :; do :; done' &
    hog=$!
    sleep 1
  fi
  for sige in "$@"; do
    for t in 1 2; do
      bin=${sige%% *}
      opts=${sige#"$bin"}
      # shellcheck disable=SC2086 # opts: options of the bench command
      line=$("$bin" bench $opts --model gaugan --edit-ratio 0.012 --sparse-only --runs "$runs" \
        --warmup 1 --threads "$t" --json 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.1f" % d["sparse_ms"])')
      printf '%s\tbusy %s\tthreads %s\tsparse %s ms\tload %s\n' "$sige" "$busy" "$t" "$line" \
        "$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done
