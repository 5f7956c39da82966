"""An organization's sweep under Google-like latency and quotas: `antibody scan --organization` over N projects in two
folders, each with 100 firewall rules (OPEN of them open, 5 by default), 10 buckets and its IAM policy, against a sandbox answering every call
after LATENCY ms and at most QUOTA requests per project per second. Prints wall time, peak RSS, the requests made,
and the floors the quota and the latency set.

Usage: python3 bench/org_sweep.py [PROJECTS...]   (env: LATENCY_MS=30, QUOTA=20, RUNS=1, FORMAT=json, OPEN=5 rules
open per project; HTTP2=1
calls the sandbox over HTTP/2 cleartext, as antibody calls Google over HTTP/2; bench/org_sweep.sh builds)
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANDBOX = os.path.join(ROOT, "target/release/gcp-sandbox")
ANTIBODY = os.path.join(ROOT, "target/release/antibody")
PORT = 18471
LATENCY_MS = int(os.environ.get("LATENCY_MS", "30"))
QUOTA = int(os.environ.get("QUOTA", "20"))
RUNS = int(os.environ.get("RUNS", "1"))
OPEN = int(os.environ.get("OPEN", "5"))


def seed(projects):
    firewalls, buckets, parents = {}, {}, {}
    for index in range(projects):
        project = f"org-project-{index:05d}"
        parents[project] = "folders/1" if index % 2 else "folders/2"
        rules = [{"name": f"rule-{n}", "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}],
                  "sourceRanges": ["10.0.0.0/8"]} for n in range(100 - OPEN)]
        rules += [{"name": f"open-{n}", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                   "sourceRanges": ["0.0.0.0/0"]} for n in range(OPEN)]
        firewalls[project] = rules
        buckets[project] = [{"name": f"{project}-b{n}"} for n in range(10)]
    return {"firewalls": firewalls, "buckets": buckets, "parents": parents,
            "folders": {"folders/1": "organizations/123456789012", "folders/2": "organizations/123456789012"}}


# Runs a command and reports its own rusage: started from this small process, the command's peak RSS is its own. A
# process forked from this script (which holds the seed and earlier reports) would report this script's resident
# memory as its peak, since Linux keeps the larger high-water mark across exec.
MEASURED = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as handle:
    json.dump({"status": status, "maxrss_kib": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}, handle)
"""


def requests_served():
    """(all Google API requests, those a per-project quota counts) the sandbox has answered."""
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/_sandbox/requests") as response:
        counts = json.loads(response.read())
    return counts["requests"], counts["project_requests"]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sweep(projects):
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "seed.json")
        with open(path, "w") as handle:
            json.dump(seed(projects), handle)
        sandbox = subprocess.Popen([SANDBOX, "--port", str(PORT), "--seed", path, "--latency-ms", str(LATENCY_MS),
                                    "--quota-per-project-per-s", str(QUOTA)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(400):
                try:
                    before = requests_served()
                    break
                except OSError:
                    time.sleep(0.05)
            sandbox_before = cpu_seconds(sandbox.pid)
            config = os.path.join(work, "antibody.toml")
            with open(config, "w") as handle:
                # The quota, as an operator who knows it configures it: antibody paces itself instead of meeting 429s.
                handle.write(f"[serve]\nmax_requests_per_second_per_project = {QUOTA}\n")
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                started = time.monotonic()
                usage_path = os.path.join(work, "usage.json")
                subprocess.run([sys.executable, "-c", MEASURED, usage_path,
                                ANTIBODY, "scan", "--organization", "123456789012", "--format", os.environ.get("FORMAT", "json"),
                                "--config", config,
                                "--google-endpoint", f"http://127.0.0.1:{PORT}", "--access-token", "b"]
                               + (["--google-http2"] if os.environ.get("HTTP2") else []),
                               stdout=out, stderr=err)
                wall = time.monotonic() - started
                with open(usage_path) as handle:
                    usage = json.load(handle)
                out.seek(0)
                report = json.loads(out.read() or b"{}")
                err.seek(0)
                if not report:
                    sys.exit(f"scan failed: {err.read().decode(errors='replace')[-2000:]}")
            after = requests_served()
            made = (after[0] - before[0], after[1] - before[1])
            sandbox_cpu = cpu_seconds(sandbox.pid) - sandbox_before
        finally:
            sandbox.kill()
            sandbox.wait()
    return wall, usage["maxrss_kib"] / 1024, made, report, usage["cpu"], sandbox_cpu


print(f"latency {LATENCY_MS} ms per call, quota {QUOTA} requests per project per second")
print("| projects | wall | quota floor | CPU floor | peak RSS | requests (per project; quota'd) | antibody CPU | sandbox CPU "
      "| violations | errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
for projects in [int(argument) for argument in sys.argv[1:]] or [100, 1000]:
    results = sorted(sweep(projects) for _ in range(RUNS))
    wall, rss, (made, quotad), report, cpu, sandbox_cpu = results[len(results) // 2]
    # Every project's quota'd calls, evenly spaced within its own quota: the sweep cannot end before one project's
    # calls do. Nor before two cores have done antibody's and the sandbox's work.
    floor = quotad / projects / QUOTA
    cpu_floor = (cpu + sandbox_cpu) / 2
    print(f"| {projects:,} | {wall:.1f} s | {floor:.1f} s | {cpu_floor:.1f} s | {rss:.0f} MiB "
          f"| {made:,} ({made / projects:.0f}; {quotad / projects:.0f}) | {cpu:.1f} s | {sandbox_cpu:.1f} s "
          f"| {len(report.get('violations', [])):,} | {len(report.get('errors', [])):,} |", flush=True)
