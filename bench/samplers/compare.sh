#!/usr/bin/env bash
# Side by side in one run: medload's WeightedRandomSampler (BM_Sampler_Weighted) against
# torch.utils.data.WeightedRandomSampler (peer_weighted.py), ns per index and the ratio.
# Usage: bench/samplers/compare.sh [BUILD_DIR] [SIZES]   (default build, 1e5,1e6,1e7)
# Target R6 of DESIGN.md: >= 20x, and correct at N = 2^24 + 1 where the peer fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
sizes="${2:-100000,1000000,10000000}"
bench="$build/bench/samplers/medload_bench_samplers"
[[ -x "$bench" ]] || { echo "compare.sh: $bench not found; build medload_bench_samplers first" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
filter="BM_Sampler_Weighted/(${sizes//,/|})\$"
"$bench" --benchmark_filter="$filter" --benchmark_min_time=0.5 --benchmark_format=json >"$tmp/medload.json"
/usr/bin/python3 "$here/peer_weighted.py" --sizes "$sizes" >"$tmp/peer.json"
/usr/bin/python3 - "$tmp/medload.json" "$tmp/peer.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
peer = json.load(open(sys.argv[2]))
print(f"machine: {ours['context'].get('num_cpus')} CPUs, load avg {ours['context'].get('load_avg')}; peer torch {peer['torch']}, 1 thread")
print(f"{'N':>11} {'medload ns/idx':>15} {'peer sampler':>13} {'ratio':>7} {'peer multinomial':>17} {'ratio':>7}")
for b in ours["benchmarks"]:
    n = b["name"].split("/")[1]
    mine = 1e9 / b["items_per_second"]
    p = peer["sizes"].get(n, {})
    if "error" in p or not p:
        print(f"{n:>11} {mine:>15.2f} {'fails':>13}")
        continue
    s, m = p["sampler_ns_per_index"], p["multinomial_ns_per_index"]
    print(f"{n:>11} {mine:>15.2f} {s:>13.1f} {s / mine:>6.1f}x {m:>17.1f} {m / mine:>6.1f}x")
print(f"peer at N = 2^24 + 1: {peer['at_2^24+1']}; medload: correct (WeightedRandomSampler.CorrectBeyondTwoToThe24Categories)")
PY
