"""Time to heal a burst under Google's latency: RULES rules open to SSH are created across PROJECTS projects as fast as
the sandbox takes them (every answer after LATENCY_MS, operations DONE after OPERATION_MS), each change delivered as an
Eventarc event; how long until the last is closed, each rule's time from its creation to the fix's DONE operation (the
sandbox's own audit timestamps), the healer's CPU and peak RSS. antibody (`serve`, caps off) and, when
ANTIBODY_BASELINE names its directory, the reference service (gunicorn, 2 workers × 8 threads) heal the same burst.

Usage: python3 bench/burst.py   (env: RULES=5000 PROJECTS=100 LATENCY_MS=50 OPERATION_MS=500; JOURNAL=firestore journals in
the sandbox's Firestore; HTTP2=1 adds a run
speaking HTTP/2 both ways, as the deployment does: delivery over cleartext HTTP/2 as Cloud Run does to a service deployed with
--use-http2, and antibody's calls to the sandbox over cleartext HTTP/2 (`--google-http2`) as its calls to Google's
https:// endpoints negotiate it — antibody only, gunicorn has no HTTP/2; bench/burst.sh builds)
"""
import concurrent.futures
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
RULES = int(os.environ.get("RULES", "5000"))
PROJECTS = int(os.environ.get("PROJECTS", "100"))
LATENCY_MS = int(os.environ.get("LATENCY_MS", "50"))
OPERATION_MS = int(os.environ.get("OPERATION_MS", "500"))
SANDBOX_PORT, HEALER_PORT = 18481, 18482
BASE = f"http://127.0.0.1:{SANDBOX_PORT}"


