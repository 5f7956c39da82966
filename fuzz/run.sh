#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 10) with cargo-fuzz (libFuzzer), seeded from the captured Google
# payloads in crates/antibody/tests/fixtures and the example config. cargo-fuzz needs nightly features; on stable
# RUSTC_BOOTSTRAP=1 provides them. Findings land in fuzz/artifacts/TARGET/ and fail the run.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-10}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(receive log_entry resources config log_filter)
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet

# Seeds: the fixtures as bodies of each push shape (the first byte picks the headers), as log entries and as
# resources (the first byte picks the kind), and the example config.
mkdir -p corpus/receive corpus/log_entry corpus/resources corpus/config corpus/log_filter
for fixture in ../crates/antibody/tests/fixtures/*.json; do
  name=$(basename "$fixture" .json)
  cp "$fixture" "corpus/log_entry/$name"
  for selector in 0 1 2 3 4; do
    { printf "\\x0$selector"; cat "$fixture"; } > "corpus/receive/$selector-$name"
    { printf "\\x0$selector"; cat "$fixture"; } > "corpus/resources/$selector-$name"
  done
done
cp ../antibody.example.toml corpus/config/example.toml
# Filters as users write them: Google's own _Default and _Required filters, and exclusions.
printf '%s' 'NOT LOG_ID("cloudaudit.googleapis.com/activity") AND NOT LOG_ID("cloudaudit.googleapis.com/system_event")' \
  > corpus/log_filter/default
printf '%s' 'resource.type="k8s_container" AND severity<WARNING AND sample(insertId, 0.9)' > corpus/log_filter/sampled
printf '%s' 'logName=~"audit" OR (protoPayload.serviceName:"storage" -labels."k8s-pod/app"="x")' > corpus/log_filter/mixed

# Instrumented for coverage, without a sanitizer: the code under test is safe Rust, and this halves build and run time.
cargo fuzz build --sanitizer none
for target in "${TARGETS[@]}"; do
  echo "== $target (${SECONDS_EACH}s)"
  cargo fuzz run --sanitizer none "$target" "corpus/$target" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 \
    -print_final_stats=1 2>&1 | grep -E 'stat::number_of_executed_units|stat::new_units_added|Done|ERROR|panicked' || true
  if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
    echo "fuzz target $target found a crash: fuzz/artifacts/$target" >&2
    exit 1
  fi
done
