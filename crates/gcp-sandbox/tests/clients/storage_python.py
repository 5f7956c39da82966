"""Google's official Python Cloud Storage client against the sandbox: create a bucket, read and write its IAM policy
at version 3, patch it, see a stale IAM etag refused with 412, and public members refused under public access prevention.

Usage: python3 storage_python.py BASE_URL   (exits non-zero on any mismatch)
"""
import sys

from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

base = sys.argv[1]
client = storage.Client(project="py-project", credentials=AnonymousCredentials(), client_options={"api_endpoint": base})

bucket = client.create_bucket("py-bucket")
assert bucket.name == "py-bucket"
assert bucket.metageneration == 1, bucket.metageneration

policy = bucket.get_iam_policy(requested_policy_version=3)
roles = {binding["role"] for binding in policy.bindings}
assert "roles/storage.legacyBucketOwner" in roles, roles
stale = policy.etag
policy.bindings.append({"role": "roles/storage.objectViewer", "members": {"allUsers"}})
written = bucket.set_iam_policy(policy)
assert written.etag != stale
assert any("allUsers" in binding["members"] for binding in written.bindings)

policy.etag = stale
try:
    bucket.set_iam_policy(policy)
    raise AssertionError("a stale etag must be refused")
except exceptions.PreconditionFailed:
    pass

bucket.reload()
bucket.labels = {"team": "data"}
bucket.iam_configuration.public_access_prevention = "enforced"
bucket.patch()
fresh = client.get_bucket("py-bucket")
assert fresh.labels == {"team": "data"}, fresh.labels
assert fresh.iam_configuration.public_access_prevention == "enforced"
assert fresh.metageneration > 2

policy = fresh.get_iam_policy(requested_policy_version=3)
policy.bindings.append({"role": "roles/storage.objectViewer", "members": {"allAuthenticatedUsers"}})
try:
    fresh.set_iam_policy(policy)
    raise AssertionError("public members must be refused under public access prevention")
except exceptions.PreconditionFailed as error:
    assert "public access prevention" in str(error), error

names = [listed.name for listed in client.list_buckets()]
assert names == ["py-bucket"], names
print("python storage client: ok")
