#!/bin/sh
# End-to-end tests of the GIMP plug-in in GIMP batch mode (TAP output).
#   run-gimp-tests.sh [--gimp 3] SOURCE_DIR BUILD_DIR SIGE_EXE PNG_COMPARE_EXE
# One GIMP start runs every case of e2e.scm (GauGAN) and e2e-ddpm.scm (DDPM
# SDEdit, with the tiny church UNet of the reference vectors in
# $SIGE_REFERENCE_DIR) in a private profile; then the files it wrote are
# compared with what `sige edit` computes for the same inputs.  GIMP 2.10
# runs tests/gimp/*.scm; --gimp 3 runs the same cases written for GIMP 3
# (tests/gimp3/*.scm) with gimp-console-3.0, as tests/gimp3/run-gimp3-tests.sh
# does inside its Debian 13 chroot.
set -u
. "$(dirname "$0")/tap-lib.sh"
gimp=2.10
if [ "${1:-}" = --gimp ]; then
  gimp=$2
  shift 2
fi
src=$1 build=$2 sige=$3 compare=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/sige-gimp-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
profile=$work/profile
mkdir -p "$work/xdg-config" "$work/xdg-cache" "$work/xdg-data"
case "$gimp" in
  2.10)
    console=gimp-console-2.10 scripts=$src/tests/gimp
    gimp2_profile "$profile"
    GIMP2_DIRECTORY=$profile "$src/tools/install-plugin.sh" --gimp 2.10 "$build" >/dev/null || {
      echo "Bail out! could not install the plug-in"; exit 1; }
    ;;
  3)
    # GIMP 3 makes the profile's folders itself: only the plug-in's is needed.
    console=gimp-console-3.0 scripts=$src/tests/gimp3
    GIMP3_DIRECTORY=$profile "$src/tools/install-plugin.sh" --gimp 3 "$build" >/dev/null || {
      echo "Bail out! could not install the plug-in"; exit 1; }
    ;;
  *)
    echo "Bail out! --gimp takes 2.10 or 3, not $gimp"; exit 1 ;;
esac
cp "$src/data/examples/street_labels.png" "$work/labels.png"
cp "$src/tests/cli/data/photo_512x256.png" "$work/photo.png"
# a corrupt model: a safetensors header length that points past the file
head -c 4096 "$src/data/models/gaugan-demo.safetensors" > "$work/corrupt.safetensors"
# the label model chosen explicitly where a photo must be taken for labels
# (with no model chosen a photo gets the picture model)
cp "$src/data/models/gaugan-street.safetensors" "$work/street.safetensors"
cp "$src/tests/cli/data/church256_a.png" "$work/church256.png"

# The DDPM cases need the reference weights; without them they fail (never
# skip), and GIMP runs the GauGAN cases alone.
ref=${SIGE_REFERENCE_DIR:-$src/../shared/reference}
ddpm_model=$ref/ddpm-church-tiny/weights.safetensors
ddpm=no
scm_files=e2e.scm
if [ -f "$ddpm_model" ]; then
  ddpm=yes
  scm_files="$scm_files e2e-ddpm.scm"
fi
# The Stable Diffusion cases: a tiny checkpoint made from the reference
# weights (UNet + VAE of sd-img2img-tiny, clip-text-tiny) at test time.
sd=no
sd_model=$work/tiny-sd.safetensors
make_sd_tiny=$build/plugin/common/tests/make_sd_tiny
if [ -f "$scripts/e2e-sd.scm" ] && [ -x "$make_sd_tiny" ] &&
   "$make_sd_tiny" "$ref" "$sd_model" > "$work/make-sd.log" 2>&1; then
  sd=yes
  scm_files="$scm_files e2e-sd.scm"
fi
# GIMP 3 evaluates each batch command in a fresh interpreter, so each one
# loads the helpers first.
prelude=
if [ "$gimp" = 3 ]; then
  sed "s|@OUT@|$work|g" "$scripts/helpers.scm" > "$work/helpers.scm"
  prelude="(load \"$work/helpers.scm\") "
