#!/usr/bin/env bash
# Start-up time of the medload command, side by side in one run: medload (torch-free: every
# command but preview and sample, which it hands to medload-torch) against medload-torch, which
# links LibTorch as the single medload executable did before. Median of 15 repetitions of
# medload_bench_startup (one posix_spawn + wait per iteration), then what `medload --version` and
# `medload scan --help` load (LD_DEBUG=libs) and ldd of bin/medload.
# Usage: bench/startup/compare.sh [BUILD_DIR]   (default build)
# Target (the issue "LibTorch only in the libraries that hand out tensors"): medload --version
# and medload scan --help start in <= 100 ms and load no libtorch; exit 1 when libtorch is loaded.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
bench="$build/bench/startup/medload_bench_startup"
medload="$build/bin/medload"
for f in "$bench" "$medload" "$build/bin/medload-torch"; do
  [[ -x "$f" ]] || { echo "compare.sh: $f not found; build medload_bench_startup and medload_cli first" >&2; exit 1; }
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bench" --benchmark_repetitions=15 --benchmark_report_aggregates_only=true --benchmark_format=json \
  >"$tmp/startup.json"
/usr/bin/python3 - "$tmp/startup.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))
print(f"machine: {runs['context'].get('num_cpus')} CPUs, load avg {runs['context'].get('load_avg')}")
medians = {b["run_name"].split("/")[0]: b["real_time"] for b in runs["benchmarks"] if b.get("aggregate_name") == "median"}
torch = medians.get("BM_Startup_TorchToolVersion")
print(f"{'command':<34} {'median ms':>10} {'vs medload-torch':>17}")
names = {"BM_Startup_MedloadVersion": "medload --version", "BM_Startup_MedloadScanHelp": "medload scan --help",
         "BM_Startup_MedloadPreviewHelp": "medload preview --help", "BM_Startup_TorchToolVersion": "medload-torch --version"}
for name, ms in medians.items():
    ratio = f"{torch / ms:.1f}x faster" if torch and name != "BM_Startup_TorchToolVersion" else ""
    print(f"{names.get(name, name):<34} {ms:>10.1f} {ratio:>17}")
PY
loaded() {  # the shared objects the dynamic loader opens for "$@"
  LD_DEBUG=libs "$@" 2>&1 >/dev/null | sed -n 's/.*calling init: //p' | sort -u
}
status=0
for args in "--version" "scan --help"; do
  # shellcheck disable=SC2086
  libs=$(loaded "$medload" $args)
  torch=$(grep -E '/lib(torch|c10)[^/]*\.so' <<<"$libs" || true)
  echo "medload $args: $(wc -l <<<"$libs") shared objects initialised; libtorch/libc10 among them: ${torch:-none}"
  [[ -z "$torch" ]] || status=1
done
ldd_torch=$(ldd "$medload" | grep -E '(^|[[:space:]/])lib(torch|c10)[^/ ]*\.so' || true)
echo "ldd bin/medload: $(ldd "$medload" | wc -l) libraries; libtorch/libc10 among them: ${ldd_torch:-none}"
[[ -z "$ldd_torch" ]] || status=1
echo "ldd bin/medload-torch: $(ldd "$build/bin/medload-torch" | wc -l) libraries (LibTorch's included)"
exit $status
