#!/usr/bin/env bash
# Installs every Debian package medload needs to build, test, benchmark and fetch its real corpus.
# Idempotent: when everything is present it returns in about a second without touching apt.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates
  # clang with libFuzzer and the sanitizer runtimes, for the fuzz targets (scripts/fuzz.sh)
  clang-14 libclang-rt-14-dev
  # compiler cache (CMake uses it as the launcher when present; its cache lives outside the clone)
  ccache
  # libraries medload links
  libtorch-dev libopencv-dev libhdf5-dev libdcmtk-dev libgdcm-dev
  libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  # libjpeg-turbo and libpng directly: truncation is judged from what the decoder consumed
  libjpeg62-turbo-dev libpng-dev
  # OpenSSL's libcrypto: HMAC-SHA-256 patient-id pseudonyms and key generation (docs/privacy.md)
  libssl-dev
  # c10d ProcessGroupGloo headers for the distributed training example
  libgloo-dev
  # the real corpus (npm pack, dpkg -x) and the Python peers for side-by-side benchmarks
  nodejs npm python3 python3-numpy python3-torch python3-torchvision python3-h5py python3-opencv
  # the independent DICOM reader the pixel-comparison tests check decode_file against
  python3-pydicom python3-gdcm
  # real MR template and atlas label maps (NIfTI) for the segmentation example (train_segmenter)
  mricron-data
)

missing=()
for p in "${packages[@]}"; do
  # dpkg-query prints "install ok installed" only for a fully installed package
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    # nodejs/npm may come from elsewhere on a developer machine: accept working binaries
    case "$p" in
      nodejs) command -v node >/dev/null 2>&1 && continue ;;
      npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run as root (or install them with sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
