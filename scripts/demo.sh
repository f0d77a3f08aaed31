#!/usr/bin/env bash
# Quick-start command 1: install what is missing, build, and run the main job on real images.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "${MEDLOAD_JOBS:-2}"
bash scripts/fetch_corpus.sh data/corpus
./build/bin/medload scan data/corpus --report out/scan.json