fi
set --
for f in $scm_files; do
  sed -e "s|@OUT@|$work|g" -e "s|@DDPM_MODEL@|$ddpm_model|g" -e "s|@SD_MODEL@|$sd_model|g" \
    "$scripts/$f" > "$work/$f"
  set -- "$@" -b "(begin $prelude(load \"$work/$f\"))"
done
threads=${SIGE_NUM_THREADS:-2}
start=$(date +%s.%N)
if [ "$gimp" = 3 ]; then
  # --quit rather than (gimp-quit 0): GIMP 3 stays up after a failing
  # batch command otherwise.
  GIMP3_DIRECTORY=$profile XDG_CONFIG_HOME=$work/xdg-config XDG_CACHE_HOME=$work/xdg-cache \
    XDG_DATA_HOME=$work/xdg-data SIGE_NUM_THREADS=$threads LANGUAGE=C LC_ALL=C \
    timeout 420 gimp-console-3.0 -i -d -f --quit --batch-interpreter=plug-in-script-fu-eval "$@" \
    > "$work/gimp.log" 2>&1
else
  GIMP2_DIRECTORY=$profile XDG_CONFIG_HOME=$work/xdg-config XDG_CACHE_HOME=$work/xdg-cache \
    SIGE_NUM_THREADS=$threads LANGUAGE=C LC_ALL=C \
    timeout 420 gimp-console-2.10 -i -d -f "$@" -b '(gimp-quit 0)' > "$work/gimp.log" 2>&1
fi
rc=$?
end=$(date +%s.%N)
sed 's/^/# gimp: /' "$work/gimp.log"
echo "# $console ran for $(awk "BEGIN { printf \"%.1f\", $end - $start }") s (exit $rc)"

result() { sed -n "s/^.*RESULT $1 //p" "$work/gimp.log" | head -n 1; }
passes() { sed -n "s/^sparse-regenerate: \\([a-z-]*\\) pass.*\\[$1\\]\$/\\1/p" "$work/gimp.log" | tr '\n' ' '; }
# field of the Nth plug-in pass line of a mode: changed, written
pass_rect() { sed -n "s/^sparse-regenerate: .*$3 \\([0-9]*\\),\\([0-9]*\\) \\([0-9]*\\)x\\([0-9]*\\),.*\\[$1\\]\$/\\1,\\2,\\3,\\4/p" \
  "$work/gimp.log" | sed -n "$2p"; }

check "gimp exits cleanly" eq "$rc" 0
check "no leaked GEGL buffers" sh -c "! grep -q 'GeglBuffers leaked' '$work/gimp.log'"
check "first run: full pass, one new layer" eq "$(result first-layer-count)" 2
check "no model chosen, a picture: the shipped church DDPM runs" sh -c \
  "[ '$(result picture-default-result)' -gt 0 ] && [ '$(result picture-default-name)' = 'Sparse Regenerate (ddpm-church)' ]"
check "no model chosen, a label map: the shipped street GauGAN; layer named after it" \
  eq "$(result first-name)" "Sparse Regenerate (gaugan-street)"
check "first run: output above the source" eq "$(result first-position)" 0
check "second run: same output layer, no new layer" \
  sh -c "[ '$(result second-layer)' = '$(result first-layer)' ] && [ '$(result second-layer-count)' = 2 ]"
check "passes: full, sparse, none, full after reset, full on the indexed map" \
  eq "$(passes labels)" "full sparse none full full "
check "second run: selection restored" eq "$(result selection-after)" "300,40,320,60,"

# the reference: sige edit on the same two label maps
"$sige" edit --model "$src/data/models/gaugan-street.safetensors" --original "$work/labels.png" \
  --edited "$work/edited.png" --out "$work/cli-edit.png" --dense-out "$work/cli-full.png" \
  > "$work/cli.log" 2>&1
sed 's/^/# sige edit: /' "$work/cli.log"
rect=$(sed -n 's/^changed region  x \([0-9]*\), y \([0-9]*\), \([0-9]*\) x \([0-9]*\)$/\1,\2,\3,\4/p' "$work/cli.log")
check "first run equals sige's full pass (within 1 level)" \
  "$compare" "$work/first.png" "$work/cli-full.png" --max-diff 1
