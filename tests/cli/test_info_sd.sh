#!/bin/sh
# sige info on Stable Diffusion checkpoints: the parts and their inferred
# configurations of a single file (UNet + VAE + text encoder, EMA keys) and
# of a diffusers folder, and the refusal of an unknown beta schedule.
# usage: test_info_sd.sh SIGE PYTHON MAKE_SD_CHECKPOINTS.PY REFERENCE_DIR BPE_VOCAB
set -u
sige=$1 python=$2 script=$3 ref=$4 vocab=$5
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/tap-lib.sh"
echo "1..4"
if ! "$python" "$script" "$tmp/ck" "$ref" "$vocab" >"$tmp/out" 2>&1; then
  echo "Bail out! $script failed: $(cat "$tmp/out")"
  exit 1
fi
"$sige" info "$tmp/ck/sd_full.safetensors" >"$tmp/out" 2>&1
check "single file: three parts, EMA noted, exit 0" "^parts: +sd-unet, clip-text" \
  "^part unet " "^part vae " \
  "^part text-encoder " "num_heads +2" "latent +16 x 16" "^EMA: " "heads +2"
"$sige" info "$tmp/ck/diffusers" >"$tmp/out" 2>&1 && rc=0 || rc=$?
check "diffusers folder: parts from their files, schedule, tokenizer" \
  "unet/diffusion_pytorch_model.safetensors" "vae/diffusion_pytorch_model.bin" \
  "text_encoder/model.fp16.safetensors" "sd-diffusers names" \
  "^schedule: +scaled_linear 0.00085 .. 0.012 over 1000$" "^tokenizer: .*vocab.json"
[ "$rc" = 0 ] && ok "folder: exit 0" || not_ok "folder: exit $rc"
"$sige" info "$tmp/ck/diffusers_cosine" >"$tmp/out" 2>&1 && rc=0 || rc=$?
if [ "$rc" = 1 ] && grep -q "squaredcos_cap_v2" "$tmp/out"; then ok "unknown schedule refused"
else not_ok "unknown schedule: exit $rc"; fi
exit $failed