def call(method, path, body=None, token="user"):
    request = urllib.request.Request(f"{BASE}{path}", method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    # A new connection per call, thousands at once: a reset connection is tried again (a repeated insert's 409
    # means the first one landed).
    for attempt in range(5):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as refused:
            if refused.code == 409 and attempt > 0:
                return None
            raise
        except (ConnectionResetError, urllib.error.URLError):
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def wait_up(url):
    for _ in range(400):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{url} never came up")


def proc_stat(pid):
    """(CPU seconds so far, summed peak RSS in MiB) of a process and its child processes (gunicorn's workers)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(entry))
            except OSError:
                pass
    cpu = peak = 0
    for each in pids:
        with open(f"/proc/{each}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        with open(f"/proc/{each}/status") as handle:
            peak += next((int(line.split()[1]) for line in handle if line.startswith("VmHWM")), 0)
    return cpu, peak / 1024


def timestamp(text):
    """`2026-11-30T01:02:03.123456789Z` as seconds since the epoch (to a float's precision)."""
    import datetime
    date, clock = text.rstrip("Z").split("T")
    hours, minutes, seconds = clock.split(":")
    day = datetime.date.fromisoformat(date).toordinal()
    return day * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def heal_times(healer):
    """Each rule's seconds from its insertion to the DONE entry of the healer's fix."""
    entries = call("GET", "/_sandbox/audit-log")
    created, fixed, fixes = {}, {}, {}
    for entry in entries:
        payload = entry.get("protoPayload", {})
        name = payload.get("resourceName", "")
        method = payload.get("methodName", "")
        last = entry.get("operation", {}).get("last")
        if method.endswith("firewalls.insert") and entry.get("operation", {}).get("first"):
            created[name] = timestamp(entry["timestamp"])
        elif method.endswith("firewalls.patch") and last and payload.get("authenticationInfo", {}).get(
                "principalEmail") == healer:
            fixed.setdefault(name, timestamp(entry["timestamp"]))
            fixes[name] = fixes.get(name, 0) + 1
    span = (max(fixed.values()) - min(created.values())) if fixed and created else float("nan")
    twice = sum(1 for count in fixes.values() if count > 1)
    return sorted(fixed[name] - created[name] for name in fixed if name in created), span, twice


def burst(label, start_healer, healer_principal, http2=False):
    rules = [(f"burst-project-{index % PROJECTS:03d}", f"open-{index}") for index in range(RULES)]
    sandbox = subprocess.Popen([SANDBOX, "--port", str(SANDBOX_PORT), "--latency-ms", str(LATENCY_MS),
                                "--operation-delay-ms", str(OPERATION_MS), "--history", str(RULES * 8),
                                "--deliver-to", f"http://127.0.0.1:{HEALER_PORT}/",
                                "--principal", f"healer={healer_principal}"]
                               + (["--deliver-http2"] if http2 else []),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    healer = None
    try:
        wait_up(f"{BASE}/compute/v1/projects/x/global/firewalls")
        healer = start_healer()
        sandbox_cpu_before, _ = proc_stat(sandbox.pid)
        script_cpu_before = time.process_time()
        started = time.monotonic()

        def create(rule):
            project, name = rule
            call("POST", f"/compute/v1/projects/{project}/global/firewalls",
                 {"name": name, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "sourceRanges": ["0.0.0.0/0"]})

        with concurrent.futures.ThreadPoolExecutor(256) as pool:
            list(pool.map(create, rules))
        published = time.monotonic() - started
        # Until every rule is disabled: one list per project, in parallel, every 200 ms (the audit log, which gives
        # each rule's exact times, is read once at the end: serving it while the burst runs would cost the sandbox
        # more than the burst itself).
        projects = sorted({project for project, _ in rules})

        def still_open(project):
            listed = call("GET", f"/compute/v1/projects/{project}/global/firewalls?maxResults=500")
            return sum(1 for rule in listed.get("items", []) if not rule.get("disabled"))

        deadline = started + 600
        with concurrent.futures.ThreadPoolExecutor(len(projects)) as pool:
            while time.monotonic() < deadline and sum(pool.map(still_open, projects)) > 0:
                time.sleep(0.2)
        # A fix counts once its operation is DONE: the last ones end an operation's delay after the rules changed.
        times, span, twice = heal_times(healer_principal)
        for _ in range(20):
            if len(times) >= RULES:
                break
            time.sleep(OPERATION_MS / 1000 / 4)
            times, span, twice = heal_times(healer_principal)
        if healer.poll() is not None:
            sys.exit(f"the healer exited during the burst (status {healer.returncode})")
        cpu, rss = proc_stat(healer.pid)
        sandbox_cpu = proc_stat(sandbox.pid)[0] - sandbox_cpu_before
        script_cpu = time.process_time() - script_cpu_before
    finally:
        if healer:
            healer.kill()
            healer.wait()
        sandbox.kill()
        sandbox.wait()
    healed = len(times)
    p50 = times[len(times) // 2] if times else float("nan")
    p99 = times[int(len(times) * 0.99) - 1] if times else float("nan")
    last = times[-1] if times else float("nan")
    # The floor: one fix's chain of waits (read, PATCH, the operation and its poll, the verifying read) after all the
    # CPU this machine's two cores must spend on the burst (the healer's, the sandbox's and this script's).
    floor = (4 * LATENCY_MS + OPERATION_MS) / 1000 + (cpu + sandbox_cpu + script_cpu) / 2
    print(f"| {label} | {published:.2f} s | {healed:,} of {RULES:,}, {twice} twice | {span:.2f} s | {last:.2f} s | {p50 * 1000:.0f} ms "
          f"| {p99 * 1000:.0f} ms | {cpu:.2f} s | {sandbox_cpu:.2f} s | {script_cpu:.2f} s | {floor:.2f} s "
          f"| {span / floor:.2f}× | {rss:.0f} MiB |", flush=True)
    return span, cpu


def antibody(work, http2=False):
    def start():
        # JOURNAL=firestore journals in the sandbox's Firestore, as the default deployment journals in Firestore.
        state = os.path.join(work, f"journal-{time.monotonic_ns()}.sqlite")
        if os.environ.get("JOURNAL") == "firestore":
            state = f"firestore://burst-{time.monotonic_ns() % 10**9}"
        config = os.path.join(work, "antibody.toml")
        with open(config, "w") as handle:
            handle.write(os.environ.get("EXTRA_CONFIG", "").replace("\\n", "\n") + "[safety]\nflap_threshold = 0\nmax_fixes_per_project_per_hour = 0\n"
                         "max_fixes_per_instance_per_hour = 0\n")
        # HEALER_WRAP runs antibody under a profiler (e.g. "heaptrack -o /tmp/burst").
        process = subprocess.Popen(os.environ.get("HEALER_WRAP", "").split() + [ANTIBODY, "serve", "--port", str(HEALER_PORT), "--config", config,
                                    "--google-endpoint", BASE, "--state", state,
                                    "--access-token", "healer", "--identity", "antibody@bench.iam.gserviceaccount.com",
                                    "--insecure-no-auth"] + (["--google-http2"] if http2 else []),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_up(f"http://127.0.0.1:{HEALER_PORT}/healthz")
        return process
    return start


def reference(directory):
    def start():
        env = {**os.environ, "COMPUTE_API": f"{BASE}/compute/v1"}
        python = os.environ.get("BASELINE_PYTHON", "python3")
        process = subprocess.Popen([python, "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "8", "-b",
                                    f"127.0.0.1:{HEALER_PORT}", "--log-level", "warning", "app:app"],
                                   cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_up(f"http://127.0.0.1:{HEALER_PORT}/")
        return process
    return start


print(f"{RULES:,} rules open to SSH across {PROJECTS} projects; every call answered after {LATENCY_MS} ms, "
      f"operations DONE after {OPERATION_MS} ms")
print("| healer | burst published in | healed | first created → last DONE | slowest rule | p50 | p99 | healer CPU "
      "| sandbox CPU | script CPU | floor | ÷ floor | healer peak RSS |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
with tempfile.TemporaryDirectory() as work:
    ours = burst("antibody", antibody(work), "antibody@bench.iam.gserviceaccount.com")
    if os.environ.get("HTTP2"):
        burst("antibody, HTTP/2 both ways", antibody(work, http2=True), "antibody@bench.iam.gserviceaccount.com",
              http2=True)
baseline = os.environ.get("ANTIBODY_BASELINE")
if baseline:
    # The reference sends no credentials: the sandbox names an anonymous caller.
    theirs = burst("reference service", reference(baseline), "anonymous")
    if ours[0] > 0:
        print(f"| reference / antibody, first created → last DONE | | | **{theirs[0] / ours[0]:.1f}×** | | | | | | | | | |")
