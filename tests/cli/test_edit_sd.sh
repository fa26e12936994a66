#!/bin/sh
# sige edit / sige inpaint with --model sd: end to end on a tiny SD
# checkpoint made from the reference weights (UNet + VAE of sd-img2img-tiny,
# text encoder of clip-text-tiny) through the real CLIP tokenizer, and the
# refusals of bad inputs.
# usage: test_edit_sd.sh SIGE PYTHON MAKE_SD_CHECKPOINTS.PY SD_CLI_UTIL.PY REFERENCE_DIR BPE_VOCAB
set -u
sige=$1 python=$2 script=$3 util=$4 ref=$5 vocab=$6
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/tap-lib.sh"
"$python" "$script" "$tmp/ck" "$ref" "$vocab" >"$tmp/out" 2>&1; rc=$?
if [ "$rc" = 3 ]; then echo "1..0 # SKIP python3-torch missing"; exit 77; fi
[ "$rc" = 0 ] || { echo "Bail out! $script failed: $(cat "$tmp/out")"; exit 1; }
echo "1..17"
"$python" "$util" inputs "$tmp" "$tmp/ck/sd_full.safetensors" || { echo "Bail out! inputs"; exit 1; }
ck=sd:$tmp/sd.safetensors
common="--prompt a,church --steps 8 --strength 0.5 --threads 1"
run() { "$sige" "$@" >"$tmp/out" 2>&1; }
# 1-3: img2img sparse: exit 0, 256 x 256, far pixels as the snapshot's result
if run edit --model "$ck" $common --original "$tmp/a.png" --edited "$tmp/b.png" \
     --out "$tmp/e.png" --dense-out "$tmp/e0.png" && grep -q "^edit (sparse)" "$tmp/out"; then
  ok "edit sd: sparse runs"; else not_ok "edit sd: sparse runs"; fi
cat "$tmp/out" | sed 's/^/# /'
"$python" "$util" size "$tmp/e.png" 256 256 && ok "edit output is 256 x 256" || not_ok "edit output size"
# The edit is rows/columns 24..40; the UNet's mask is dilated by 5 latent
# pixels (40 px) and its pyramid reaches 1/4 of the latent (32 px cells), so
# beyond 96 px nothing is recomputed: up to 1 level of 8-bit rounding noise
# (measured 1) against the snapshot's own picture.
"$python" "$util" compare "$tmp/e.png" "$tmp/e0.png" 0,96,0,96 1 >"$tmp/out" 2>&1 &&
  ok "edit: far pixels equal the snapshot's result" || not_ok "edit: far pixels"
# 4: --dense against sparse: SIGE's sparse passes reuse the snapshot's
# normalisation statistics, so they differ near the edit (measured max 14,
# mean 0.79 of 255): limits max 32 anywhere, mean 2
if run edit --model "$ck" $common --original "$tmp/a.png" --edited "$tmp/b.png" \
     --out "$tmp/ed.png" --dense && grep -q "^edit (full" "$tmp/out" &&
   "$python" "$util" compare "$tmp/e.png" "$tmp/ed.png" 0,0,0,0 32 2 >"$tmp/out" 2>&1; then
  ok "edit --dense close to sparse"; else not_ok "edit --dense close to sparse"; fi
# 5-6: inpainting, sparse and dense
if run inpaint --model "$ck" --prompt "a church" --steps 4 --threads 1 --original "$tmp/a.png" \
     --mask "$tmp/m.png" --out "$tmp/i.png" && grep -Eq "^edit \(sparse\).*\(([2-9]|[1-9][0-9])\.[0-9]x fewer" "$tmp/out" &&
   "$python" "$util" size "$tmp/i.png" 256 256; then
  ok "inpaint sd: sparse, fewer MACs, 256 x 256"; else not_ok "inpaint sd: sparse"; fi
if run inpaint --model "$ck" --prompt "a church" --steps 4 --threads 1 --original "$tmp/a.png" \
     --mask "$tmp/m.png" --out "$tmp/id.png" --dense && "$python" "$util" size "$tmp/id.png" 256 256; then
  ok "inpaint sd: --dense"; else not_ok "inpaint sd: --dense"; fi
