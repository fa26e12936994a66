#!/bin/sh
# Set up, build and run Sparse Regenerate on Debian 12.
#   tools/bootstrap.sh demo   install what is missing, build, render the example label map
#   tools/bootstrap.sh test   install what is missing, build, run every test (also under ASan/UBSan,
#                             and the GIMP 3 plug-in's in a Debian 13 chroot; needs root)
# The build includes the CUDA backend when nvcc and cuBLAS are found (on PATH or in
# /usr/local/cuda); its GPU test then skips on a machine without a GPU.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="gcc pkg-config meson ninja-build libglib2.0-dev libjson-glib-dev libopenblas-dev libopenblas-openmp-dev libpng-dev libzip-dev libcmocka-dev"
# the GIMP plug-in and its end-to-end tests (meson test suite 'gimp': GIMP in batch
# mode, and the undo test in the GUI GIMP on an Xvfb display, keys typed with xdotool)
GIMP_PACKAGES="gimp libgimp2.0-dev gettext xvfb xdotool"
# the tests write PyTorch checkpoints with the real torch.save (tests/scripts/);
# big (about 650 MB installed, 1.5 minutes here): only for `test`.
# debootstrap: the Debian 13 chroot the GIMP 3 tests run in (tests/gimp3/)
TEST_PACKAGES="python3-torch debootstrap"

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
    ./build/tools/sige render --model data/models/gaugan-demo.safetensors \
      --labels data/examples/street_labels.png --out street_render.png
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
    # libFuzzer on the weights readers (safetensors, unpickler, torch zip), 60 s each
    tools/fuzz.sh 60
    # the GIMP 3 plug-in end to end, built and run in a Debian 13 chroot kept in
    # /var/cache/sparse-regenerate/trixie (made on the first run, about 7 minutes)
    tests/gimp3/run-gimp3-tests.sh
    ;;
  *)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac
