"""antibody and Cloud Custodian side by side on one estate: a project of firewall rules, 30% open to the world in ten
shapes and 70% compliant in seven, each tool run against a fresh sandbox seeded with it. Prints a Markdown table:
wall time, rules fixed, missed, compliant rules changed ("wrong"), and the tool's peak RSS.

Usage: python3 bench/peer.py RULES [RULES...]   (bench/peer.sh builds the binaries and the Custodian virtualenv)
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
CUSTODIAN_PYTHON = os.environ.get("ANTIBODY_CUSTODIAN_PYTHON", os.path.join(ROOT, "target/custodian-venv/bin/python"))
WRAPPER = os.path.join(ROOT, "crates/gcp-sandbox/tests/custodian/custodian_sandbox.py")
PROJECT = "peer-project"
PORT = 18461

WORLD = ["0.0.0.0/0"]
OPEN = [
    ("ssh", [{"IPProtocol": "tcp", "ports": ["22"]}], WORLD),
    ("range-20-30", [{"IPProtocol": "tcp", "ports": ["20-30"]}], WORLD),
    ("rdp", [{"IPProtocol": "tcp", "ports": ["3389"]}], WORLD),
    ("range-3000-4000", [{"IPProtocol": "tcp", "ports": ["3000-4000"]}], WORLD),
    ("all", [{"IPProtocol": "all"}], WORLD),
    ("ipv6-ssh", [{"IPProtocol": "tcp", "ports": ["22"]}], ["::/0"]),
    ("halves", [{"IPProtocol": "tcp", "ports": ["22"]}], ["0.0.0.0/1", "128.0.0.0/1"]),
    ("tcp-any-port", [{"IPProtocol": "tcp"}], WORLD),
    ("mixed", [{"IPProtocol": "tcp", "ports": ["443", "22"]}, {"IPProtocol": "udp", "ports": ["53"]}], WORLD),
    ("every-port", [{"IPProtocol": "tcp", "ports": ["0-65535"]}], WORLD),
]
COMPLIANT = [
    ("office-ssh", [{"IPProtocol": "tcp", "ports": ["22"]}], ["10.0.0.0/8"], {}),
    ("https", [{"IPProtocol": "tcp", "ports": ["443"]}], WORLD, {}),
    ("http", [{"IPProtocol": "tcp", "ports": ["80"]}], WORLD, {}),
    ("disabled-ssh", [{"IPProtocol": "tcp", "ports": ["22"]}], WORLD, {"disabled": True}),
    ("egress-ssh", [{"IPProtocol": "tcp", "ports": ["22"]}], None, {"direction": "EGRESS", "destinationRanges": WORLD}),
    ("iap-ssh", [{"IPProtocol": "tcp", "ports": ["22"]}], ["35.235.240.0/20"], {}),
    ("ping", [{"IPProtocol": "icmp"}], WORLD, {}),
]


def estate(rules):
    """The seed: 30% open, 70% compliant, each shape in turn; and the names of the open ones."""
    firewalls, open_names = [], set()
    for index in range(rules * 3 // 10):
        shape, allowed, sources = OPEN[index % len(OPEN)]
        name = f"open-{shape}-{index}"
        firewalls.append({"name": name, "allowed": allowed, "sourceRanges": sources})
        open_names.add(name)
    for index in range(rules - len(open_names)):
        shape, allowed, sources, extra = COMPLIANT[index % len(COMPLIANT)]
        rule = {"name": f"ok-{shape}-{index}", "allowed": allowed, **extra}
        if sources:
            rule["sourceRanges"] = sources
        firewalls.append(rule)
    return firewalls, open_names


DOCS_FILTER = """
      - type: value
        key: sourceRanges
        op: contains
        value: 0.0.0.0/0
      - type: value
        key: allowed[].ports[]
        op: contains
        value: "22"
"""

# Written knowing the estate: a world-wide source in any spelling, enabled, ingress, and one of the risky shapes
# (every protocol, TCP without ports, or a port entry the estate uses for risky services).
BEST_FILTER = """
      - type: value
        key: sourceRanges
        op: intersect
        value: ["0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1"]
      - type: value
        key: disabled
        value: false
      - type: value
        key: direction
        value: INGRESS
      - or:
          - type: value
            key: allowed[].IPProtocol
            op: contains
            value: all
          - type: value
            key: "length(allowed[?IPProtocol=='tcp' && ports==null])"
            op: gt
            value: 0
          - type: value
            key: allowed[].ports[]
            op: intersect
            value: ["22", "20-30", "3389", "3000-4000", "0-65535"]
