#!/bin/sh
# CLI test of `sige edit` with the GAN-Compression and PD model kinds.
#   test_cli.sh SIGE SOURCE_ROOT   (env SIGE_REFERENCE_DIR: the reference cases)
set -u
SIGE=$1
SRC=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -x "$SIGE" ] || fail "sige executable '$SIGE' not found"
[ -n "${SIGE_REFERENCE_DIR:-}" ] || fail "SIGE_REFERENCE_DIR is not set (meson option reference_dir)"
REF=$SIGE_REFERENCE_DIR
GANCOMP=$REF/gancomp-cityscapes-tiny/weights.safetensors
PD=$REF/pd-church128-tiny/weights.safetensors
DDPM=$REF/ddpm-church-tiny/weights.safetensors
for f in "$GANCOMP" "$PD" "$DDPM"; do
  [ -f "$f" ] || fail "reference weights $f missing (SIGE_REFERENCE_DIR=$REF)"
done
TMP=$(mktemp -d) || fail "mktemp"
trap 'rm -rf "$TMP"' EXIT

# "W H" of a PNG, from its IHDR chunk
png_size() {
  set -- $(od -An -tu1 -j16 -N8 "$1")
  [ $# -eq 8 ] || return 1
  echo "$(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 )) $(( ($5 << 24) | ($6 << 16) | ($7 << 8) | $8 ))"
}

expect_png() { # FILE W H
  [ -s "$1" ] || fail "$1 was not written"
  got=$(png_size "$1") || fail "$1 is not a PNG"
  [ "$got" = "$2 $3" ] || fail "$1 is ${got% *}x${got#* }, expected $2x$3"
}

run() { # NAME ARGS...: must exit 0
  name=$1; shift
  echo "== $name: $SIGE $*"
  "$SIGE" "$@" >"$TMP/$name.log" 2>&1 || { cat "$TMP/$name.log" >&2; fail "$name exited with $?"; }
  cat "$TMP/$name.log"
}

# GAN-Compression sub-mobile SPADE: label maps (256x512, the model's size)
run gancomp edit --model "gancomp:$GANCOMP" --threads 2 \
  -a "$SRC/data/examples/street_labels.png" -b "$SRC/data/examples/street_labels_edit.png" \
  -o "$TMP/gancomp.png"
expect_png "$TMP/gancomp.png" 512 256
# the same with the file's own channel configuration given explicitly
run gancomp_config edit --model "gancomp:8_8_8_12_8_6_6_8:$GANCOMP" --threads 2 \
  -a "$SRC/data/examples/street_labels.png" -b "$SRC/data/examples/street_labels_edit.png" \
  -o "$TMP/gancomp_config.png"
cmp -s "$TMP/gancomp.png" "$TMP/gancomp_config.png" || fail "gancomp:CONFIG:PATH differs from gancomp:PATH"

# --dense: the same edit with full passes is exactly the dense render of the edited map
run dense_edit edit --model "spade:$SRC/data/models/gaugan-demo.safetensors" --threads 2 --dense \
  -a "$SRC/data/examples/street_labels.png" -b "$SRC/data/examples/street_labels_edit.png" \
  -o "$TMP/dense_edit.png"
grep -q "edit (full" "$TMP/dense_edit.log" || fail "sige edit --dense did not run a full pass"
run dense_render render --model "$SRC/data/models/gaugan-demo.safetensors" --threads 2 \
  --labels "$SRC/data/examples/street_labels_edit.png" --out "$TMP/dense_render.png"
cmp -s "$TMP/dense_edit.png" "$TMP/dense_render.png" || fail "sige edit --dense differs from sige render of the edit"

# no --model: the shipped defaults, chosen by what the input holds (a label
# map: the street GauGAN; a picture, tests/cli/data/church256_*, a held-out
# church scene and its copy with a painted blob: the church DDPM)
run default_render render --threads 2 --labels "$SRC/data/examples/street_labels.png" \
  --out "$TMP/default_render.png"
run street_render render --model "$SRC/data/models/gaugan-street.safetensors" --threads 2 \
  --labels "$SRC/data/examples/street_labels.png" --out "$TMP/street_render.png"
cmp -s "$TMP/default_render.png" "$TMP/street_render.png" || fail "sige render without --model is not the street GauGAN's"
run default_edit_labels edit --threads 2 -a "$SRC/data/examples/street_labels.png" \
  -b "$SRC/data/examples/street_labels_edit.png" -o "$TMP/default_edit_labels.png"
run street_edit edit --model "spade:$SRC/data/models/gaugan-street.safetensors" --threads 2 \
  -a "$SRC/data/examples/street_labels.png" -b "$SRC/data/examples/street_labels_edit.png" \
  -o "$TMP/street_edit.png"
cmp -s "$TMP/default_edit_labels.png" "$TMP/street_edit.png" || fail "sige edit of a label map without --model is not the street GauGAN's"
run default_edit_picture edit --threads 2 --steps 2 --strength 0.3 \
  -a "$SRC/tests/cli/data/church256_a.png" -b "$SRC/tests/cli/data/church256_b.png" \
  -o "$TMP/default_edit_picture.png"
run church_edit edit --model "ddpm:$SRC/data/models/ddpm-church.safetensors" --threads 2 \
  --steps 2 --strength 0.3 -a "$SRC/tests/cli/data/church256_a.png" \
  -b "$SRC/tests/cli/data/church256_b.png" -o "$TMP/church_edit.png"
cmp -s "$TMP/default_edit_picture.png" "$TMP/church_edit.png" || fail "sige edit of a picture without --model is not the church DDPM's"

# PD UNet: SDEdit on two 128x128 images, the PD sampler (the tiny model's heads are 32 wide)
run pd edit --model "pd:32:$PD" --threads 2 --strength 0.5 --steps 2 \
  -a "$SRC/tests/cli/data/church_a.png" -b "$SRC/tests/cli/data/church_b.png" -o "$TMP/pd.png"
expect_png "$TMP/pd.png" 128 128

# wrong kinds: non-zero exit and a message naming both kinds
check_refused() { # NAME SPEC EXPECT_WORD FOUND_WORD
  echo "== $1: $SIGE edit --model $2 (must fail)"
  if "$SIGE" edit --model "$2" -a "$SRC/tests/cli/data/church_a.png" \
       -b "$SRC/tests/cli/data/church_b.png" -o "$TMP/$1.png" >"$TMP/$1.log" 2>&1; then
    fail "$1: --model $2 succeeded"
  fi
  cat "$TMP/$1.log"
  grep -q "$3" "$TMP/$1.log" && grep -q "$4" "$TMP/$1.log" ||
    fail "$1: the message does not name '$3' and '$4'"
  [ ! -e "$TMP/$1.png" ] || fail "$1: wrote an output"
}
check_refused spade_on_ddpm "spade:$DDPM" SPADE ddpm-unet
check_refused pd_on_ddpm "pd:$DDPM" "PD UNet" ddpm-unet
check_refused gancomp_on_pd "gancomp:$PD" "sub-mobile SPADE" pd-unet

# a strength or steps that is not a usable number: refused up front (status
# 2, the usage error), naming the option and the text; never the default
for opt in --strength=nan --strength=0 --strength=1.5 --steps=0 --steps=-2 --steps=2.5; do
  echo "== edit $opt (must fail)"
  "$SIGE" edit --model "ddpm:$DDPM" -a "$SRC/tests/cli/data/church_a.png" \
    -b "$SRC/tests/cli/data/church_b.png" -o "$TMP/opt.png" "$opt" >"$TMP/opt.log" 2>&1
  rc=$?
  cat "$TMP/opt.log"
  [ $rc -eq 2 ] || fail "edit $opt exited with $rc, expected 2"
  grep -q -- "${opt%%=*} ${opt#*=}: expected" "$TMP/opt.log" || fail "edit $opt: no message naming it"
  [ ! -e "$TMP/opt.png" ] || fail "edit $opt: wrote an output"
done

# a photo given as a label map: refused before the pass, saying how many
# pixels are far from the palette (91 % of this one), no output written
echo "== render of a photo as labels (must fail)"
if "$SIGE" render --model "$SRC/data/models/gaugan-demo.safetensors" \
     --labels "$SRC/tests/cli/data/photo_512x256.png" --out "$TMP/photo.png" >"$TMP/photo.log" 2>&1; then
  fail "sige render accepted a photo as a label map"
fi
cat "$TMP/photo.log"
grep -q "photo_512x256.png: This does not look like a label map: [0-9]* of its 131072 pixels ([0-9]* %)" \
  "$TMP/photo.log" || fail "the refusal does not name the file and how many pixels"
[ ! -e "$TMP/photo.png" ] || fail "photo as labels: wrote an output"

# a case.json nested 75,000 levels deep crashed json-glib (stack overflow);
# its depth is bounded before parsing
echo "== check-reference on a deeply nested case.json (must fail cleanly)"
mkdir -p "$TMP/deepcase"
{ printf '{"model":'; head -c 75000 /dev/zero | tr '\0' '['; head -c 75000 /dev/zero | tr '\0' ']'; printf '}'; } \
  > "$TMP/deepcase/case.json"
status=0
"$SIGE" check-reference "$TMP/deepcase" >"$TMP/deepcase.log" 2>&1 || status=$?
cat "$TMP/deepcase.log"
[ "$status" -eq 1 ] || fail "check-reference on a deep case.json exited with $status (expected 1)"
grep -q "case.json: JSON nested deeper than 64 levels" "$TMP/deepcase.log" || fail "the refusal does not say why"

# members of the wrong type or out of range: json-glib's getters printed a
# GLib critical and gave 0, a double too large for a float became infinite;
# now each is refused naming the member
for bad in 'ngf": {"a": 1}|"ngf": expected an integer' \
           'batchnorm_eps": 1e300|"batchnorm_eps": expected a number in the range of a float'; do
  member=${bad%%|*} want=${bad#*|}
  mkdir -p "$TMP/badcase"
  # the case's tensors are read first: those of the GauGAN case
  ln -sf "$REF/gaugan-cityscapes-tiny/weights.safetensors" "$REF/gaugan-cityscapes-tiny/io.safetensors" \
    "$TMP/badcase/"
  printf '{"model": "spade-generator", "config": {"%s}, "sige": {}, "tolerances": {}}' "$member" \
    > "$TMP/badcase/case.json"
  echo "== check-reference with config member $member (must fail cleanly)"
  status=0
  "$SIGE" check-reference "$TMP/badcase" >"$TMP/badcase.log" 2>&1 || status=$?
  cat "$TMP/badcase.log"
  [ "$status" -eq 1 ] || fail "check-reference with config.$member exited with $status (expected 1)"
  grep -qF "badcase/case.json: $want" "$TMP/badcase.log" || fail "check-reference with config.$member: not refused naming it"
  ! grep -q CRITICAL "$TMP/badcase.log" || fail "check-reference with config.$member: a GLib critical"
done

# a bad output path is refused before anything is loaded or computed (the
# model path here does not exist either: the output is checked first)
echo "== output into a missing folder (must fail first)"
if "$SIGE" render --model "$TMP/no-such-model.safetensors" --labels "$SRC/data/examples/street_labels.png" \
     --out "$TMP/no/such/folder/out.png" >"$TMP/badout.log" 2>&1; then
  fail "sige render accepted an output in a missing folder"
fi
cat "$TMP/badout.log"
grep -q "no/such/folder/out.png: cannot write there" "$TMP/badout.log" || fail "the output path is not checked first"
if "$SIGE" edit --model "spade:$SRC/data/models/gaugan-demo.safetensors" -a "$SRC/data/examples/street_labels.png" \
     -b "$SRC/data/examples/street_labels_edit.png" -o "$TMP" >"$TMP/badout2.log" 2>&1; then
  fail "sige edit accepted a folder as its output"
fi
grep -q "is a folder" "$TMP/badout2.log" || fail "sige edit: a folder as output is not named"
# (the check's temporary file is OUT.XXXXXX, here next to $TMP: none may be left)
[ -z "$(ls -d "$TMP".?????? 2>/dev/null)" ] || fail "the check left a temporary file behind"

# SIGINT while the output is being written (stopped by gdb inside libpng's
# png_write_end, after the temporary file is made): the program ends only
# once the file is complete and renamed, and no OUT.XXXXXX is left (2 of 16
# interrupted runs used to leave one)
command -v gdb > /dev/null || fail "gdb is needed for the interrupted-write check (apt-get install gdb)"
echo "== SIGINT during the write"
mkdir -p "$TMP/sigint"
SIGE_NUM_THREADS=2 timeout 300 gdb -q -batch -ex 'set breakpoint pending on' -ex 'break png_write_end' \
  -ex run -ex delete -ex 'handle SIGINT nostop noprint pass' -ex 'signal SIGINT' \
  --args "$SIGE" render --model "$SRC/data/models/gaugan-demo.safetensors" \
  --labels "$SRC/data/examples/street_labels.png" --out "$TMP/sigint/out.png" >"$TMP/sigint.log" 2>&1 || true
grep -q "Breakpoint 1, .*png_write_end" "$TMP/sigint.log" || { cat "$TMP/sigint.log"; fail "gdb did not stop the write"; }
ls -la "$TMP/sigint"
[ "$(ls "$TMP/sigint")" = "out.png" ] || fail "an interrupted write left $(ls "$TMP/sigint" | tr '\n' ' ')"
expect_png "$TMP/sigint/out.png" 512 256

# 16 threads under a 2 GB address-space limit: OpenBLAS used to retry its
# work-buffer allocation forever; the threads are now capped by the limit,
# and the device line says so.  (Not under AddressSanitizer, whose shadow
# memory needs terabytes of address space.)
if grep -q __asan_init "$SIGE"; then
  echo "== threads under ulimit -v: not run in a sanitizer build"
else
  echo "== render with 16 threads under ulimit -v 2000000"
  status=0
  (ulimit -v 2000000 && SIGE_NUM_THREADS=16 timeout 120 "$SIGE" render \
     --model "$SRC/data/models/gaugan-demo.safetensors" --labels "$SRC/data/examples/street_labels.png" \
     --out "$TMP/capped.png") >"$TMP/capped.log" 2>&1 || status=$?
  cat "$TMP/capped.log"
  [ "$status" -ne 124 ] || fail "sige render hung with 16 threads under a 2 GB address-space limit"
  [ "$status" -eq 0 ] || fail "sige render failed with 16 threads under a 2 GB address-space limit"
  grep -q "16 asked; the [0-9]* MiB address-space limit" "$TMP/capped.log" || fail "the thread cap is not reported"
fi

# check-reference --weights: the case's own weights converted to F16 safetensors
# (exactly representable: the reference weights are F16) pass every check; the
# weights of another model fail with the tensor that is missing
run convert convert "$GANCOMP" "$TMP/gancomp_f16.safetensors" --f16
run check_weights check-reference --mode dense --weights "$TMP/gancomp_f16.safetensors" \
  "$(dirname "$GANCOMP")"
echo "== check-reference --weights with another model's weights (must fail)"
if "$SIGE" check-reference --mode dense --weights "$PD" "$(dirname "$GANCOMP")" \
     >"$TMP/wrong_weights.log" 2>&1; then
  fail "check-reference accepted the PD weights for the GAN-Compression case"
fi
cat "$TMP/wrong_weights.log"
grep -q "fc.weight.* is missing" "$TMP/wrong_weights.log" || fail "the error does not name the missing tensor"

# --memory-budget (the plug-ins' Memory budget): a snapshot whose caches need
# more is refused before the edit, saying what would fit; no output
echo "== edit --memory-budget 1 (must fail)"
status=0
"$SIGE" edit --model "spade:$SRC/data/models/gaugan-demo.safetensors" --threads 1 --memory-budget 1 \
  -a "$SRC/data/examples/street_labels.png" -b "$SRC/data/examples/street_labels_edit.png" \
  -o "$TMP/budget.png" >"$TMP/budget.log" 2>&1 || status=$?
cat "$TMP/budget.log"
[ "$status" -eq 1 ] || fail "edit --memory-budget 1 exited with $status, expected 1"
grep -q "the caches need [0-9]* MiB (1 step x [0-9]* MiB) but the memory budget is 1 MiB" "$TMP/budget.log" ||
  fail "edit --memory-budget 1: the refusal does not give the need and the budget"
[ ! -e "$TMP/budget.png" ] || fail "edit --memory-budget 1 wrote an output"
run budget_ok edit --model "spade:$SRC/data/models/gaugan-demo.safetensors" --threads 1 --memory-budget 2000 \
  -a "$SRC/data/examples/street_labels.png" -b "$SRC/data/examples/street_labels_edit.png" \
  -o "$TMP/budget_ok.png"
expect_png "$TMP/budget_ok.png" 512 256
echo "== edit --memory-budget -5 (must fail, usage)"
status=0
"$SIGE" edit --model "spade:$SRC/data/models/gaugan-demo.safetensors" --memory-budget -5 \
  -a "$SRC/data/examples/street_labels.png" -b "$SRC/data/examples/street_labels_edit.png" \
  -o "$TMP/budget.png" >"$TMP/budget2.log" 2>&1 || status=$?
cat "$TMP/budget2.log"
[ "$status" -eq 2 ] || fail "edit --memory-budget -5 exited with $status, expected 2"
grep -q -- "--memory-budget -5: expected" "$TMP/budget2.log" || fail "edit --memory-budget -5: no message naming it"

# Fresh hostile inputs (issue 20 points 2 and 3), under a 1.5 GB address-space
# limit where the build allows one (not under AddressSanitizer, whose shadow
# memory needs terabytes of address space): a 4.5 KB .pth whose pickle asks
# _codecs.encode for 32 GiB, a 380 KB PNG declaring 20000 x 20000 pixels, and
# a PNG of the model's size whose iCCP profile inflates to 1 GiB.  Each is
# refused (or, the iCCP one, read without the profile) with a message and no
# abort, in bounded time.
command -v python3 > /dev/null || fail "python3 is needed to make the hostile inputs"
python3 "$SRC/tests/cli/make_bombs.py" "$TMP" || fail "make_bombs.py failed"
if grep -q __asan_init "$SIGE"; then LIMIT=""; else LIMIT="prlimit --as=1500000000"; fi
limited() { # NAME EXPECTED_STATUS ARGS...: run under the limit with a timeout
  name=$1 want=$2; shift 2
  echo "== $name: ${LIMIT:-(no limit)} $SIGE $*"
  status=0
  $LIMIT timeout 120 "$SIGE" "$@" >"$TMP/$name.log" 2>&1 || status=$?
  cat "$TMP/$name.log"
  [ "$status" -ne 124 ] || fail "$name: hung"
  [ "$status" -lt 128 ] || fail "$name: killed by signal $((status - 128))"
  [ "$status" -eq "$want" ] || fail "$name: exited with $status, expected $want"
}
limited encode_bomb 1 info "$TMP/encode_bomb.pth"
grep -q "encode_bomb.pth: pickle offset [0-9]*: its values need more than [0-9]* bytes (64 MiB + 64 per byte" \
  "$TMP/encode_bomb.log" || fail "encode_bomb: not refused at the unpickler's budget"
limited png_bomb 1 render --threads 1 --model "$SRC/data/models/gaugan-demo.safetensors" \
  --labels "$TMP/png_bomb.png" --out "$TMP/png_bomb_out.png"
grep -q "png_bomb.png: the image is 20000 x 20000 pixels but the model expects 512 x 256" \
  "$TMP/png_bomb.log" || fail "png_bomb: not refused from the header"
limited png_iccp_bomb 0 render --threads 1 --model "$SRC/data/models/gaugan-demo.safetensors" \
  --labels "$TMP/png_iccp_bomb.png" --out "$TMP/png_iccp_out.png"
expect_png "$TMP/png_iccp_out.png" 512 256

# Out of memory (issue 20 point 11): the message names the phase and what
# can help.  Under a 350 MB address-space limit the model input (18 MiB)
# does not fit; under 450 MB the snapshot's caches and scratch do not.  (One
# OpenBLAS thread: OpenBLAS's start-up, before main, takes a 128 MiB buffer
# per thread, and at 300 MB even one does not fit and OpenBLAS itself
# retries forever before sige runs; docs/LIMITS.md.)
# The limits are what sige has mapped when main runs (its shared libraries,
# about 0.2 GB without the CUDA backend and 1 GB with CUDA's, and
# OpenBLAS's start-up buffers) plus what each phase needs; measured on sige
# blocked opening a FIFO (sige info FIFO), so the test means the same with
# and without CUDA.  Above that base: at 30-60 MB the input image does not
# fit, from 75 MB up to 280 MB the snapshot does not (measured).
base_vm_kb() {
  rm -f "$TMP/vm.fifo" && mkfifo "$TMP/vm.fifo" || return 1
  OPENBLAS_NUM_THREADS=1 SIGE_DEVICE=cpu "$SIGE" info "$TMP/vm.fifo" >/dev/null 2>&1 &
  vm_pid=$! last=0 same=0 i=0
  while [ $i -lt 600 ] && [ $same -lt 10 ]; do # blocked in open(): wchan, or a steady size
    [ "$(cat "/proc/$vm_pid/wchan" 2>/dev/null)" = wait_for_partner ] && same=10 && break
    vm=$(awk '/^VmSize/ {print $2}' "/proc/$vm_pid/status" 2>/dev/null)
    if [ "${vm:-0}" -gt 0 ] && [ "$vm" = "$last" ]; then same=$((same + 1)); else same=0; fi
    last=${vm:-0} i=$((i + 1))
    sleep 0.1
  done
  vm=$(awk '/^VmSize/ {print $2}' "/proc/$vm_pid/status" 2>/dev/null)
  kill "$vm_pid" 2>/dev/null; wait "$vm_pid" 2>/dev/null
  [ "${vm:-0}" -gt 0 ] && echo "$vm"
}
if [ -n "$LIMIT" ]; then
  base_kb=$(base_vm_kb) || fail "could not measure sige's address space at start"
  echo "== sige maps $base_kb kB when main runs"
  for case in "image $((base_kb + 45000)) decoding the image|a smaller image|(ulimit -v)" \
              "snapshot $((base_kb + 150000)) the snapshot (the full pass that records the caches)|--threads 1|--fp16-caches"; do
    words=${case%%|*} rest=${case#*|}
    fix1=${rest%%|*} fix2=${rest#*|}
    set -- $words
    name=oom_$1 kb=$2; shift 2
    phase="$*"
    echo "== edit under ulimit -v $kb (must fail naming: $phase)"
    status=0
    (ulimit -v "$kb" && OPENBLAS_NUM_THREADS=1 SIGE_DEVICE=cpu timeout 120 "$SIGE" edit --model "spade:$SRC/data/models/gaugan-demo.safetensors" \
       --threads 1 -a "$SRC/data/examples/street_labels.png" -b "$SRC/data/examples/street_labels_edit.png" \
       -o "$TMP/$name.png") >"$TMP/$name.log" 2>&1 || status=$?
    cat "$TMP/$name.log"
    [ "$status" -ne 124 ] || fail "$name: sige edit hung under ulimit -v $kb"
    [ "$status" -eq 1 ] || fail "$name: exited with $status, expected 1"
    grep -qF "Out of memory during $phase (" "$TMP/$name.log" || fail "$name: the phase is not named"
    grep -qF -- "$fix1" "$TMP/$name.log" && grep -qF -- "$fix2" "$TMP/$name.log" ||
      fail "$name: the remedies are not named"
    [ ! -e "$TMP/$name.png" ] || fail "$name: wrote an output"
  done
fi
echo "PASS"
