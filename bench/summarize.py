"""Turns bench/load.sh's JSON lines into the BENCHMARKS.md table: medians with (min-max)."""
import json
import statistics
import sys

runs = [json.loads(line) for line in sys.stdin if line.strip()]
print("| path | events/s, median (min-max) | p50 ms | p99 ms | p99.9 ms | non-2xx | peak RSS MiB "
      "| CPU µs/event: antibody, sandbox |")
print("|---|---|---|---|---|---|---|---|")
for mode in ["ignored", "compliant", "violating"]:
    rows = [run for run in runs if run["mode"] == mode]
    if not rows:
        continue
    rps = [run["wrk"]["rps"] for run in rows]

    def median_ms(key):
        return statistics.median(run["wrk"][key] for run in rows) / 1000

    non2xx = sum(run["wrk"]["non2xx"] for run in rows)
    rss = max(run["peak_rss_kib"] for run in rows) / 1024

    def cpu_us(key):
        # CPU time over the run divided by the events it served: what one event costs each process.
        values = [run[key] * 1e6 / run["clock_ticks_per_s"] / max(run["wrk"]["requests"], 1)
                  for run in rows if key in run]
        return f"{statistics.median(values):.0f}" if values else "—"

    print(f"| {mode} | {statistics.median(rps):,.0f} ({min(rps):,.0f}-{max(rps):,.0f}) | {median_ms('p50_us'):.2f} | "
          f"{median_ms('p99_us'):.2f} | {median_ms('p999_us'):.2f} | {non2xx} | {rss:.1f} | "
          f"{cpu_us('cpu_ticks')}, {cpu_us('sandbox_cpu_ticks')} |")
