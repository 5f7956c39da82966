#!/usr/bin/env bash
# antibody and Cloud Custodian side by side (bench/peer.py): release builds, Custodian pinned in its own virtualenv
# (as .ci/run makes it). Usage: bench/peer.sh [RULES...]   (default: 1000 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p antibody -p gcp-sandbox
if ! target/custodian-venv/bin/python -c "import c7n_gcp" >/dev/null 2>&1; then
  python3 -m venv target/custodian-venv
  target/custodian-venv/bin/pip install --quiet --disable-pip-version-check -r crates/gcp-sandbox/tests/custodian/requirements.txt
fi
if [ $# -eq 0 ]; then set -- 1000 10000; fi
python3 bench/peer.py "$@"
