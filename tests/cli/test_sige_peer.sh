#!/bin/sh
# tools/peer/sige_peer.py (ours vs the published SIGE implementation) is
# benchmark-only, so CI checks what can break without running the benchmark:
# its --help, and its key mapping against the names `sige bench
# --save-weights` writes today (every tensor used once, strict loads into
# their dense and SIGE models, their dense forward at a small size agrees
# with tools/peer's plain PyTorch model), and that a missing tensor fails.
#   test_sige_peer.sh SIGE PYTHON SOURCE_ROOT
# Skipped (77) only when PYTHON has no torch or SIGE_CHECKOUT names no
# checkout of lmxyy/sige; their compiled extension is not needed here.
set -u
SIGE=$1 PYTHON=$2 ROOT=$3
PEER=$ROOT/tools/peer/sige_peer.py
"$PYTHON" -c 'import torch' 2> /dev/null || { echo "SKIP: $PYTHON has no torch"; exit 77; }
[ -f "${SIGE_CHECKOUT:-/nonexistent}/sige/nn/__init__.py" ] ||
  { echo "SKIP: SIGE_CHECKOUT does not name a checkout of lmxyy/sige"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0
"$PYTHON" "$PEER" --help > "$tmp/help" 2>&1 && grep -q -- '--check-names' "$tmp/help" ||
  { echo "FAIL: --help"; cat "$tmp/help"; fail=1; }
for m in gaugan ddpm; do
  if ! "$SIGE" bench --model $m --dense-only --runs 1 --warmup 0 --threads 2 \
      --save-weights "$tmp/$m.safetensors" > "$tmp/bench.log" 2>&1; then
    echo "FAIL: sige bench --model $m --save-weights"; cat "$tmp/bench.log"; fail=1; continue
  fi
  "$PYTHON" "$PEER" --model $m --check-names "$tmp/$m.safetensors" || { echo "FAIL: $m mapping"; fail=1; }
  # one tensor less: the mapping must notice (the check can fail)
  "$PYTHON" - "$ROOT/tools/peer" "$tmp/$m.safetensors" "$tmp/$m-less.safetensors" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import safetensors_io
w = safetensors_io.load(sys.argv[2])
del w[sorted(k for k in w if k.endswith(".bias"))[-1]]
safetensors_io.save(sys.argv[3], w)
PY
  if "$PYTHON" "$PEER" --model $m --check-names "$tmp/$m-less.safetensors" > "$tmp/less.log" 2>&1; then
    echo "FAIL: $m: a missing tensor passed the mapping check"; cat "$tmp/less.log"; fail=1
  else
    echo "ok: $m: a missing tensor is refused: $(tail -n 1 "$tmp/less.log")"
  fi
done
exit $fail
