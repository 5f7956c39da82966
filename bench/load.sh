#!/usr/bin/env bash
# Load benchmark on loopback: the sandbox and `antibody serve` (release builds), driven by wrk with 2 threads and
# 16 connections, 3 runs per path; prints medians. Needs wrk (apt-get install wrk). Usage: bench/load.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
RUNS=${RUNS:-3}
RULES=${RULES:-200000}
cargo build --release --quiet -p antibody -p gcp-sandbox
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 - "$RULES" > "$WORK/seed.json" <<'PY'
import json, sys
rules = int(sys.argv[1])
firewalls = [{"name": f"open-{i}", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]} for i in range(rules)]
firewalls += [{"name": f"closed-{i}", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["10.0.0.0/8"]} for i in range(100)]
print(json.dumps({"firewalls": {"bench-project": firewalls}, "principals": {"engine": "antibody@bench.iam.gserviceaccount.com"}}))
PY
cat > "$WORK/antibody.toml" <<'TOML'
[safety]
flap_threshold = 0
max_fixes_per_project_per_hour = 0
max_fixes_per_instance_per_hour = 0
TOML

target/release/gcp-sandbox --port 18301 --seed "$WORK/seed.json" >/dev/null 2>&1 &
SANDBOX=$!
for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:18301/compute/v1/projects/x/global/firewalls && break; sleep 0.2; done

# CPU time (user + system, in clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_path() {
  local mode=$1 offset=$2 connections=${3:-16}
  rm -f "$WORK"/journal.sqlite*
  target/release/antibody serve --port 18302 --config "$WORK/antibody.toml" --google-endpoint http://127.0.0.1:18301 \
    --state "$WORK/journal.sqlite" --access-token engine --identity antibody@bench.iam.gserviceaccount.com \
    --insecure-no-auth >/dev/null 2>&1 &
  local engine=$!
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:18302/healthz && break; sleep 0.05; done
  local line engine_before sandbox_before
  engine_before=$(ticks "$engine"); sandbox_before=$(ticks "$SANDBOX")
  line=$(MODE=$mode OFFSET=$offset THREADS=2 wrk -t2 -c"$connections" -d"${SECONDS_PER_RUN}s" -s bench/post.lua http://127.0.0.1:18302/ | grep '^JSON ' | cut -c6-)
  local rss engine_ticks sandbox_ticks
  engine_ticks=$(($(ticks "$engine") - engine_before)); sandbox_ticks=$(($(ticks "$SANDBOX") - sandbox_before))
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$engine/status")
  kill "$engine"; wait "$engine" 2>/dev/null || true
  echo "{\"mode\":\"$mode\",\"connections\":$connections,\"peak_rss_kib\":$rss,\"cpu_ticks\":$engine_ticks,\"sandbox_cpu_ticks\":$sandbox_ticks,\"clock_ticks_per_s\":$(getconf CLK_TCK),\"wrk\":$line}"
}

for mode in ignored compliant violating; do
  # Each run fixes rules of its own: a violating event must meet an open rule.
  for run in $(seq "$RUNS"); do run_path "$mode" $(((run - 1) * RULES / (2 * RUNS))); done
done | tee target/bench-runs.jsonl | python3 bench/summarize.py
# Group commit shares one fsync among the requests in flight: with more concurrent deliveries (Cloud Run's default
# concurrency is 80), batches grow.
for run in $(seq "$RUNS"); do run_path ignored 0 64; done | tee -a target/bench-runs.jsonl | python3 bench/summarize.py | tail -n +3 | sed 's/^| ignored /| ignored, 64 connections /'

# The reference service, when its directory is given: the same wrk script against gunicorn, reading the same sandbox,
# on rules antibody never touched.
if [ -n "${ANTIBODY_BASELINE:-}" ]; then
  for mode in ignored violating; do
    for run in $(seq "$RUNS"); do
      (cd "$ANTIBODY_BASELINE" && COMPUTE_API=http://127.0.0.1:18301/compute/v1 python3 -m gunicorn -w 2 -k gthread --threads 8 \
        -b 127.0.0.1:18304 --log-level warning app:app >/dev/null 2>&1) &
      for _ in $(seq 100); do curl -s -o /dev/null -X POST http://127.0.0.1:18304/ -d '{}' && break; sleep 0.1; done
      line=$(MODE=$mode OFFSET=$((RULES / 2 + (run - 1) * RULES / (2 * RUNS))) THREADS=2 wrk -t2 -c16 -d"${SECONDS_PER_RUN}s" -s bench/post.lua http://127.0.0.1:18304/ | grep '^JSON ' | cut -c6-)
      pkill -f "gunicorn.*18304" || true
      sleep 0.5
      echo "{\"mode\":\"$mode\",\"peak_rss_kib\":0,\"wrk\":$line}"
    done
  done | tee target/bench-baseline-runs.jsonl | python3 bench/summarize.py | sed 's/^| /| reference /'
fi

echo
echo "the sandbox alone: reads of one firewall rule, as fast as it answers them (wrk -t2 -c16, ${SECONDS_PER_RUN} s):"
wrk -t2 -c16 -d"${SECONDS_PER_RUN}s" -H "Authorization: Bearer engine" \
  http://127.0.0.1:18301/compute/v1/projects/bench-project/global/firewalls/closed-1 | grep -E "Requests/sec|Latency"

echo
echo "antibody's own processing at a paced 1,000 events/s (journal duration minus time waiting on the sandbox):"
for mode in ignored violating; do
  rm -f "$WORK"/journal.sqlite*
  target/release/antibody serve --port 18302 --config "$WORK/antibody.toml" --google-endpoint http://127.0.0.1:18301 \
    --state "$WORK/journal.sqlite" --access-token engine --identity antibody@bench.iam.gserviceaccount.com \
    --insecure-no-auth >/dev/null 2>&1 &
  engine=$!
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:18302/healthz && break; sleep 0.05; done
  # wrk paces itself (post.lua's RATE): 8 connections, each request sent at its slot of a fixed schedule.
  RATE=1000 MODE=$mode OFFSET=$((RULES - 20000)) THREADS=2 wrk -t2 -c8 -d10s -s bench/post.lua http://127.0.0.1:18302/ \
    | grep '^JSON ' | cut -c6- | sed 's/^/client: /'
  kill "$engine"; wait "$engine" 2>/dev/null || true
  python3 bench/own_time.py "$WORK/journal.sqlite" "$mode" | tee -a target/bench-paced.jsonl
done

echo
echo "cold start, exec -> first 200 on /healthz (20 runs):"
rm -f "$WORK"/cold.sqlite*
hyperfine --runs 20 --warmup 2 --style basic \
  "bash -c 'target/release/antibody serve --port 18303 --state $WORK/cold.sqlite --google-endpoint http://127.0.0.1:18301 --insecure-no-auth >/dev/null 2>&1 & pid=\$!; until curl -sf -o /dev/null http://127.0.0.1:18303/healthz; do :; done; kill \$pid; wait \$pid 2>/dev/null || true'" 2>&1 | grep -E "Time|Range"
kill $SANDBOX