check "second (sparse) run equals sige edit (within 1 level)" \
  "$compare" "$work/second.png" "$work/cli-edit.png" --max-diff 1
check "second run: pixels outside sige's changed rectangle untouched" \
  "$compare" "$work/first.png" "$work/second.png" --within "${rect:-0,0,0,0}" --differ
check "unchanged input: output untouched" "$compare" "$work/second.png" "$work/unchanged.png" --max-diff 0
check "reset: full pass into the same layer" \
  sh -c "[ '$(result reset-layer)' = '$(result first-layer)' ] && [ '$(result reset-layer-count)' = 2 ]"
"$sige" render --model "$src/data/models/gaugan-street.safetensors" --labels "$work/edited.png" \
  --out "$work/cli-render-edited.png" > /dev/null 2>&1
check "reset: full pass equals sige render of the edited map (within 1 level)" \
  "$compare" "$work/after-reset.png" "$work/cli-render-edited.png" --max-diff 1
check "corrupt model: an error and no new layer" \
  sh -c "[ '$(result corrupt-result)' = -1 ] && [ '$(result corrupt-layer-count)' = 2 ]"
check "corrupt model: the message names the file and the fix" \
  grep -q "error: Could not load the model \"$work/corrupt.safetensors\".*Choose a GauGAN" "$work/gimp.log"
check "corrupt model: output layer untouched" "$compare" "$work/after-reset.png" "$work/after-corrupt.png" --max-diff 0
check "wrong layer size: an error and no new layer" \
  sh -c "[ '$(result wrong-size-result)' = -1 ] && [ '$(result wrong-size-layer-count)' = 1 ]"
check "wrong layer size: the message names both sizes" \
  grep -q "error: The input is 256 x 128 pixels but the model expects 512 x 256" "$work/gimp.log"
check "photo as labels: refused before any pass, no new layer" \
  sh -c "[ '$(result photo-result)' = -1 ] && [ '$(result photo-layer-count)' = 1 ]"
check "photo as labels: the message says how many pixels are far from the palette" \
  grep -q "error: This does not look like a label map: 119552 of its 131072 pixels (91 %) are farther than 24 levels" "$work/gimp.log"
# GIMP 2.10's gimp-plugins-query gives the image types (what GIMP greys the
# menu entries by) of the three menu entries: Sparse Regenerate..., Reset
# Sparse Regenerate Snapshot and Sparse Regenerate Live; GIMP 3's Script-Fu has no such query
# (gimp-plug-ins-query gives no types; the types' PDB call is private)
if [ "$gimp" = 2.10 ]; then
  check "indexed label map: the menu entries are enabled for INDEXED images ($(result image-types))" \
    sh -c "[ '$(result image-types-count)' = 3 ] && [ -n '$(result image-types)' ] &&
           ! echo '$(result image-types)' | tr ';' '\n' | grep -v '^\$' | grep -vq 'INDEXED\*'"
fi
check "indexed label map: accepted, one new layer" \
  sh -c "[ '$(result indexed-result)' -gt 0 ] && [ '$(result indexed-layer-count)' = 2 ]"
check "indexed label map: the image became RGB in the run" \
  sh -c "[ '$(result indexed-type-before)' = 2 ] && [ '$(result indexed-type-after)' = 0 ]"
check "indexed label map: a message says so" \
  grep -q "the image was indexed; it is now RGB" "$work/gimp.log"
check "indexed label map: the labels' colours unchanged" \
  "$compare" "$work/labels.png" "$work/indexed-source.png" --max-diff 0
check "indexed label map: the output equals sige's full pass (within 1 level)" \
  "$compare" "$work/indexed-out.png" "$work/cli-full.png" --max-diff 1
check "Cityscapes palette installed into the profile" test -f "$profile/palettes/Cityscapes.gpl"
check "help domain registered with the plug-in's help folder" grep -qF \
  "(help-def \"sparse-regenerate\" \"file://$profile/plug-ins/sparse-regenerate/help\")" "$profile/pluginrc"