"""


def call(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}") as response:
        return json.loads(response.read())


def rules_now():
    found, token = {}, ""
    while True:
        page = call(f"/compute/v1/projects/{PROJECT}/global/firewalls?maxResults=500&pageToken={token}")
        for rule in page.get("items", []):
            found[rule["name"]] = rule
        token = page.get("nextPageToken", "")
        if not token:
            return found


def judge(seeded, open_names, after):
    """(fixed, missed, wrong): an open rule is fixed when it is gone, disabled or no longer world-wide; a compliant
    rule is wrongly changed when it is gone or its sources, ports or state changed."""
    fixed = missed = wrong = 0
    for rule in seeded:
        now = after.get(rule["name"])
        if rule["name"] in open_names:
            closed = now is None or now.get("disabled") or now.get("sourceRanges") != rule["sourceRanges"]
            fixed, missed = (fixed + 1, missed) if closed else (fixed, missed + 1)
        else:
            unchanged = now is not None and bool(now.get("disabled", False)) == bool(rule.get("disabled", False)) \
                and now.get("sourceRanges") == rule.get("sourceRanges") and now.get("allowed") == rule["allowed"]
            wrong += 0 if unchanged else 1
    return fixed, missed, wrong


def measured(command, env=None):
    """Runs `command`; its wall time in seconds and peak RSS in MiB (from wait4)."""
    # Standard error goes to a file: a tool that writes much of it (antibody's decision lines) must never block on a
    # full pipe while being timed.
    with tempfile.TemporaryFile() as log:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        log.seek(0)
        stderr = log.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"{command[0]} failed: {stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024


RUNS = int(os.environ.get("RUNS", "3"))


def run(label, rules, tool):
    """`RUNS` runs on fresh sandboxes: the median wall time, the largest peak RSS, the last run's counts."""
    walls, peaks = [], []
    for _ in range(RUNS):
        wall, rss, counts = once(rules, tool)
        walls.append(wall)
        peaks.append(rss)
    walls.sort()
    wall = walls[len(walls) // 2]
    fixed, missed, wrong = counts
    spread = f" ({walls[0]:.2f}–{walls[-1]:.2f})" if RUNS > 1 else ""
    print(f"| {label} | {rules:,} | {wall:.2f} s{spread} | {fixed:,} | {missed:,} | {wrong:,} | {max(peaks):.0f} MiB |",
          flush=True)
    return wall


def once(rules, tool):
    seeded, open_names = estate(rules)
    with tempfile.TemporaryDirectory() as work:
        seed = os.path.join(work, "seed.json")
        with open(seed, "w") as handle:
            json.dump({"firewalls": {PROJECT: seeded}}, handle)
        sandbox = subprocess.Popen([SANDBOX, "--port", str(PORT), "--seed", seed], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    call(f"/compute/v1/projects/{PROJECT}/global/firewalls?maxResults=1")
                    break
                except OSError:
                    time.sleep(0.05)
            wall, rss = tool(work)
            counts = judge(seeded, open_names, rules_now())
        finally:
            sandbox.kill()
            sandbox.wait()
    return wall, rss, counts


def antibody(caps):
    def tool(work):
        config = os.path.join(work, "antibody.toml")
        with open(config, "w") as handle:
            if not caps:
                handle.write("[safety]\nflap_threshold = 0\nmax_fixes_per_project_per_hour = 0\n"
                             "max_fixes_per_instance_per_hour = 0\n")
        return measured([ANTIBODY, "scan", "--project", PROJECT, "--fix", "--config", config, "--format", "json",
                         "--state", os.path.join(work, "journal.sqlite"), "--google-endpoint",
                         f"http://127.0.0.1:{PORT}", "--access-token", "bench"])
    return tool


def custodian(filters, action):
    def tool(work):
        policy = os.path.join(work, "policy.yml")
        with open(policy, "w") as handle:
            handle.write(f"policies:\n  - name: open-firewalls\n    resource: gcp.firewall\n    filters:{filters}"
                         f"    actions:\n{action}")
        env = {**os.environ, "CLOUDSDK_CORE_PROJECT": PROJECT}
        return measured([CUSTODIAN_PYTHON, WRAPPER, f"http://127.0.0.1:{PORT}", PROJECT, "--", "custodian", "run",
                         "--cache-period", "0", "-s", os.path.join(work, "output"), policy], env)
    return tool


MODIFY = "      - type: modify\n        disabled: true\n"
DELETE = "      - delete\n"

print(f"| tool | rules | wall (median of {RUNS}) | fixed | missed | wrong changes | peak RSS |")
print("|---|---|---|---|---|---|---|")
for rules in [int(argument) for argument in sys.argv[1:]] or [1000]:
    ours = run("`antibody scan --fix`, caps off", rules, antibody(caps=False))
    if rules <= 1000:
        run("`antibody scan --fix`, default config", rules, antibody(caps=True))
        run("Custodian, filter as its docs write it, `modify`", rules, custodian(DOCS_FILTER, MODIFY))
        run("Custodian, docs-style filter, `delete`", rules, custodian(DOCS_FILTER, DELETE))
    theirs = run("Custodian, best stock filter knowing the estate, `modify`", rules, custodian(BEST_FILTER, MODIFY))
    print(f"| ratio at {rules:,} rules | | Custodian's / antibody's median: **{theirs / ours:.1f}×** | | | | |",
          flush=True)
