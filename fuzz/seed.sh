#!/usr/bin/env bash
# Fills DIR with extra seeds for TARGET from the test fixtures and the real corpus (data/corpus,
# scripts/fetch_corpus.sh), at run time: they are not committed under fuzz/corpus. Files over
# 64 KiB are left out (libFuzzer's input length limit follows the largest seed, and a large input
# slows every execution); JPEG 2000 DICOM is left out of fuzz_decode (see fuzz_decode.cpp).
#   bash fuzz/seed.sh TARGET DIR
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/seed.sh TARGET DIR}
dir=${2:?usage: fuzz/seed.sh TARGET DIR}
rm -rf "$dir"
mkdir -p "$dir"

# Images and DICOM files of the fixtures and the corpus, at most 64 KiB.
images() {
  find tests/fixtures data/corpus -type f -size -65k \
    \( -iname '*.dcm' -o -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.tif' \
       -o -iname '*.tiff' -o -iname '*.bmp' -o -path '*/dicomdirtests/*' \) 2>/dev/null | sort
}

n=0
case "$target" in
  fuzz_sniff)
    # Only the header matters: the first KiB of each file.
    while IFS= read -r f; do head -c 1024 "$f" >"$dir/$(printf '%04d' $n)"; n=$((n + 1)); done < <(images) ;;
  fuzz_decode)
    while IFS= read -r f; do
      grep -q '1\.2\.840\.10008\.1\.2\.4\.9' "$f" && continue
      cp "$f" "$dir/$(printf '%04d' $n)"; n=$((n + 1))
    done < <(images) ;;
  fuzz_manifest)
    # The first 40 lines: a long manifest only slows every execution.
    while IFS= read -r f; do head -n 40 "$f" >"$dir/$(printf '%04d' $n)"; n=$((n + 1)); done < <(
      find tests data/corpus -type f -name '*.csv' -size -65k 2>/dev/null | sort) ;;
  fuzz_config)
    while IFS= read -r f; do cp "$f" "$dir/$(printf '%04d' $n)"; n=$((n + 1)); done < <(
      find tests docs examples -type f -name '*.json' -size -65k 2>/dev/null | sort) ;;
  fuzz_state|fuzz_applied_params) ;;  # the committed seeds serve (structured inputs)
  fuzz_cache|fuzz_split) ;;  # caches are built by the tests at run time; the committed seeds serve
  *) echo "seed.sh: unknown target '$target'" >&2; exit 2 ;;
esac
echo "seed: $target: $n extra seeds in $dir"
