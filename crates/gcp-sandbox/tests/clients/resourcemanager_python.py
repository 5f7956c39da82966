"""Google's official Python Resource Manager (v3) client against the sandbox: get a project, read and write its IAM
policy with conditions at version 3, and see a stale etag refused with 409 ABORTED.

Usage: python3 resourcemanager_python.py BASE_URL   (exits non-zero on any mismatch)
"""
import sys

from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import resourcemanager_v3
from google.iam.v1 import iam_policy_pb2, options_pb2, policy_pb2
from google.type import expr_pb2

base = sys.argv[1]
client = resourcemanager_v3.ProjectsClient(
    credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=base), transport="rest")
resource = "projects/py-project"

project = client.get_project(name=resource)
assert project.project_id == "py-project", project

request = iam_policy_pb2.GetIamPolicyRequest(resource=resource, options=options_pb2.GetPolicyOptions(requested_policy_version=3))
policy = client.get_iam_policy(request=request)
assert any(binding.role == "roles/owner" for binding in policy.bindings), policy
stale_etag = policy.etag

condition = expr_pb2.Expr(title="until 2030", expression="request.time < timestamp('2030-01-01T00:00:00Z')")
policy.bindings.append(policy_pb2.Binding(role="roles/viewer", members=["user:reader@example.com"], condition=condition))
policy.version = 3
written = client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=resource, policy=policy))
assert written.etag != stale_etag, "the etag advances on every write"

again = client.get_iam_policy(request=request)
conditional = [binding for binding in again.bindings if binding.condition.title == "until 2030"]
assert len(conditional) == 1 and list(conditional[0].members) == ["user:reader@example.com"], again

policy.etag = stale_etag
try:
    client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=resource, policy=policy))
    raise AssertionError("a stale etag must be refused")
except exceptions.Conflict:  # HTTP 409; the body says ABORTED
    pass
print("python resource manager client: ok")
