#!/usr/bin/env bash
# The main job, with no arguments: install what is missing, build, fetch the real corpus, then
#   scan -> build the cache -> patient-level split -> leakage audit -> train 2 epochs on the CPU
#   (modality classification XA / CT / MR, real imbalanced labels, patient ids from the DICOM
#   headers) -> print the metrics -> write an augmentation preview PNG.
# Everything it writes goes under out/. A few minutes on 2 cores; every long step shows progress.
# Environment: MEDLOAD_JOBS (build parallelism, default 2), MEDLOAD_DEMO_SIZE (cache image side,
# default 64), MEDLOAD_DEMO_EPOCHS (default 2), BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."

size=${MEDLOAD_DEMO_SIZE:-64}
epochs=${MEDLOAD_DEMO_EPOCHS:-2}
build=${BUILD_DIR:-build}
out=out
step() { printf '\n== %s\n' "$*"; }
t0=$SECONDS

step "setup: Debian packages"
bash scripts/setup.sh

step "build: the medload command and the training examples (-j ${MEDLOAD_JOBS:-2})"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=(medload_cli)
# The examples are targets only when their dependencies were found at configure time.
for t in train_classifier ddp_train; do
  if cmake --build "$build" --target help 2>/dev/null | grep -q "^$t:"; then targets+=("$t"); fi
done
cmake --build "$build" -j "${MEDLOAD_JOBS:-2}" --target "${targets[@]}"
medload=$build/bin/medload
train=$build/bin/train_classifier

step "fetch: the real corpus (DICOM CT, MR and XA; labelled by modality)"
bash scripts/fetch_corpus.sh data/corpus

mkdir -p "$out"
step "scan: decode and validate every file -> $out/scan.json"
"$medload" scan data/corpus --manifest data/corpus/manifest.csv --report "$out/scan.json"

# A subcommand is available when the command knows it (the CLI lists it in --help).
have() { "$medload" "$1" --help >/dev/null 2>&1; }

if have build; then
  step "build: preprocess into the HDF5 cache $out/cache.h5 (${size} px)"
  rm -f "$out/cache.h5"
  "$medload" build data/corpus --manifest data/corpus/manifest.csv -o "$out/cache.h5" --size "$size"
else
  echo "medload build is not available in this checkout: skipped (and every step after it)"
  exit 0
fi

if have split; then
  step "split: patients to train/val/test 0.7/0.15/0.15 (stratified by modality)"
  "$medload" split "$out/cache.h5" --ratios 0.7,0.15,0.15 --seed 0
else
  echo "medload split is not available in this checkout: skipped"
fi

if have audit; then
  step "audit: patients, identical pixels and near-duplicates across the splits"
  set +e
  "$medload" audit "$out/cache.h5"
  rc=$?
  set -e
  case $rc in
    0) echo "audit: no leakage" ;;
    3) echo "audit: LEAKAGE FOUND between splits (see above); the metrics below would be optimistic" ;;
    *) echo "audit failed with exit code $rc" >&2; exit "$rc" ;;
  esac
else
  echo "medload audit is not available in this checkout: skipped"
fi

if [[ -x "$train" ]]; then
  step "train: ${epochs} epochs on the CPU, balanced sampler, augmentation -> $out/metrics.json"
  rm -rf "$out/checkpoint"
  "$train" --cache "$out/cache.h5" --epochs "$epochs" --batch 32 --sampler balanced --threads 2 \
    --checkpoint "$out/checkpoint" --metrics-out "$out/metrics.json"
  step "metrics (validation split, by patient)"
  /usr/bin/python3 - "$out/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for e in m["epochs"]:
    v = e["val"]
    rec = "  ".join(f"{k} {x:.3f}" if x is not None else f"{k} n/a" for k, x in v["recall"].items())
    auc = v["roc_auc"]
    print(f"epoch {e['epoch']}: train loss {e['train_loss']:.4f}  val accuracy {v['accuracy']:.3f}  "
          f"balanced accuracy {v['balanced_accuracy']:.3f}  ROC AUC {auc if auc is None else round(auc, 3)}  recall {rec}")
print("confusion (rows: true " + ", ".join(m["classes"]) + "):", m["epochs"][-1]["val"]["confusion"])
absent = [k for k, n in m["epochs"][-1]["val"]["support"].items() if n == 0]
if absent:
    print("classes absent from the validation split (all their patients are in other parts):", ", ".join(absent))
print("parameter checksum", m["param_checksum"])
PY
else
  echo "train_classifier was not built (its dependencies are missing): skipped"
fi

if have preview; then
  step "preview: samples x augmentations -> $out/preview.png"
  "$medload" preview "$out/cache.h5" -o "$out/preview.png" --n 8
else
  echo "medload preview is not available in this checkout: skipped"
fi

step "done in $((SECONDS - t0)) s; outputs in $out/"
ls -l "$out"
