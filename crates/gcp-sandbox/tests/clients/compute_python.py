"""Google's official Python Compute client against the sandbox: get/list (filters, ordering, paging)/insert/patch/delete
and operation polling.

Usage: python3 compute_python.py BASE_URL   (exits non-zero on any mismatch)
"""
import sys

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

base = sys.argv[1]
options = ClientOptions(api_endpoint=base)
client = compute_v1.FirewallsClient(credentials=AnonymousCredentials(), client_options=options, transport="rest")
operations = compute_v1.GlobalOperationsClient(credentials=AnonymousCredentials(), client_options=options, transport="rest")
project = "python-client"
# The client builds its own operations client for `.result()` without passing the endpoint on (transports/base.py,
# `_global_operations_client`), so it would poll compute.googleapis.com; hand it the sandbox-pointed one instead.
client._transport._extended_operations_services["global_operations"] = operations

rule = compute_v1.Firewall(
    name="py-ssh",
    allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=["22", "8000-8080"])],
    source_ranges=["0.0.0.0/0"],
    target_tags=["web"],
)
operation = client.insert(project=project, firewall_resource=rule)
operation.result(timeout=30)
assert operation.done(), "insert operation completes"

got = client.get(project=project, firewall="py-ssh")
assert got.name == "py-ssh"
assert got.priority == 1000, got.priority
assert got.direction == "INGRESS", got.direction
assert list(got.source_ranges) == ["0.0.0.0/0"]
assert list(got.allowed[0].ports) == ["22", "8000-8080"]
assert got.self_link.endswith("/projects/python-client/global/firewalls/py-ssh"), got.self_link
assert got.id > 0

for index in range(3):
    client.insert(project=project, firewall_resource=compute_v1.Firewall(
        name=f"py-extra-{index}", allowed=[compute_v1.Allowed(I_p_protocol="icmp")])).result(timeout=30)
names = [item.name for item in client.list(request=compute_v1.ListFirewallsRequest(project=project, max_results=2))]
assert names == ["py-extra-0", "py-extra-1", "py-extra-2", "py-ssh"], names
# Compute's list filters and ordering, as the client sends them.
filtered = [item.name for item in client.list(request=compute_v1.ListFirewallsRequest(
    project=project, filter='name eq "py-extra-.*"', max_results=2))]
assert filtered == ["py-extra-0", "py-extra-1", "py-extra-2"], filtered
exact = [item.name for item in client.list(request=compute_v1.ListFirewallsRequest(
    project=project, filter='(name != "py-ssh") (name != "py-extra-1")'))]
assert exact == ["py-extra-0", "py-extra-2"], exact
newest = [item.name for item in client.list(request=compute_v1.ListFirewallsRequest(
    project=project, order_by="creationTimestamp desc"))]
assert newest == ["py-extra-2", "py-extra-1", "py-extra-0", "py-ssh"], newest
try:
    list(client.list(request=compute_v1.ListFirewallsRequest(project=project, filter="name ~ nonsense")))
    raise AssertionError("a bad filter must be refused")
except Exception as error:  # google.api_core.exceptions.BadRequest
    assert type(error).__name__ == "BadRequest", repr(error)

patch = client.patch(project=project, firewall="py-ssh", firewall_resource=compute_v1.Firewall(disabled=True))
patch.result(timeout=30)
assert client.get(project=project, firewall="py-ssh").disabled is True

polled = operations.get(project=project, operation=patch.name)
assert polled.status == compute_v1.Operation.Status.DONE, polled.status
waited = operations.wait(project=project, operation=patch.name)
assert waited.status == compute_v1.Operation.Status.DONE

client.delete(project=project, firewall="py-ssh").result(timeout=30)
try:
    client.get(project=project, firewall="py-ssh")
    raise AssertionError("a deleted rule must be gone")
except Exception as error:  # google.api_core.exceptions.NotFound
    assert type(error).__name__ == "NotFound", repr(error)
print("python compute client: ok")
