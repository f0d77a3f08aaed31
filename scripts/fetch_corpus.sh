#!/usr/bin/env bash
# Placeholder: the real-corpus fetcher lands with the ingest component.
set -euo pipefail
mkdir -p "${1:-data/corpus}"
