"""Google's official Python BigQuery client against the sandbox: create a dataset, read it, change its access entries
through update_dataset (which sends the etag as If-Match), a stale etag refused, list datasets.

Usage: python3 bigquery_python.py BASE_URL   (exits non-zero on any mismatch)
"""
import sys

from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

base = sys.argv[1]
client = bigquery.Client(project="python-bq", credentials=AnonymousCredentials(),
                         client_options=ClientOptions(api_endpoint=base))

created = client.create_dataset(bigquery.Dataset("python-bq.sales"))
assert created.dataset_id == "sales", created.dataset_id
dataset = client.get_dataset("python-bq.sales")
assert dataset.etag, "an etag"
roles = sorted(entry.role for entry in dataset.access_entries)
assert roles == ["OWNER", "READER", "WRITER"], roles

entries = list(dataset.access_entries)
entries.append(bigquery.AccessEntry(role="READER", entity_type="iamMember", entity_id="allUsers"))
dataset.access_entries = entries
updated = client.update_dataset(dataset, ["access_entries"])
assert any(entry.entity_id == "allUsers" for entry in updated.access_entries), updated.access_entries
assert updated.etag != dataset.etag, "the etag moves with every change"

try:
    dataset.description = "stale"
    client.update_dataset(dataset, ["description"])
    raise AssertionError("a stale etag must be refused")
except exceptions.PreconditionFailed:
    pass

names = [item.dataset_id for item in client.list_datasets()]
assert names == ["sales"], names
print("ok")
