#!/usr/bin/env bash
# An organization's sweep under Google-like latency and per-project quotas (bench/org_sweep.py), release builds.
# Usage: bench/org_sweep.sh [PROJECTS...]   (default: 100 1000; env LATENCY_MS, QUOTA, RUNS)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p antibody -p gcp-sandbox
python3 bench/org_sweep.py "$@"
