#!/usr/bin/env bash
# libFuzzer campaigns over medload's parsers (docs/fuzzing.md). Builds build-fuzz/ with clang-14
# and -fsanitize=fuzzer,address,undefined when needed.
#   bash scripts/fuzz.sh TARGET SECONDS [-- LIBFUZZER_ARGS]
#                            one campaign: the committed seeds (fuzz/corpus/TARGET), the test
#                            fixtures and the real corpus (fuzz/seed.sh); new inputs are kept in
#                            build-fuzz/corpus/TARGET, crashes go to fuzz/crashes/
#   bash scripts/fuzz.sh --replay        every target over its committed seeds and regression
#                                        inputs (fuzz/regressions/TARGET) once: a regression check
#   bash scripts/fuzz.sh --brief SECONDS every target fuzzed for SECONDS from its committed seeds
#   bash scripts/fuzz.sh --build         only build the targets
# MEDLOAD_FUZZ_TARGETS="fuzz_sniff fuzz_decode" limits --replay, --brief and --build to those.
# Targets: fuzz_sniff fuzz_manifest fuzz_decode fuzz_config fuzz_cache fuzz_split fuzz_state
# fuzz_applied_params.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(fuzz_sniff fuzz_manifest fuzz_decode fuzz_config fuzz_cache fuzz_split fuzz_state
             fuzz_applied_params)
build_dir=build-fuzz
read -r -a targets <<<"${MEDLOAD_FUZZ_TARGETS:-${all_targets[*]}}"

usage() { sed -n '2,13p' "$0"; }

build() {
  if ! command -v clang++-14 >/dev/null; then
    echo "fuzz.sh: clang++-14 is missing: run scripts/setup.sh (clang-14, libclang-rt-14-dev)" >&2
    exit 1
  fi
  if [[ ! -f "$build_dir/build.ninja" && ! -f "$build_dir/Makefile" ]]; then
    local generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    CC=clang-14 CXX=clang++-14 cmake -S . -B "$build_dir" "${generator[@]}" -DMEDLOAD_FUZZ=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_SHARED_LIBS=OFF -DMEDLOAD_BUILD_TESTS=OFF \
      -DMEDLOAD_BUILD_BENCHMARKS=OFF -DMEDLOAD_BUILD_EXAMPLES=OFF -DMEDLOAD_BUILD_TOOLS=OFF
  fi
  cmake --build "$build_dir" -j "${MEDLOAD_JOBS:-2}" --target "$@"
}

# ASan and UBSan stop at the first error and print the stack; the leak check stays on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
common=(-timeout=25 -rss_limit_mb=4096 -print_final_stats=1)

# Per-target libFuzzer arguments. libhdf5 leaks a few hundred bytes inside H5Dopen/H5Lexists when
# it fails on a damaged object header (nothing is handed back for medload to close), and in fork
# mode every child reports one-time allocations at exit, so the leak check would stop every
# fuzz_cache and fuzz_split run on HDF5's leaks rather than on a bug of ours: off, both per input
# (-detect_leaks=0) and at exit (ASAN_OPTIONS, see run_target).
target_args() {
  case "$1" in
    fuzz_cache|fuzz_split) echo "-detect_leaks=0" ;;
  esac
}

# run_target TARGET ARGS...: the target's binary with its ASan options.
run_target() {
  local t=$1
  shift
  local asan=$ASAN_OPTIONS
  case "$t" in
    fuzz_cache|fuzz_split) asan="$asan:detect_leaks=0" ;;
  esac
  ASAN_OPTIONS=$asan "$build_dir/fuzz/$t" "$@"
}

# The last status line and the final statistics of a libFuzzer log, on one line.
summary() {
  local log=$1 target=$2
  local last execs eps
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  echo "fuzz: $target: execs ${execs:-?}, exec/s ${eps:-?}, $(sed -E 's/^#[0-9]+[[:space:]]+[A-Z]+[[:space:]]+//' <<<"$last")"
}

check_target() {
  local t
  for t in "${all_targets[@]}"; do [[ "$1" == "$t" ]] && return 0; done
  echo "fuzz.sh: unknown target '$1' (one of: ${all_targets[*]})" >&2
  exit 2
}

mkdir -p fuzz/crashes "$build_dir/logs"
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
  --build) for t in "${targets[@]}"; do check_target "$t"; done; build "${targets[@]}" ;;
  --replay)
    for t in "${targets[@]}"; do check_target "$t"; done
    build "${targets[@]}"
    for t in "${targets[@]}"; do
      dirs=(fuzz/corpus/"$t")
      [[ -d fuzz/regressions/$t ]] && dirs+=(fuzz/regressions/"$t")
      log="$build_dir/logs/$t.replay.log"
      # shellcheck disable=SC2046
      if ! run_target "$t" "${common[@]}" $(target_args "$t") -runs=0 "${dirs[@]}" >"$log" 2>&1; then
        tail -60 "$log" >&2
        echo "fuzz: $t: replay FAILED (log: $log)" >&2
        exit 1
      fi
      summary "$log" "$t"
    done ;;
  --brief)
    seconds=${2:?--brief needs SECONDS}
    for t in "${targets[@]}"; do check_target "$t"; done
    build "${targets[@]}"
    for t in "${targets[@]}"; do
      work=$(mktemp -d)
      log="$build_dir/logs/$t.brief.log"
      # A fixed seed: a brief run in CI takes the same path every time (long campaigns do not).
      # shellcheck disable=SC2046
      if ! run_target "$t" "${common[@]}" $(target_args "$t") -seed=1 -max_total_time="$seconds" \
           -artifact_prefix="fuzz/crashes/$t-" "$work" fuzz/corpus/"$t" >"$log" 2>&1; then
        rm -rf "$work"
        tail -60 "$log" >&2
        echo "fuzz: $t: FAILED; the input is in fuzz/crashes/ (log: $log)" >&2
        exit 1
      fi
      rm -rf "$work"
      summary "$log" "$t"
    done ;;
  -*) echo "fuzz.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  *)
    target=$1
    seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
    shift 2
    [[ "${1:-}" == "--" ]] && shift
    check_target "$target"
    build "$target"
    work="$build_dir/corpus/$target"
    seeds="$build_dir/seeds/$target"
    mkdir -p "$work"
    bash fuzz/seed.sh "$target" "$seeds"
    log="$build_dir/logs/$target.$(date -u +%Y%m%dT%H%M%SZ).log"
    echo "fuzz: $target for ${seconds}s; corpus $work; log $log"
    set +e
    # shellcheck disable=SC2046
    run_target "$target" "${common[@]}" $(target_args "$target") -max_total_time="$seconds" \
      -artifact_prefix="fuzz/crashes/$target-" "$@" "$work" fuzz/corpus/"$target" "$seeds" >"$log" 2>&1
    rc=$?
    set -e
    grep -E '^#[0-9]+.*(INITED|pulse|DONE)|ERROR|SUMMARY|Test unit written' "$log" | tail -25 || true
    summary "$log" "$target"
    echo "fuzz: $target: corpus now $(find "$work" -type f | wc -l) inputs in $work"
    exit "$rc" ;;
esac
