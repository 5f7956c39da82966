"""Cost per event: the CPU a healer spends per ignored, compliant and violating event at a steady rate (Cloud Run
bills CPU time), for antibody (`serve`) and, when ANTIBODY_BASELINE names its directory, the reference service
(gunicorn, workers included). wrk paces the events (bench/post.lua's RATE) against a sandbox seeded with the rules
they name; the healer's CPU is read from /proc before and after.

antibody journals in a SQLite file, and again (a second row) in Firestore — the sandbox's, what `antibody plan`
deploys — unless JOURNALS says otherwise (`JOURNALS=sqlite`).

Usage: python3 bench/cost.py   (env: RATE=200 SECONDS=10 RUNS=3 JOURNALS=sqlite,firestore
MODES=ignored,compliant,violating; HTTP2=1 calls
the sandbox over HTTP/2 cleartext, as antibody calls Google over HTTP/2; bench/cost.sh builds)
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANDBOX = os.path.join(ROOT, "target/release/gcp-sandbox")
ANTIBODY = os.path.join(ROOT, "target/release/antibody")
RATE = int(os.environ.get("RATE", "200"))
SECONDS = int(os.environ.get("SECONDS", "10"))
RUNS = int(os.environ.get("RUNS", "3"))
MODES = os.environ.get("MODES", "ignored,compliant,violating").split(",")
SANDBOX_PORT, HEALER_PORT = 18491, 18492
EVENTS = RATE * SECONDS


def wait_up(url, method="GET"):
    for _ in range(400):
        try:
            urllib.request.urlopen(urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None),
                                   timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{url} never came up")


def cpu_of(pid):
    """CPU seconds of a process and its child processes."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(entry))
            except OSError:
                pass
    total = 0.0
    for each in pids:
        try:
            with open(f"/proc/{each}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def start_antibody(work, journal="sqlite"):
    config = os.path.join(work, "antibody.toml")
    with open(config, "w") as handle:
        handle.write("[safety]\nflap_threshold = 0\nmax_fixes_per_project_per_hour = 0\n"
                     "max_fixes_per_instance_per_hour = 0\n")
    state = os.path.join(work, f"journal-{time.monotonic_ns()}.sqlite")
    if journal == "firestore":
        state = f"firestore://cost-bench-{time.monotonic_ns() % 10**9}"
    process = subprocess.Popen([ANTIBODY, "serve", "--port", str(HEALER_PORT), "--config", config, "--google-endpoint",
                                f"http://127.0.0.1:{SANDBOX_PORT}", "--state", state, "--access-token", "engine",
                                "--identity", "antibody@bench.iam.gserviceaccount.com", "--insecure-no-auth"]
                               + (["--google-http2"] if os.environ.get("HTTP2") else []),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{HEALER_PORT}/healthz")
    return process


def start_reference(directory):
    def start(_work):
        env = {**os.environ, "COMPUTE_API": f"http://127.0.0.1:{SANDBOX_PORT}/compute/v1"}
        python = os.environ.get("BASELINE_PYTHON", "python3")
        process = subprocess.Popen([python, "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "8", "-b",
                                    f"127.0.0.1:{HEALER_PORT}", "--log-level", "warning", "app:app"],
                                   cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_up(f"http://127.0.0.1:{HEALER_PORT}/", "POST")
        return process
    return start


def one(start, mode, offset, work):
    healer = start(work)
    try:
        time.sleep(0.3)
        before = cpu_of(healer.pid)
        env = {**os.environ, "RATE": str(RATE), "MODE": mode, "OFFSET": str(offset), "THREADS": "2"}
        wrk = subprocess.run(["wrk", "-t2", "-c8", f"-d{SECONDS}s", "-s", os.path.join(ROOT, "bench/post.lua"),
                              f"http://127.0.0.1:{HEALER_PORT}/"], env=env, capture_output=True, text=True)
        time.sleep(0.5)  # the last events' handling ends
        spent = cpu_of(healer.pid) - before
        line = next((line[5:] for line in wrk.stdout.splitlines() if line.startswith("JSON ")), "{}")
        sent = json.loads(line).get("requests", EVENTS)
    finally:
        healer.kill()
        healer.wait()
    return spent * 1e6 / max(sent, 1)


def main():
    with tempfile.TemporaryDirectory() as work:
        journals = os.environ.get("JOURNALS", "sqlite,firestore").split(",")
        # Each healer's violating runs fix rules of their own.
        open_rules = EVENTS * RUNS * (len(journals) + 1)
        firewalls = [{"name": f"open-{n}", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                      "sourceRanges": ["0.0.0.0/0"]} for n in range(open_rules)]
        firewalls += [{"name": f"closed-{n}", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                       "sourceRanges": ["10.0.0.0/8"]} for n in range(100)]
        seed = os.path.join(work, "seed.json")
        with open(seed, "w") as handle:
            json.dump({"firewalls": {"bench-project": firewalls},
                       "principals": {"engine": "antibody@bench.iam.gserviceaccount.com"}}, handle)
        sandbox = subprocess.Popen([SANDBOX, "--port", str(SANDBOX_PORT), "--seed", seed],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_up(f"http://127.0.0.1:{SANDBOX_PORT}/compute/v1/projects/x/global/firewalls")
            healers = [(f"antibody, {journal} journal", lambda work, journal=journal: start_antibody(work, journal),
                        index * EVENTS * RUNS) for index, journal in enumerate(journals)]
            if os.environ.get("ANTIBODY_BASELINE"):
                healers.append(("reference service", start_reference(os.environ["ANTIBODY_BASELINE"]),
                                len(journals) * EVENTS * RUNS))
            print(f"CPU per event at a steady {RATE} events/s ({SECONDS} s per run, median of {RUNS})")
            print("| healer | " + " | ".join(MODES) + " |")
            print("|---" * (len(MODES) + 1) + "|")
            for label, start, base in healers:
                cells = []
                for mode in MODES:
                    # Each violating run fixes rules of its own.
                    costs = [one(start, mode, base + run * EVENTS, work) for run in range(RUNS)]
                    cells.append(f"{statistics.median(costs):.0f} µs ({min(costs):.0f}–{max(costs):.0f})")
                print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
        finally:
            sandbox.kill()
            sandbox.wait()


main()
