"""Cloud Custodian's stock GCP policies against the sandbox: firewall `modify` and `delete`, bucket
`set-uniform-access`, and a `gcp.project` IAM filter; then the sandbox's state is checked.

Usage: python stock_policies.py BASE_URL   (run with the Python that has c7n and c7n-gcp; exits non-zero on a mismatch)
"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

base = sys.argv[1].rstrip("/")
PROJECT = "custodian-project"
here = os.path.dirname(os.path.abspath(__file__))


def call(method, path, body=None):
    request = urllib.request.Request(f"{base}{path}", method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer setup"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


firewalls = f"/compute/v1/projects/{PROJECT}/global/firewalls"
call("POST", firewalls, {"name": "open-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                          "sourceRanges": ["0.0.0.0/0"]})
call("POST", firewalls, {"name": "office-ssh", "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                          "sourceRanges": ["203.0.113.0/24"]})
call("POST", firewalls, {"name": "legacy-rdp", "allowed": [{"IPProtocol": "tcp", "ports": ["3389"]}],
                          "sourceRanges": ["0.0.0.0/0"]})
call("POST", f"/storage/v1/b?project={PROJECT}", {"name": "custodian-fine-grained"})
policy = call("POST", f"/v1/projects/{PROJECT}:getIamPolicy", {})
policy["bindings"].append({"role": "roles/editor", "members": ["user:helper@gmail.com"]})
call("POST", f"/v1/projects/{PROJECT}:setIamPolicy", {"policy": policy})

policies = """
policies:
  - name: ssh-open-to-the-world
    resource: gcp.firewall
    filters:
      - type: value
        key: sourceRanges
        op: contains
        value: 0.0.0.0/0
      - type: value
        key: name
        value: open-ssh
    actions:
      - type: modify
        disabled: true
  - name: remove-legacy-rdp
    resource: gcp.firewall
    filters:
      - type: value
        key: name
        value: legacy-rdp
    actions:
      - delete
  - name: uniform-bucket-access
    resource: gcp.bucket
    filters:
      - type: value
        key: iamConfiguration.uniformBucketLevelAccess.enabled
        value: false
    actions:
      - type: set-uniform-access
        state: true
  - name: gmail-editors
    resource: gcp.project
    filters:
      - type: iam-policy
        user-role:
          user: user:helper@gmail.com
          role: roles/editor
"""
with tempfile.TemporaryDirectory() as work:
    path = os.path.join(work, "policies.yml")
    with open(path, "w") as handle:
        handle.write(policies)
    output = os.path.join(work, "output")
    run = subprocess.run([sys.executable, os.path.join(here, "custodian_sandbox.py"), base, PROJECT, "--",
                          "custodian", "run", "--cache-period", "0", "-s", output, path], capture_output=True, text=True,
                         env={**os.environ, "CLOUDSDK_CORE_PROJECT": PROJECT})
    assert run.returncode == 0, run.stdout + run.stderr
    matched = {}
    for name in ("ssh-open-to-the-world", "remove-legacy-rdp", "uniform-bucket-access", "gmail-editors"):
        with open(os.path.join(output, name, "resources.json")) as handle:
            matched[name] = [resource.get("name") or resource.get("projectId") for resource in json.load(handle)]

assert matched["ssh-open-to-the-world"] == ["open-ssh"], matched
assert matched["remove-legacy-rdp"] == ["legacy-rdp"], matched
assert matched["uniform-bucket-access"] == ["custodian-fine-grained"], matched
assert matched["gmail-editors"] == [PROJECT], matched

rules = {rule["name"]: rule for rule in call("GET", firewalls).get("items", [])}
assert rules["open-ssh"]["disabled"] is True, rules["open-ssh"]
assert rules["office-ssh"].get("disabled") is False, rules["office-ssh"]
assert "legacy-rdp" not in rules, rules.keys()
bucket = call("GET", "/storage/v1/b/custodian-fine-grained")
assert bucket["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"] is True, bucket
print("cloud custodian stock policies: ok")
