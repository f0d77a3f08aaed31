#!/usr/bin/env bash
# Side by side in one run: medload's plain serving (BM_Serve_Plain, BM_Serve_FirstBatch) against
# torch.utils.data.DataLoader over h5py (best of 0/1/2 workers) and a numpy memmap (peer_serve.py),
# on the same cache files, as ratios. Targets R4 (>= 2x h5py, >= 1x memmap), R5 (1 -> 2 threads
# >= 1.8x) and R7 (first batch <= 0.2 s; peak memory while serving <= 0.5x the peer's) of
# DESIGN.md. Peak memory: peak_memory.py's sum of Pss over the process tree (a DataLoader's
# workers included) of medload serving with 2 threads and of the peer with 0, 1 and 2 workers.
# Usage: bench/loader/serve/compare.sh [BUILD_DIR]     (caches in $MEDLOAD_BENCH_DIR, default /tmp)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../../build}"
bench="$build/bench/loader/serve/medload_bench_serve"
[[ -x "$bench" ]] || { echo "compare.sh: $bench not found; build medload_bench_serve first" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bench" --benchmark_filter='BM_Serve_(Plain/.*verify:1|FirstBatch)' --benchmark_min_time=1 \
  --benchmark_format=json >"$tmp/medload.json"
/usr/bin/python3 "$here/peer_serve.py" >"$tmp/peer.json"
for size in 224 512; do
  /usr/bin/python3 "$here/peak_memory.py" -- "$bench" \
    --benchmark_filter="BM_Serve_Plain/size:$size/threads:2/verify:1/" --benchmark_min_time=1 \
    >"$tmp/mem-medload-$size.out" 2>"$tmp/mem-medload-$size.log"
  # A filter that matches nothing would measure an idle process: make sure it served.
  grep -q "BM_Serve_Plain/size:$size/threads:2" "$tmp/mem-medload-$size.out" ||
    { echo "compare.sh: the peak memory run served nothing (benchmark filter)" >&2; exit 1; }
  for workers in 0 1 2; do
    /usr/bin/python3 "$here/peak_memory.py" -- /usr/bin/python3 "$here/peer_serve.py" --sizes "$size" \
      --workers "$workers" --no-memmap --epochs 2 >/dev/null 2>"$tmp/mem-peer-$size-$workers.log"
  done
done
/usr/bin/python3 - "$tmp/medload.json" "$tmp/peer.json" "$tmp" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
peer = json.load(open(sys.argv[2]))
def peak(name):
    with open(f"{sys.argv[3]}/{name}.log") as f:
        return json.loads(f.read().strip().splitlines()[-1])["peak_pss_mb"]
ctx = ours["context"]
print(f"machine: {ctx.get('num_cpus')} CPUs, load avg {ctx.get('load_avg')}; peer torch {peer['torch']}, h5py {peer['h5py']}")
plain, first = {}, {}
for b in ours["benchmarks"]:
    parts = dict(p.split(":") for p in b["name"].split("/")[1:] if ":" in p)
    if b["name"].startswith("BM_Serve_Plain"):
        plain[(parts["size"], parts["threads"])] = b["items_per_second"]
    else:
        first[parts["size"]] = b["real_time"] / 1e3  # ms -> s
print(f"{'size':>5} {'medload 1 thr':>14} {'2 thr':>9} {'R5 2/1':>7} {'DataLoader+h5py':>16} {'R4':>6} {'memmap':>8} {'R4m':>6}"
      f" {'1st batch':>10} {'peer 1st':>9}")
for size in sorted({k[0] for k in plain}, key=int):
    one, two = plain[(size, "1")], plain[(size, "2")]
    best = max(one, two)
    p = peer["sizes"][size]
    dl, mm = p["dataloader_best"], p["memmap"]["samples_per_second"]
    print(f"{size:>5} {one:>14.0f} {two:>9.0f} {two / one:>6.2f}x {dl:>16.0f} {best / dl:>5.1f}x {mm:>8.0f} {best / mm:>5.1f}x"
          f" {first[size]:>9.3f}s {p['dataloader_first_batch_s']:>8.3f}s")
print("samples/s, batch 32, float32 [32,1,S,S] normalized, random order; medload verifies every checksum")
print()
print(f"{'size':>5} {'medload 2 thr':>14} {'peer 0 wkr':>11} {'1 wkr':>7} {'2 wkr':>7} {'peer fastest':>13} {'ratio':>6} {'ratio to smallest':>18}")
for size in sorted({k[0] for k in plain}, key=int):
    ours_mb = peak(f"mem-medload-{size}")
    peers = {w: peak(f"mem-peer-{size}-{w}") for w in ("0", "1", "2")}
    runs = peer["sizes"][size]["dataloader_h5py"]
    fastest = max(runs, key=lambda w: runs[w]["samples_per_second"])
    print(f"{size:>5} {ours_mb:>14.0f} {peers['0']:>11.0f} {peers['1']:>7.0f} {peers['2']:>7.0f} {fastest + ' workers':>13}"
          f" {ours_mb / peers[fastest]:>5.2f}x {ours_mb / min(peers.values()):>17.2f}x")
print("peak memory, MB: Pss summed over the process tree (workers included), sampled every 10 ms")
PY