if [ "$gimp" = 3 ]; then
  check "two layers selected: an error and no new layer" \
    sh -c "[ '$(result two-layers-result)' = -1 ] && [ '$(result two-layers-layer-count)' = 2 ]"
  check "two layers selected: the message says to select one" \
    grep -q "error: Sparse Regenerate works on one layer at a time, but 2 are selected" "$work/gimp.log"
fi

# ---- DDPM (SDEdit) ----
msg_steps='The DPM-Solver++ sampler needs at least 2 steps. Choose 2 or more steps, or the DDIM sampler.'
if [ "$ddpm" = yes ]; then
  SIGE_NUM_THREADS=$threads "$sige" edit --model "ddpm:$ddpm_model" --sampler dpmsolver++ \
    --steps 3 --strength 0.2 --seed 7 --original "$work/ddpm-orig.png" \
    --edited "$work/ddpm-edited.png" --out "$work/cli-ddpm-edit.png" > "$work/cli-ddpm.log" 2>&1
  sed 's/^/# sige edit (ddpm): /' "$work/cli-ddpm.log"
  drect=$(sed -n 's/^changed region  x \([0-9]*\), y \([0-9]*\), \([0-9]*\) x \([0-9]*\)$/\1,\2,\3,\4/p' "$work/cli-ddpm.log")
  check "ddpm passes: (the default picture model's snapshot) snapshot, sparse, sparse, new snapshot" \
    eq "$(passes image)" "full full sparse sparse full "
  check "ddpm first run: one new layer named after the model" sh -c \
    "[ '$(result ddpm-first-layer-count)' = 2 ] && [ '$(result ddpm-first-name)' = 'Sparse Regenerate (weights)' ]"
  check "ddpm first run: the output is the image itself (within 1 level)" \
    "$compare" "$work/ddpm-first.png" "$work/ddpm-orig.png" --max-diff 1
  check "ddpm second run: same output layer, no new layer" \
    sh -c "[ '$(result ddpm-second-layer)' = '$(result ddpm-first-layer)' ] && [ '$(result ddpm-second-layer-count)' = 2 ]"
  # Untouched pixels stay untouched: the edits (e2e-ddpm.scm) grown by the
  # plug-in's margin, 16 px at 256 x 256 (sige_edit_margin), are all the
  # output may change; inside, the output is sige edit's.
  reach2=134,124,72,62 reach3=14,184,48,48
  check "ddpm second (sparse) run: within 16 px of the edit, equals sige edit (within 1 level)" \
    "$compare" "$work/ddpm-second.png" "$work/cli-ddpm-edit.png" --only "$reach2" --max-diff 1
  check "ddpm second run: every pixel more than 16 px from the edit as it was" \
    "$compare" "$work/ddpm-first.png" "$work/ddpm-second.png" --within "$reach2" --differ
  check "ddpm second run: pixels outside sige's changed rectangle untouched" \
    "$compare" "$work/ddpm-first.png" "$work/ddpm-second.png" --within "${drect:-0,0,0,0}" --differ
  # sige edit's own output keeps DPM-Solver++'s noise trace far from the
  # edit (its changed rectangle is the whole image): what the plug-in hides
  check "ddpm second run: sige edit itself changes pixels far from the edit (the noise trace)" \
    sh -c "! '$compare' '$work/ddpm-first.png' '$work/cli-ddpm-edit.png' --within '$reach2'"
  check "ddpm third run: every pixel more than 16 px from both edits as it was" \
    "$compare" "$work/ddpm-first.png" "$work/ddpm-third.png" --within "$reach2" --within "$reach3" --differ
  rect3=$(pass_rect image 4 changed) # pass 1: the default picture model's run
  check "ddpm third run: a local changed rectangle ($rect3)" \
    sh -c "[ -n '$rect3' ] && [ '$rect3' != '0,0,256,256' ] && [ '$rect3' != '0,0,0,0' ]"
  check "ddpm third run: pixels outside the changed rectangle untouched" \
    "$compare" "$work/ddpm-second.png" "$work/ddpm-third.png" --within "${rect3:-0,0,0,0}" --differ
  check "ddpm third run: same output layer" eq "$(result ddpm-third-layer)" "$(result ddpm-first-layer)"
  check "ddpm other steps: a message naming the change" \
    grep -q "steps changed since the snapshot.*taking a new snapshot" "$work/gimp.log"
  check "ddpm other steps: new snapshot into the same layer" \
    sh -c "[ '$(result ddpm-resnap-layer)' = '$(result ddpm-first-layer)' ] && [ '$(result ddpm-resnap-layer-count)' = 2 ]"
  check "ddpm other steps: the new snapshot shows the current image (within 1 level)" \
    "$compare" "$work/ddpm-resnap.png" "$work/ddpm-edited2.png" --max-diff 1
  check "ddpm one DPM-Solver++ step: an error naming the fix" sh -c \
    "[ '$(result ddpm-bad-steps-result)' = -1 ] && grep -qF 'error: $msg_steps' '$work/gimp.log'"
  check "ddpm wrong layer size: an error naming both sizes, no new layer" sh -c \
    "[ '$(result ddpm-wrong-size-result)' = -1 ] && [ '$(result ddpm-wrong-size-layer-count)' = 1 ] && grep -q 'error: The input is 128 x 96 pixels but the model expects 256 x 256' '$work/gimp.log'"
  gimp_ms=$(sed -n 's/^sparse-regenerate: sparse pass \([0-9.]*\) ms (engine \([0-9.]*\) ms).*\[image\]$/\1 ms (engine \2 ms)/p' "$work/gimp.log" | head -n 1)
  cli_ms=$(sed -n 's/^edit (sparse) *\([0-9.]*\) ms.*/\1 ms/p' "$work/cli-ddpm.log")
  echo "# ddpm timing ($threads threads): GIMP second run $gimp_ms; sige edit sparse $cli_ms"
