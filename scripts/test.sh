#!/usr/bin/env bash
# Quick-start command 2: install what is missing, build, fetch the real corpus, run every test.
#   bash scripts/test.sh               Release build in build/, the whole ctest suite
#   bash scripts/test.sh --sanitize    the same with AddressSanitizer + UBSan, in build-asan/
#   bash scripts/test.sh --sanitize --only "medload_core_tests medload_loader_ingest_tests"
#                                      only those test executables (and what they link), and not
#                                      the tests that run the medload command (it is not built)
# Extra arguments after `--` go to ctest (e.g. -- -R Sampler).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=Release)
ctest_args=()
only=""
while (($#)); do
  case "$1" in
    --sanitize) build_dir=build-asan; cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEDLOAD_SANITIZE=ON) ;;
    --only) shift; only=${1:?--only needs a list of test executables} ;;
    --) shift; ctest_args=("$@"); break ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/setup.sh
bash scripts/fetch_corpus.sh data/corpus
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" "${cmake_args[@]}"
targets=()
if [[ -n "$only" ]]; then
  read -r -a labels <<<"$only"
  targets=(--target "${labels[@]}")
  label_regex=$(IFS='|'; echo "^(${labels[*]})\$")
  ctest_args=(-L "$label_regex" -E "Command\\." "${ctest_args[@]}")
fi
cmake --build "$build_dir" -j "${MEDLOAD_JOBS:-2}" "${targets[@]}"
export MEDLOAD_REQUIRE_CORPUS=1  # real-data tests fail, not skip, when the corpus is missing
if [[ "$build_dir" == build-asan ]]; then
  # LibTorch and OpenCV are not instrumented; their one-time allocations are not our leaks.
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
fi
ctest --test-dir "$build_dir" --output-on-failure -j "${MEDLOAD_JOBS:-2}" "${ctest_args[@]}"
