#!/usr/bin/env bash
# Cost per event at a steady rate (bench/cost.py), release builds; the reference service too when ANTIBODY_BASELINE
# names its directory (Flask and gunicorn in target/baseline-venv). Needs wrk. Usage: bench/cost.sh
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
python3 bench/cost.py
