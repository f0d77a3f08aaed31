#!/usr/bin/env bash
# Side by side in one run: medload's augmentation (BM_Augment_<Op>/<size>/<threads>) against
# torch.utils.data.DataLoader applying the same operations with cv2/numpy/torchvision
# (peer_augment.py, best of 0/1/2 workers), samples/s and ratios, batch 32, uint8 1 x S x S.
# Usage: bench/augment/compare.sh [BUILD_DIR] [SIZES] [OPS]
#   (default build, 224,512, every operation and FullChain)
# Targets R2/R3 of DESIGN.md: FullChain >= 3x the peer at 224 px and >= 2x at 512 px.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
sizes="${2:-224,512}"
ops="${3:-Affine,Gamma,BrightnessContrast,GaussianNoise,PoissonNoise,Blur,Downsample,FullChain}"
bench="$build/bench/augment/medload_bench_augment"
[[ -x "$bench" ]] || { echo "compare.sh: $bench not found; build medload_bench_augment first" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
filter="BM_Augment_(${ops//,/|})/(${sizes//,/|})/"
"$bench" --benchmark_filter="$filter" --benchmark_min_time=0.5 --benchmark_format=json >"$tmp/medload.json"
/usr/bin/python3 "$here/peer_augment.py" --sizes "$sizes" --ops "$ops" >"$tmp/peer.json"
/usr/bin/python3 - "$tmp/medload.json" "$tmp/peer.json" <<'PY'
import json, re, sys
ours = json.load(open(sys.argv[1]))
peer = json.load(open(sys.argv[2]))
ctx = ours["context"]
print(f"machine: {ctx.get('num_cpus')} CPUs, load avg {ctx.get('load_avg')}; peer torch {peer['torch']}, "
      f"cv2 {peer['cv2']}, numpy {peer['numpy']}; batch {peer['batch']}, uint8 1xSxS")
rates = {}
for b in ours["benchmarks"]:
    m = re.match(r"BM_Augment_(\w+)/(\d+)/(\d+)", b["name"])
    rates[(m.group(1), m.group(2), m.group(3))] = b["items_per_second"]
print(f"{'operation':20} {'size':>4} {'medload 1T':>11} {'medload 2T':>11} {'peer w=0':>9} {'peer w=1':>9} "
      f"{'peer w=2':>9} {'peer best':>9} {'1T/best':>8} {'2T/best':>8}")
for key, row in peer["results"].items():
    op, size = key.split("/")
    one, two = rates.get((op, size, "1")), rates.get((op, size, "2"))
    best = row["best"]
    print(f"{op:20} {size:>4} {one:11.0f} {two:11.0f} {row.get('0', 0):9.0f} {row.get('1', 0):9.0f} "
          f"{row.get('2', 0):9.0f} {best:9.0f} {one / best:7.1f}x {two / best:7.1f}x")
PY
