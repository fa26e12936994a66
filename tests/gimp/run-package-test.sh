#!/bin/sh
# The installed plug-in (TAP output): `meson install` into a scratch root
# puts the GIMP 2.10 plug-in, its model, palette, help and translations
# where GIMP looks; gimp-console-2.10, told of that folder, starts it and
# lists its procedures; the help domain is registered and maps the
# procedures' help ids to installed pages; and the settings survive a
# restart of GIMP with the same profile.
#   run-package-test.sh SOURCE_DIR BUILD_DIR [ROOT]
# ROOT: a folder the package was already installed into (tools/bootstrap.sh
# package checks its .deb with dpkg -x); default: meson install --destdir.
set -u
. "$(dirname "$0")/tap-lib.sh"
src=$1 build=$2 root=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/sige-package-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -z "$root" ]; then
  root=$work/root
  meson install -C "$build" --destdir "$root" --no-rebuild --quiet > "$work/install.log" 2>&1 || {
    sed 's/^/# /' "$work/install.log"; echo "Bail out! meson install failed"; exit 1; }
fi
libdir=$(pkg-config --variable=gimplibdir gimp-2.0)
plugins=$root$libdir/plug-ins
dir=$plugins/sparse-regenerate
check "binary in gimplibdir/plug-ins/sparse-regenerate/" test -x "$dir/sparse-regenerate"
check "street model beside it" cmp "$dir/gaugan-street.safetensors" "$src/data/models/gaugan-street.safetensors"
check "church model beside it" cmp "$dir/ddpm-church.safetensors" "$src/data/models/ddpm-church.safetensors"
check "Cityscapes palette beside it" cmp "$dir/Cityscapes.gpl" "$src/data/palettes/Cityscapes.gpl"
check "help map help/en/gimp-help.xml" test -f "$dir/help/en/gimp-help.xml"
check "user guide as HTML with its sections" grep -q 'id="the-dialog"' "$dir/help/en/index.html"
check "user guide's images" test -f "$dir/help/en/images/dialog.png"
mo=$(find "$root" -path '*/de/LC_MESSAGES/sparse-regenerate.mo' | head -n 1)
check "German catalogue in the prefix's localedir" test -n "$mo"

