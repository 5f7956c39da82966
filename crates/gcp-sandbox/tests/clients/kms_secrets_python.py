"""Google's official Python Cloud KMS and Secret Manager clients, over their REST transport, against the sandbox:
set_iam_policy with a public member, get_iam_policy at version 3, a stale etag refused.

Usage: python3 kms_secrets_python.py BASE_URL   (exits non-zero on any mismatch)
"""
import sys

from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import kms_v1, secretmanager_v1
from google.iam.v1 import iam_policy_pb2, options_pb2, policy_pb2

base = sys.argv[1]
options = ClientOptions(api_endpoint=base)
kms = kms_v1.KeyManagementServiceClient(credentials=AnonymousCredentials(), client_options=options, transport="rest")
secrets = secretmanager_v1.SecretManagerServiceClient(credentials=AnonymousCredentials(), client_options=options,
                                                      transport="rest")

for client, resource in [
    (kms, "projects/python-kms/locations/global/keyRings/ring/cryptoKeys/key"),
    (secrets, "projects/python-kms/secrets/token"),
]:
    public = policy_pb2.Policy(bindings=[policy_pb2.Binding(role="roles/viewer", members=["allUsers"])])
    written = client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=resource, policy=public))
    assert written.etag, "an etag"
    read = client.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(
        resource=resource, options=options_pb2.GetPolicyOptions(requested_policy_version=3)))
    assert [list(binding.members) for binding in read.bindings] == [["allUsers"]], read
    stale = policy_pb2.Policy(etag=b"stale-etag", bindings=[])
    try:
        client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=resource, policy=stale))
        raise AssertionError("a stale etag must be refused")
    except exceptions.Conflict:  # 409 ABORTED, as Google answers a lost race
        pass
print("ok")
