#!/usr/bin/env bash
# Time to heal a burst under Google's latency (bench/burst.py), release builds. With ANTIBODY_BASELINE set to the
# reference service's directory, it heals the same burst too (Flask and gunicorn in target/baseline-venv).
# Usage: bench/burst.sh   (env: RULES, PROJECTS, LATENCY_MS, OPERATION_MS)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p antibody -p gcp-sandbox
if [ -n "${ANTIBODY_BASELINE:-}" ]; then
  if ! target/baseline-venv/bin/python -c "import flask, gunicorn, requests" >/dev/null 2>&1; then
    python3 -m venv target/baseline-venv
    target/baseline-venv/bin/pip install --quiet --disable-pip-version-check -r "$ANTIBODY_BASELINE/requirements.txt"
  fi
  export BASELINE_PYTHON="$PWD/target/baseline-venv/bin/python"
fi
python3 bench/burst.py
