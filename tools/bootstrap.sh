#!/bin/sh
# Set up, build and run Sparse Regenerate on Debian 12.
#   tools/bootstrap.sh demo   install what is missing, build, render the example label map,
#                             then regenerate its edited copy sparsely and print full vs sparse time
#   tools/bootstrap.sh test   install what is missing, build, run every test (also under ASan/UBSan,
#                             and the GIMP 3 plug-in's in a Debian 13 chroot; needs root)
#   tools/bootstrap.sh package  install what is missing, build the Debian packages into dist/
#                             (dpkg-buildpackage with debian/: the sige tool, the GIMP 2.10 plug-in,
#                             and the GIMP 3 one where libgimp-3.0 is found), and check them
#                             unpacked into a scratch root with GIMP (tests/gimp/run-package-test.sh);
#                             then:  apt-get install ./dist/*.deb
# The build includes the CUDA backend when nvcc and cuBLAS are found (on PATH or in
# /usr/local/cuda); its GPU test then skips on a machine without a GPU.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="gcc pkg-config meson ninja-build libglib2.0-dev libjson-glib-dev libopenblas-dev libopenblas-openmp-dev libpng-dev libzip-dev libcmocka-dev"
# the GIMP plug-in and its end-to-end tests (meson test suite 'gimp': GIMP in batch
# mode, and the undo test in the GUI GIMP on an Xvfb display, keys typed with xdotool)
GIMP_PACKAGES="gimp libgimp2.0-dev gettext xvfb xdotool python3-markdown"
# building the Debian packages (debian/control's Build-Depends besides the above)
PACKAGE_PACKAGES="dpkg-dev debhelper"
# the tests write PyTorch checkpoints with the real torch.save (tests/scripts/), and
# test the training tools with numpy and torch (tests/scenes, tests/train);
# big (about 650 MB installed, 1.5 minutes here): only for `test`.
# debootstrap: the Debian 13 chroot the GIMP 3 tests run in (tests/gimp3/)
# gdb: the CLI test interrupts a write at a breakpoint (tests/cli/test_cli.sh)
TEST_PACKAGES="python3-torch python3-numpy debootstrap gdb"

install_packages() {
  missing=""
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "Installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  else
    echo "Missing Debian packages:$missing"
    echo "Install them with:"
    echo "  sudo apt-get install -y$missing"
    exit 1
  fi
}

build() { # build dir, extra meson options...
  dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@"
  fi
  ninja -C "$dir"
}

case "${1:-}" in
  demo)
    install_packages
    build build
    # the trained street model where it ships, else the random-weight demo model
    model=data/models/gaugan-street.safetensors
    [ -f "$model" ] || model=data/models/gaugan-demo.safetensors
    ./build/tools/sige render --model "$model" \
      --labels data/examples/street_labels.png --out street_render.png
    # the edited copy adds a car: the snapshot runs the full model once, the edit only
    # the blocks it reaches (the tool prints both times and MACs)
    ./build/tools/sige edit --model "spade:$model" \
      --original data/examples/street_labels.png --edited data/examples/street_labels_edit.png \
      --out street_edit.png
    ;;
  test)
    # clang, libFuzzer and clang's OpenMP runtime: the fuzz step below
    PACKAGES="$PACKAGES $GIMP_PACKAGES $TEST_PACKAGES clang libclang-rt-14-dev libomp-dev"
    install_packages
    # a build folder set up before GIMP was installed has the plug-in off
    [ -f build/build.ninja ] && meson configure build -Dgimp=enabled
    build build -Dgimp=enabled
    meson test -C build --print-errorlogs
    # the unit and reference tests again under AddressSanitizer + UndefinedBehaviorSanitizer
    # (without the GIMP plug-in: its process lives inside GIMP, not under the sanitizers;
    # without the CUDA executor: the CUDA runtime is not built for ASan, and its test can
    # only skip on a machine without a GPU; the device backend's own code runs under the
    # sanitizers on the simulated device, suite 'device')
    [ -f build-sanitize/build.ninja ] && meson configure build-sanitize -Dgimp=disabled -Dcuda=disabled
    build build-sanitize -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false -Dgimp=disabled -Dcuda=disabled
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
      meson test -C build-sanitize --print-errorlogs --timeout-multiplier 4
    # libFuzzer on the readers (weights, images, case.json), model building and
    # the session API: each target for its seconds in tools/fuzz.sh, two at a time,
    # about 20 minutes in all
    tools/fuzz.sh
    # the GIMP 3 plug-in end to end, built and run in a Debian 13 chroot kept in
    # /var/cache/sparse-regenerate/trixie (made on the first run, about 7 minutes);
    # then in GIMP 3's GUI on an Xvfb display of the host (about 2.5 minutes),
    # and live mode in it (about 2 minutes)
    tests/gimp3/run-gimp3-tests.sh
    tests/gimp3/run-gimp3-gui-test.sh
    tests/gimp3/run-gimp3-live-test.sh
    ;;
  package)
    PACKAGES="$PACKAGES $PACKAGE_PACKAGES gettext python3-markdown"
    # the GIMP 3 plug-in where libgimp-3.0 is installed (Debian 13), the
    # GIMP 2.10 one where libgimp 2.0 can be (Debian 12)
    profiles=""
    if pkg-config --exists gimp-3.0; then
      profiles="pkg.sparse-regenerate.gimp3"
      PACKAGES="$PACKAGES libgimp-3.0-dev"
    fi
    if apt-cache show libgimp2.0-dev > /dev/null 2>&1 || pkg-config --exists gimp-2.0; then
      PACKAGES="$PACKAGES gimp libgimp2.0-dev"
    else
      profiles="${profiles:+$profiles,}pkg.sparse-regenerate.nogimp2"
    fi
    install_packages
    # noautodbgsym: dist/ holds what a user installs, apt-get install ./dist/*.deb
    DEB_BUILD_OPTIONS="parallel=$(nproc) noautodbgsym ${DEB_BUILD_OPTIONS:-}" \
      dpkg-buildpackage -b -us -uc ${profiles:+-P$profiles}
    # dpkg-buildpackage writes next to the source tree: keep them in dist/
    version=$(dpkg-parsechangelog -S Version)
    mkdir -p dist
    for f in ../sparse-regenerate_"$version"_*.buildinfo ../sparse-regenerate_"$version"_*.changes \
             ../*sparse-regenerate*_"$version"_*.deb; do
      [ -f "$f" ] && mv "$f" dist/
    done
    ls -l dist/
    debian/rules clean > /dev/null # the tree as it was (obj-*/, debian/<package>/)
    # the packages' files where GIMP looks: unpacked into a scratch root,
    # which GIMP is told of (tests/gimp/run-package-test.sh)
    # (GIMP 2.10 only: the GIMP 3 package's files are those meson install
    # puts in the GIMP 3 chroot, tests/gimp3/)
    if ls dist/gimp-plugin-sparse-regenerate_"$version"_*.deb > /dev/null 2>&1; then
      root=$(mktemp -d)
      for deb in dist/*_"$version"_*.deb; do dpkg -x "$deb" "$root"; done
      status=0
      tests/gimp/run-package-test.sh "$PWD" "" "$root" || status=$?
      rm -rf "$root"
      exit $status
    fi
    ;;
  *)
    echo "usage: $0 demo|test|package" >&2
    exit 2
    ;;
esac
