#!/usr/bin/env bash
# R1 side by side: `medload build` vs the Python peer (peer_build.py: the same OpenCV operations in
# a 2-process pool, h5py writer) on the same inputs, in one run, as a ratio of images/s.
#   bench/loader/cache/compare_build.sh [BUILD_DIR] [REPEATS]
# Inputs: the real corpus's raster images (data/corpus/images, from scripts/fetch_corpus.sh) and
# generated 2048 x 2048 16-bit PNG and 8-bit JPEG radiograph-like images (24 each, made once in
# $TMPDIR by peer_build.py generate). Both sides: 256 px output, default chain, 2 workers; each
# side's own timer (file listing to closed HDF5 file), best of REPEATS runs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
build="${1:-$repo/build}"
repeats="${2:-3}"
medload="$build/bin/medload"
python=/usr/bin/python3
work="${TMPDIR:-/tmp}/medload-compare-build"
mkdir -p "$work"
[ -x "$medload" ] || { echo "build medload first: $medload is missing" >&2; exit 1; }
for kind in png16 jpeg8; do
  if [ ! -f "$work/$kind/.complete" ]; then
    rm -rf "$work/$kind"
    "$python" "$here/peer_build.py" generate "$work/$kind" --kind "$kind" --count 24
    touch "$work/$kind/.complete"
  fi
done
inputs=("$work/png16" "$work/jpeg8")
names=("png16_2048" "jpeg8_2048")
if [ -d "$repo/data/corpus/images" ]; then
  inputs=("$repo/data/corpus/images" "${inputs[@]}")
  names=("corpus_raster" "${names[@]}")
fi
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
printf '%-14s %8s %12s %12s %7s\n' input images medload/s python/s ratio
for i in "${!inputs[@]}"; do
  best_m=0; best_p=0; images=0
  for ((r = 0; r < repeats; r++)); do
    rm -rf "$work/m.h5" "$work/m.h5.partial" "$work/m.report.json" "$work/p.h5"
    m=$("$medload" build "${inputs[$i]}" -o "$work/m.h5" --threads 2 --json -q 2>/dev/null |
        "$python" -c 'import json,sys; j=json.load(sys.stdin); print(j["build"]["images"], j["timings"]["images_per_second"])')
    p=$("$python" "$here/peer_build.py" build "${inputs[$i]}" "$work/p.h5" --processes 2 2>/dev/null |
        "$python" -c 'import json,sys; j=json.load(sys.stdin); print(j["images_per_second"])')
    images=${m%% *}
    best_m=$("$python" -c "print(max($best_m, ${m##* }))")
    best_p=$("$python" -c "print(max($best_p, $p))")
  done
  printf '%-14s %8s %12.1f %12.1f %6.2fx\n' "${names[$i]}" "$images" "$best_m" "$best_p" \
    "$("$python" -c "print($best_m / $best_p)")"
done