else
  not_ok "ddpm cases: the reference weights $ddpm_model are missing (get ../shared/reference or configure -Dreference_dir=...)"
fi
# ---- Stable Diffusion (issue 18 point 5) ----
if [ "$sd" = yes ]; then
  SIGE_NUM_THREADS=$threads "$sige" edit --model "sd:$sd_model" --prompt "a church" --steps 4 \
    --strength 0.5 --seed 3 --original "$work/sd-orig.png" --edited "$work/sd-edited.png" \
    --out "$work/cli-sd-edit.png" --dense-out "$work/cli-sd-first.png" > "$work/cli-sd.log" 2>&1
  sed 's/^/# sige edit (sd): /' "$work/cli-sd.log"
  # (then a snapshot with DPM-Solver++ once the SD pipeline has it)
  check "sd img2img passes: snapshot, sparse, new snapshot (prompt), nothing to do" \
    sh -c "case '$(passes sd-img2img)' in 'full sparse full none '|'full sparse full none full ') ;; *) exit 1;; esac"
  check "sd inpainting passes: snapshot, sparse" eq "$(passes sd-inpaint)" "full sparse "
  check "sd first run: one new layer named after the checkpoint" sh -c \
    "[ '$(result sd-first-layer-count)' = 2 ] && [ '$(result sd-first-name)' = 'Sparse Regenerate (tiny-sd)' ]"
  check "sd first run: equals sige edit's snapshot (within 1 level)" \
    "$compare" "$work/sd-first.png" "$work/cli-sd-first.png" --max-diff 1
  check "sd second run: same output layer, no new layer" \
    sh -c "[ '$(result sd-second-layer)' = '$(result sd-first-layer)' ] && [ '$(result sd-second-layer-count)' = 2 ]"
  check "sd second (sparse) run: equals sige edit (within 1 level)" \
    "$compare" "$work/sd-second.png" "$work/cli-sd-edit.png" --max-diff 1
  # the stroke at 16..32 reaches (UNet and decoder dilation, mask pyramid
  # cells) less than 128 px: the plug-in leaves everything beyond as it was
  check "sd second run: pixels beyond the stroke's reach untouched" \
    "$compare" "$work/sd-first.png" "$work/sd-second.png" --within 0,0,128,128 --differ
  check "sd inpainting: the selection stays, same output layer" sh -c \
    "[ '$(result sd-inpaint-selection)' = 0 ] && [ '$(result sd-inpaint-layer)' = '$(result sd-first-layer)' ]"
  check "sd inpainting: a message says the selection is inpainted" \
    grep -q "the image has a selection, so the selection is inpainted" "$work/gimp.log"
  check "sd inpainting: only the selection changed from the picture" \
    "$compare" "$work/sd-edited.png" "$work/sd-inpaint.png" --within 192,192,32,32 --differ
  check "sd inpainting, another selection (sparse): only it changed from the picture" \
    "$compare" "$work/sd-edited.png" "$work/sd-inpaint2.png" --within 40,200,24,24 --differ
  check "sd another prompt: a message naming it, a new snapshot into the same layer" sh -c \
    "grep -q 'the prompt changed since the snapshot' '$work/gimp.log' && [ '$(result sd-prompt-layer)' = '$(result sd-first-layer)' ] && [ '$(result sd-prompt-layer-count)' = 2 ]"
  # GIMP 2.10: the seven-argument procedure; GIMP 3: the same arguments again
  check "sd the seven-argument procedure goes on with the remembered prompt (nothing to do)" \
    eq "$(result sd-old-proc-layer)" "$(result sd-first-layer)"
  # GIMP 2.10's argument is "sampler", GIMP 3's "sd-sampler"
  if [ "$gimp" = 2.10 ]; then
    bad_sampler='the argument sampler takes "ddim" or "dpmsolver++"'
  else
    bad_sampler='the argument sd-sampler takes "ddim" or "dpmsolver++" (or "" for the last used), not "euler"'
  fi
  check "sd unknown sampler: a calling error naming the argument and the names it takes" sh -c \
    "[ '$(result sd-bad-sampler-result)' = -1 ] && grep -qF '$bad_sampler' '$work/gimp.log'"
  check "sd unknown sampler: no new layer, the output layer untouched" sh -c \
    "[ '$(result sd-bad-sampler-layer-count)' = 2 ] && '$compare' '$work/sd-pre-bad-sampler.png' '$work/sd-post-bad-sampler.png' --max-diff 0"
  check "sd DPM-Solver++: runs and gives an output layer" sh -c \
    "[ '$(result sd-dpm-result)' -gt 0 ]"
  check "sd odd layer size: an error naming the layer and the sizes, no new layer" sh -c \
    "[ '$(result sd-odd-result)' = -1 ] && [ '$(result sd-odd-layer-count)' = 1 ] && grep -q 'error: The layer \"odd picture\" is 100 x 100 pixels; Stable Diffusion needs both sides multiples of 8 (for example 96 x 96)' '$work/gimp.log'"
  sd_ms=$(sed -n 's/^sparse-regenerate: sparse pass \([0-9.]*\) ms (engine \([0-9.]*\) ms).*\[sd-img2img\]$/\1 ms (engine \2 ms)/p' "$work/gimp.log" | head -n 1)
  echo "# sd timing ($threads threads): GIMP sparse run $sd_ms; $(grep '^edit (sparse)' "$work/cli-sd.log")"
elif [ -f "$scripts/e2e-sd.scm" ]; then
  not_ok "sd cases: no tiny checkpoint (make_sd_tiny from $ref): $(cat "$work/make-sd.log" 2>/dev/null)"
fi
# The catalogue's entry rather than a gettext lookup: Debian 13's C.UTF-8
# ignores LANGUAGE, and its minimal chroot has no other locale.
translation() { # language, message
  msgunfmt --no-wrap "$build/po/$1/LC_MESSAGES/sparse-regenerate.mo" |
    awk -v id="msgid \"$2\"" '$0 == id { getline; print; exit }' | grep -v '^msgstr ""$'
}
for lang in de zh_CN; do
  check "$lang catalogue translates a DDPM message" translation "$lang" "$msg_steps"
done
tap_plan
