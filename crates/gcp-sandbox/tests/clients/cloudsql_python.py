"""Google's discovery-based Python client (`google-api-python-client`) for the Cloud SQL Admin API against the sandbox:
create an instance, wait for its operation, narrow its authorised networks with a patch, and see a stale
`settingsVersion` refused with 412.

Usage: python3 cloudsql_python.py BASE_URL   (exits non-zero on any mismatch)
"""
import sys
import time

import google.oauth2.credentials
from googleapiclient import discovery, errors

base = sys.argv[1].rstrip("/")
credentials = google.oauth2.credentials.Credentials(token="sql-client-token")
sql = discovery.build("sqladmin", "v1", credentials=credentials, static_discovery=True,
                      client_options={"api_endpoint": f"{base}/"})
PROJECT = "sql-project"


def wait(operation):
    for _ in range(100):
        found = sql.operations().get(project=PROJECT, operation=operation["name"]).execute()
        if found["status"] == "DONE":
            assert "error" not in found, found
            return found
        time.sleep(0.02)
    raise AssertionError(f"operation {operation['name']} never finished")


wide = {"name": "reporting", "settings": {"ipConfiguration": {"ipv4Enabled": True, "authorizedNetworks": [
    {"name": "office", "value": "203.0.113.0/24"}, {"name": "anyone", "value": "0.0.0.0/0"}]}}}
wait(sql.instances().insert(project=PROJECT, body=wide).execute())
instance = sql.instances().get(project=PROJECT, instance="reporting").execute()
networks = instance["settings"]["ipConfiguration"]["authorizedNetworks"]
assert {network["value"] for network in networks} == {"203.0.113.0/24", "0.0.0.0/0"}, networks
version = instance["settings"]["settingsVersion"]

narrowed = {"settings": {"settingsVersion": version, "ipConfiguration": {"authorizedNetworks": [
    {"name": "office", "value": "203.0.113.0/24"}]}}}
wait(sql.instances().patch(project=PROJECT, instance="reporting", body=narrowed).execute())
instance = sql.instances().get(project=PROJECT, instance="reporting").execute()
assert [network["value"] for network in instance["settings"]["ipConfiguration"]["authorizedNetworks"]] == \
    ["203.0.113.0/24"], instance
assert instance["settings"]["settingsVersion"] != version, "every patch moves settingsVersion on"

try:
    sql.instances().patch(project=PROJECT, instance="reporting", body=narrowed).execute()
    raise AssertionError("a stale settingsVersion must be refused")
except errors.HttpError as refused:
    assert refused.resp.status == 412, refused

listed = sql.instances().list(project=PROJECT).execute()
assert [item["name"] for item in listed["items"]] == ["reporting"], listed
print("python cloud sql admin client: ok")
