#!/bin/sh
# The seeds of the libFuzzer target fuzz_model_load (tests/fuzz/corpus/,
# written by tests/fuzz/make_seeds.py) build a model of the kind their name
# says, with `sige info` (which builds every model a file holds): a seed
# the engine refuses would make every input bred from it stop before
# parameter loading.  They also fit under the target's max_len in
# tools/fuzz.sh (libFuzzer truncates a longer seed, which then fails to
# load), and every model kind the seeds should cover has one.
# usage: test_fuzz_seeds.sh SIGE SOURCE_ROOT
set -u
sige=$1 root=$2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/tap-lib.sh"
dir=$root/tests/fuzz/corpus/fuzz_model_load
maxlen=$(sed -n '/^max_len_of()/,/^}/s/^ *fuzz_model_load) echo \([0-9]*\) ;;$/\1/p' "$root/tools/fuzz.sh")
seeds=$(ls "$dir")
echo "1..$(($(echo "$seeds" | wc -l) + 2))"
kinds=""
for s in $seeds; do
  case $s in
    spade_*) kind=spade-generator ;;
    gancomp_*) kind=sub-mobile-spade-generator ;;
    ddpm_*) kind=ddpm-unet ;;
    pd_*) kind=pd-unet ;;
    clip_*) kind=clip-text ;;
    *) kind=unknown ;;
  esac
  "$sige" info "$dir/$s" >"$tmp/out" 2>&1 && rc=0 || rc=$?
  size=$(wc -c <"$dir/$s")
  if [ "$rc" = 0 ] && grep -Eq "^model: +$kind$" "$tmp/out" && [ "$size" -le "${maxlen:-0}" ]; then
    ok "$s: builds a $kind, $size bytes <= max_len $maxlen"
    kinds="$kinds $kind"
  else
    not_ok "$s: exit $rc, expected a $kind of at most max_len ${maxlen:-(not found)} bytes ($size)"
  fi
done
echo "$seeds" >"$tmp/out"
missing=""
for k in spade-generator sub-mobile-spade-generator ddpm-unet pd-unet clip-text; do
  case " $kinds " in *" $k "*) ;; *) missing="$missing $k" ;; esac
done
[ -z "$missing" ] && ok "every kind has a seed that builds" || not_ok "no seed builds:$missing"
# the layouts renamed or split on load, besides the plain ones
"$sige" info "$dir/ddpm_ch4_fused.safetensors" >"$tmp/out" 2>&1
"$sige" info "$dir/ddpm_ch4_diffusers.safetensors" >>"$tmp/out" 2>&1
check "fused and diffusers layouts recognised" "^layout: +ddpm-sige-fused$" \
  "^layout: +diffusers-unet2d$"
exit $failed
