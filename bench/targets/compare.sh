#!/usr/bin/env bash
# Side by side in one run: medload serving a cache with label masks, images and masks augmented
# together (BM_Targets_Serve: CacheDataset + Loader + make_target_hook, full chain + flips) against
# torch.utils.data.DataLoader over h5py with cv2 warping image (linear) and mask (nearest) and the
# augment peer's intensity chain (peer_targets.py, best of 0/1/2 workers), on the same caches,
# samples/s and ratios, batch 32, float32 [32,1,S,S] images and int64 [32,1,S,S] masks.
# Target R9 of DESIGN.md: >= 3x the peer at 224 px. Then where the time goes, us per sample on one
# thread: medload's read (images; masks), image augmentation and mask warp (BM_Targets_Read,
# _AugmentImages, _WarpMasks), and the peer's steps of __getitem__ and its collation.
# Usage: bench/targets/compare.sh [BUILD_DIR] [SIZES]   (default build, 224,512; caches in
#   $MEDLOAD_BENCH_DIR, default /tmp, built by the first run)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
sizes="${2:-224,512}"
bench="$build/bench/targets/medload_bench_targets"
[[ -x "$bench" ]] || { echo "compare.sh: $bench not found; build medload_bench_targets first" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bench" --benchmark_filter="BM_Targets_[A-Za-z]+/size:(${sizes//,/|})(/|$)" --benchmark_format=json >"$tmp/medload.json"
/usr/bin/python3 "$here/peer_targets.py" --sizes "$sizes" --profile >"$tmp/peer.json"
/usr/bin/python3 - "$tmp/medload.json" "$tmp/peer.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
peer = json.load(open(sys.argv[2]))
ctx = ours["context"]
print(f"machine: {ctx.get('num_cpus')} CPUs, load avg {ctx.get('load_avg')}; peer torch {peer['torch']}, "
      f"cv2 {peer['cv2']}, h5py {peer['h5py']}, numpy {peer['numpy']}")
rate = {}
for b in ours["benchmarks"]:
    name, *args = b["name"].split("/")
    parts = dict(a.split(":") for a in args if ":" in a and not a.startswith(("iterations", "real_time")))
    rate[(name, parts.get("size"), parts.get("threads", parts.get("masks")))] = b["items_per_second"]
sizes = sorted(peer["sizes"], key=int)
print(f"{'size':>5} {'medload 1 thr':>14} {'2 thr':>7} {'2/1':>6} {'peer 0 wkr':>11} {'1 wkr':>7} {'2 wkr':>7}"
      f" {'peer best':>10} {'ratio':>6}")
for size in sizes:
    one, two = rate[("BM_Targets_Serve", size, "1")], rate[("BM_Targets_Serve", size, "2")]
    p = peer["sizes"][size]
    w = {k: v["samples_per_second"] for k, v in p["workers"].items()}
    print(f"{size:>5} {one:>14.0f} {two:>7.0f} {two / one:>5.2f}x {w.get('0', 0):>11.0f} {w.get('1', 0):>7.0f}"
          f" {w.get('2', 0):>7.0f} {p['best']:>10.0f} {max(one, two) / p['best']:>5.1f}x")
print(f"samples/s, batch 32, random order, {peer['epochs']} timed epochs after a warm-up one on both sides; "
      "ratio = medload's best / the peer's best (R9: >= 3x at 224)")
print()
print("where the time goes, us per sample, one thread")
print(f"{'size':>5} {'medload: read img':>18} {'+ masks':>8} {'augment img':>12} {'warp masks':>11} {'sum':>6}"
      f" {'served 1 thr':>13}")
for size in sizes:
    us = lambda name, arg=None: 1e6 / rate[(name, size, arg)]
    read, masks = us("BM_Targets_Read", "0"), us("BM_Targets_Read", "1") - us("BM_Targets_Read", "0")
    aug, warp = us("BM_Targets_AugmentImages"), us("BM_Targets_WarpMasks")
    print(f"{size:>5} {read:>18.0f} {masks:>8.0f} {aug:>12.0f} {warp:>11.0f} {read + masks + aug + warp:>6.0f}"
          f" {us('BM_Targets_Serve', '1'):>13.0f}")
steps = list(next(iter(peer["sizes"].values()))["profile_us"])
short = ["read img+mask", "warp img", "warp mask", "intensity", "to tensors", "collate"]
print(f"{'size':>5} {'peer: ' + short[0]:>18} " + " ".join(f"{s:>10}" for s in short[1:]) + f" {'sum':>6} {'served 0 wkr':>13}")
for size in sizes:
    prof = peer["sizes"][size]["profile_us"]
    print(f"{size:>5} {prof[steps[0]]:>18.0f} " + " ".join(f"{prof[s]:>10.0f}" for s in steps[1:])
          + f" {sum(prof.values()):>6.0f} {1e6 / peer['sizes'][size]['workers']['0']['samples_per_second']:>13.0f}")
print("medload: read = BM_Targets_Read (1 thread, checksums verified, float32 normalized), + masks = the"
      " same with int64 masks, less it; augment img = BM_Targets_AugmentImages; warp masks = BM_Targets_WarpMasks")
PY