# Every help id the plug-in uses maps to a page (and anchor) that exists, as
# GIMP's help system resolves it: help/<locale>/gimp-help.xml, ref relative
# to that folder.
help_ref() { sed -n "s|.*<help-item id=\"$1\" ref=\"\\([^\"]*\\)\".*|\\1|p" "$dir/help/en/gimp-help.xml"; }
for id in plug-in-sparse-regenerate plug-in-sparse-regenerate-reset; do
  ref=$(help_ref "$id")
  page=${ref%%#*} anchor=${ref#*#}
  check "help id $id -> $ref exists" sh -c \
    "[ -n '$ref' ] && [ -f '$dir/help/en/$page' ] && { [ '$anchor' = '$ref' ] || grep -q 'id=\"$anchor\"' '$dir/help/en/$page'; }"
done

# GIMP with a private profile that looks for plug-ins in the scratch root
# too (its own folder stays first: Script-Fu runs the batch commands).
profile=$work/profile
gimp2_profile "$profile"
mkdir -p "$work/xdg-config" "$work/xdg-cache" "$work/models/church"
printf '(plug-in-path "${gimp_plug_in_dir}/plug-ins:%s")\n' "$plugins" > "$profile/gimprc"
# remembered from an earlier session: must be read and kept
cat > "$profile/sparse-regenerate.ini" <<INI
[settings]
threshold=0.45
device=cpu
budget-mib=1024
INI
model=$work/models/church/church-gaugan.safetensors
cp "$src/data/models/gaugan-demo.safetensors" "$model"
cp "$src/data/examples/street_labels.png" "$work/labels.png"

gimp() { # log, batch commands...
  log=$1; shift
  GIMP2_DIRECTORY=$profile XDG_CONFIG_HOME=$work/xdg-config XDG_CACHE_HOME=$work/xdg-cache \
    SIGE_NUM_THREADS=${SIGE_NUM_THREADS:-2} LANGUAGE=C LC_ALL=C \
    timeout 240 gimp-console-2.10 -i -d -f "$@" -b '(gimp-quit 0)' > "$log" 2>&1
  rc=$?
  sed 's/^/# gimp: /' "$log"
  return $rc
}
result() { sed -n "s/^.*RESULT $1 //p" "$2" | head -n 1; }
prelude="(define (say name value) (gimp-message (string-append \"RESULT \" name \" \" value)))
(define (exists name) (if (= 1 (car (gimp-procedural-db-proc-exists name))) \"yes\" \"no\"))
(define img (car (file-png-load RUN-NONINTERACTIVE \"$work/labels.png\" \"labels.png\")))
(define src (car (gimp-image-get-active-layer img)))"
t0=$(date +%s)
gimp "$work/gimp1.log" -b "(begin $prelude
  (say \"run\" (exists \"plug-in-sparse-regenerate\"))
  (say \"reset\" (exists \"plug-in-sparse-regenerate-reset\"))
  (say \"blurb\" (car (gimp-procedural-db-proc-info \"plug-in-sparse-regenerate\")))
  (define out (catch -1 (car (plug-in-sparse-regenerate RUN-NONINTERACTIVE img src \"$model\" 0 0 -1))))
  (say \"first-name\" (if (> out 0) (car (gimp-item-get-name out)) \"none\"))
  (gimp-image-delete img))"
check "first GIMP start exits cleanly" eq "$?" 0
check "GIMP lists plug-in-sparse-regenerate" eq "$(result run "$work/gimp1.log")" yes
check "GIMP lists plug-in-sparse-regenerate-reset" eq "$(result reset "$work/gimp1.log")" yes
check "the menu tooltip says what layer is needed" sh -c \
  "result() { sed -n \"s/^.*RESULT \$1 //p\" '$work/gimp1.log'; }; result blurb | grep -q 'label map in Cityscapes colours.*picture of the model.s size'"
check "GIMP ran the installed binary" grep -qF "\"$dir/sparse-regenerate\"" "$profile/pluginrc"
check "help domain registered with the installed help folder" \
  grep -qF "(help-def \"sparse-regenerate\" \"file://$dir/help\")" "$profile/pluginrc"
check "a run with a chosen model" eq "$(result first-name "$work/gimp1.log")" "Sparse Regenerate (church-gaugan)"
ini=$profile/sparse-regenerate.ini
check "settings file: the model, and the earlier values kept" sh -c \
  "grep -qxF 'model=$model' '$ini' && grep -qx 'threshold=0.45' '$ini' && grep -qx 'device=cpu' '$ini' && grep -qx 'budget-mib=1024' '$ini' && grep -qxF 'recent=$model;' '$ini'"
sed 's/^/# ini: /' "$ini"

# restart: with the last values the remembered model runs again, and the
# values read back are the ones written (a key the plug-in does not write
# shows that the file was rewritten from what it read)
echo 'stale=1' >> "$ini"
gimp "$work/gimp2.log" -b "(begin $prelude
  (define out (catch -1 (car (plug-in-sparse-regenerate RUN-WITH-LAST-VALS img src \"\" 0 0 -1))))
  (say \"last-name\" (if (> out 0) (car (gimp-item-get-name out)) \"none\"))
  (gimp-image-delete img))"
check "second GIMP start exits cleanly" eq "$?" 0
check "after a restart the last model is remembered" \
  eq "$(result last-name "$work/gimp2.log")" "Sparse Regenerate (church-gaugan)"
check "after a restart threshold, device, budget and recent are remembered" sh -c \
  "! grep -q '^stale=' '$ini' && grep -qxF 'model=$model' '$ini' && grep -qx 'threshold=0.45' '$ini' && grep -qx 'device=cpu' '$ini' && grep -qx 'budget-mib=1024' '$ini' && grep -qxF 'recent=$model;' '$ini'"

# a corrupt settings file: defaults, a warning naming it, and the run works
printf '\211PNG\0\0garbage[[\n' > "$ini"
gimp "$work/gimp3.log" -b "(begin $prelude
  (define out (catch -1 (car (plug-in-sparse-regenerate RUN-WITH-LAST-VALS img src \"\" 0 0 -1))))
  (say \"corrupt-name\" (if (> out 0) (car (gimp-item-get-name out)) \"none\"))
  (gimp-image-delete img))"
check "corrupt settings: GIMP exits cleanly" eq "$?" 0
check "corrupt settings: the default model runs" \
  eq "$(result corrupt-name "$work/gimp3.log")" "Sparse Regenerate (gaugan-street)"
check "corrupt settings: a warning naming the file" grep -q "$ini: unreadable settings" "$work/gimp3.log"
check "corrupt settings: rewritten with the defaults" grep -qx 'threshold=0.6' "$ini"
echo "# three GIMP starts: $(($(date +%s) - t0)) s"
tap_plan