# 7-12: refusals, each naming what is wrong
expect() { # description, status, pattern, command...
  d=$1 st=$2 pat=$3; shift 3
  "$sige" "$@" >"$tmp/out" 2>&1; rc=$?
  if [ "$rc" = "$st" ] && grep -Eq -- "$pat" "$tmp/out"; then ok "$d"; else not_ok "$d (exit $rc)"; fi
}
expect "no prompt" 2 "--prompt is required" edit --model "$ck" -a "$tmp/a.png" -b "$tmp/b.png" -o "$tmp/x.png"
expect "sampler pd refused" 2 "--sampler pd: Stable Diffusion runs ddim or dpmsolver\+\+" \
  edit --model "$ck" $common --sampler pd -a "$tmp/a.png" -b "$tmp/b.png" -o "$tmp/x.png"
expect "size not a multiple of 8" 1 "odd.png: 100 x 100.*multiples of 8" \
  edit --model "$ck" $common -a "$tmp/odd.png" -b "$tmp/odd.png" -o "$tmp/x.png"
expect "size the checkpoint binds" 1 "sd_full.safetensors: the UNet is for 128 x 128 pictures.*sige.latent_h.*256 x 256" \
  edit --model "sd:$tmp/ck/sd_full.safetensors" $common -a "$tmp/a.png" -b "$tmp/b.png" -o "$tmp/x.png"
expect "no SD parts" 1 "no_sd.safetensors" \
  edit --model "sd:$tmp/ck/no_sd.safetensors" $common -a "$tmp/a.png" -b "$tmp/b.png" -o "$tmp/x.png"
expect "mask of another size" 1 "small.png.*128.*256" \
  inpaint --model "$ck" --prompt x -a "$tmp/a.png" --mask "$tmp/small.png" -o "$tmp/x.png"
# 13-17: --sampler dpmsolver++ with every SD flag (negative prompt,
# guidance, steps, strength, seed): the task line names the sampler and the
# steps run (int(0.5 * 8) = 4, as DDIM), far pixels equal the snapshot's
# (the same reach and 1 level of rounding as DDIM: test 3), the result is
# not DDIM's (measured mean |DPM - DDIM| 2.9 levels, max 31; limit: mean > 0.2) and a
# different seed changes it
dpm="--prompt a,church --negative-prompt blurry --guidance 5 --steps 8 --strength 0.5 --threads 1 --sampler dpmsolver++"
if run edit --model "$ck" $dpm --seed 3 --original "$tmp/a.png" --edited "$tmp/b.png" \
     --out "$tmp/p.png" --dense-out "$tmp/p0.png" &&
   grep -q "^task  *img2img, 4 of 8 dpmsolver++ steps, guidance 5, seed 3" "$tmp/out" &&
   grep -q "^edit (sparse)" "$tmp/out"; then
  ok "edit sd --sampler dpmsolver++: sparse runs"; else not_ok "edit sd --sampler dpmsolver++"; fi
"$python" "$util" compare "$tmp/p.png" "$tmp/p0.png" 0,96,0,96 1 >"$tmp/out" 2>&1 &&
  ok "dpmsolver++: far pixels equal the snapshot's result" || not_ok "dpmsolver++: far pixels"
run edit --model "$ck" $dpm --seed 3 --sampler ddim --original "$tmp/a.png" --edited "$tmp/b.png" --out "$tmp/q.png"
if ! "$python" "$util" compare "$tmp/p.png" "$tmp/q.png" 0,0,0,0 255 0.2 >"$tmp/out" 2>&1; then
  ok "dpmsolver++ differs from ddim"; else not_ok "dpmsolver++ differs from ddim"; fi
run edit --model "$ck" $dpm --seed 4 --original "$tmp/a.png" --edited "$tmp/b.png" --out "$tmp/s.png"
if ! "$python" "$util" compare "$tmp/p.png" "$tmp/s.png" 0,0,0,0 255 0.2 >"$tmp/out" 2>&1; then
  ok "--seed changes the result"; else not_ok "--seed changes the result"; fi
if run inpaint --model "$ck" --prompt "a church" --negative-prompt blurry --guidance 4 --steps 4 \
     --seed 2 --sampler dpmsolver++ --threads 1 --original "$tmp/a.png" --mask "$tmp/m.png" \
     --out "$tmp/ip.png" && grep -q "^task  *inpainting, 4 of 4 dpmsolver++ steps, guidance 4, seed 2" "$tmp/out" &&
   grep -Eq "^edit \(sparse\)" "$tmp/out" && "$python" "$util" size "$tmp/ip.png" 256 256 &&
   ! "$python" "$util" compare "$tmp/ip.png" "$tmp/i.png" 0,0,0,0 255 0.05 >/dev/null 2>&1; then
  ok "inpaint sd --sampler dpmsolver++"; else not_ok "inpaint sd --sampler dpmsolver++"; fi
exit $failed
