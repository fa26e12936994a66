#!/bin/sh
# The GauGAN full pass of the 512 x 256 example in GIMP 2.10's GUI (Xvfb,
# the plug-in as an artist runs it, its progress window on screen) against
# `sige render` of the same label map, idle and with BUSY competing
# processes spinning, each measured RUNS times (issue 16 point 12):
#   tools/plugin-under-load.sh BUILD_DIR [BUSY] [RUNS]
# Prints one line per run and the medians.  A measurement, not a test: run
# it on an otherwise idle machine.
set -u
src=$(cd "$(dirname "$0")/.." && pwd -P)
build=$(cd "$1" && pwd -P) busy=${2:-1} runs=${3:-3}
client=$build/tests/gimp/sf_client sige=$build/tools/sige
# meson's MALLOC_PERTURB_ (if run from a test) is not what an artist has
unset MALLOC_PERTURB_
gui_lib_dir=$src/tests/gimp
. "$gui_lib_dir/gui-lib.sh"
gui_init load
gimp_setup
start_xvfb 900
start_gimp 880 -d
model=$src/data/models/gaugan-demo.safetensors
spinners=''
spin() { for _ in $(seq "$1"); do sh -c 'while :; do :; done' & spinners="$spinners $!"; done; bg_pids="$bg_pids $spinners"; }
unspin() { for p in $spinners; do kill "$p" 2>/dev/null; done; spinners=''; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

sf 60 "(begin (define img (car (gimp-file-load RUN-NONINTERACTIVE \"$work/labels.png\" \"labels.png\")))
               (define layer (car (gimp-image-get-active-layer img)))
               (gimp-display-new img))" > /dev/null || bail "could not open the label map"
gimp_pass() { # a full pass through the plug-in; its ms from the log
  sf 60 "(plug-in-sparse-regenerate-reset RUN-NONINTERACTIVE img layer)" > /dev/null
  before=$(grep -c 'sparse-regenerate: full pass' "$work/gimp.log")
  sf 600 "(plug-in-sparse-regenerate RUN-NONINTERACTIVE img layer \"$model\" 0 0 -1)" > /dev/null ||
    bail "the plug-in run failed"
  grep 'sparse-regenerate: full pass' "$work/gimp.log" | sed -n "$((before + 1))s/.*full pass \([0-9.]*\) ms.*/\1/p"
}
cli_pass() { # sige render's wall time in ms
  t0=$(date +%s.%N)
  SIGE_NUM_THREADS=2 "$sige" render --model "$model" --labels "$work/labels.png" --out "$work/cli.png" \
    --threads 2 > /dev/null 2>&1 || bail "sige render failed"
  awk "BEGIN { printf \"%.1f\", ($(date +%s.%N) - $t0) * 1000 }"
}
gimp_pass > /dev/null # the model load and the first-touch costs, not counted
for load in 0 "$busy"; do
  spin "$load"
  sleep 1
  : > "$work/g" && : > "$work/c"
  for i in $(seq "$runs"); do
    g=$(gimp_pass) c=$(cli_pass)
    echo "$g" >> "$work/g" && echo "$c" >> "$work/c"
    echo "busy $load, run $i: GIMP full pass $g ms, sige render $c ms"
  done
  echo "busy $load: median GIMP $(median < "$work/g") ms, sige render $(median < "$work/c") ms ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
  unspin
done
gimp_quit > /dev/null
