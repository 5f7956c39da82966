"""Google's official Python InstancesClient and ProjectsClient against the sandbox: insert and wait on a zonal
operation, get, set_metadata with a fresh and a stale fingerprint, set_service_account on a running instance, stop,
the project's common instance metadata, aggregated_list.

Usage: python3 instances_python.py BASE_URL   (exits non-zero on any mismatch)
"""
import sys

from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

base = sys.argv[1]
options = ClientOptions(api_endpoint=base)
anonymous = AnonymousCredentials()
instances = compute_v1.InstancesClient(credentials=anonymous, client_options=options, transport="rest")
projects = compute_v1.ProjectsClient(credentials=anonymous, client_options=options, transport="rest")
zone_operations = compute_v1.ZoneOperationsClient(credentials=anonymous, client_options=options, transport="rest")
global_operations = compute_v1.GlobalOperationsClient(credentials=anonymous, client_options=options, transport="rest")
# `.result()` polls through operations clients the library builds itself, without the endpoint: hand it ours.
instances._transport._extended_operations_services["zone_operations"] = zone_operations
projects._transport._extended_operations_services["global_operations"] = global_operations
project, zone = "python-instances", "europe-west1-b"

vm = compute_v1.Instance(
    name="py-vm",
    machine_type=f"zones/{zone}/machineTypes/e2-small",
    network_interfaces=[compute_v1.NetworkInterface(access_configs=[compute_v1.AccessConfig(name="External NAT")])],
    service_accounts=[compute_v1.ServiceAccount(email="default", scopes=["https://www.googleapis.com/auth/cloud-platform"])],
    metadata=compute_v1.Metadata(items=[compute_v1.Items(key="serial-port-enable", value="TRUE")]),
)
operation = instances.insert(project=project, zone=zone, instance_resource=vm)
operation.result(timeout=30)
assert operation.done()

got = instances.get(project=project, zone=zone, instance="py-vm")
assert got.status == "RUNNING", got.status
assert got.service_accounts[0].email.endswith("-compute@developer.gserviceaccount.com"), got.service_accounts
assert got.network_interfaces[0].access_configs[0].nat_i_p, "an ephemeral external address is assigned"
assert [(item.key, item.value) for item in got.metadata.items] == [("serial-port-enable", "TRUE")]
fingerprint = got.metadata.fingerprint

closed = compute_v1.Metadata(fingerprint=fingerprint,
                             items=[compute_v1.Items(key="serial-port-enable", value="false")])
instances.set_metadata(project=project, zone=zone, instance="py-vm", metadata_resource=closed).result(timeout=30)
after = instances.get(project=project, zone=zone, instance="py-vm")
assert after.metadata.items[0].value == "false"
assert after.metadata.fingerprint != fingerprint, "the fingerprint moves with the metadata"

try:
    instances.set_metadata(project=project, zone=zone, instance="py-vm", metadata_resource=closed)
    raise AssertionError("a stale fingerprint must be refused")
except exceptions.PreconditionFailed as error:
    assert "fingerprint" in str(error), error

account = compute_v1.InstancesSetServiceAccountRequest(email="narrow@python-instances.iam.gserviceaccount.com",
                                                       scopes=["https://www.googleapis.com/auth/logging.write"])
try:
    instances.set_service_account(project=project, zone=zone, instance="py-vm",
                                  instances_set_service_account_request_resource=account)
    raise AssertionError("a running instance's account cannot change")
except exceptions.BadRequest:
    pass
instances.stop(project=project, zone=zone, instance="py-vm").result(timeout=30)
assert instances.get(project=project, zone=zone, instance="py-vm").status == "TERMINATED"
instances.set_service_account(project=project, zone=zone, instance="py-vm",
                              instances_set_service_account_request_resource=account).result(timeout=30)
assert instances.get(project=project, zone=zone, instance="py-vm").service_accounts[0].email == account.email

common = projects.get(project=project)
assert common.default_service_account.endswith("-compute@developer.gserviceaccount.com")
projects.set_common_instance_metadata(project=project, metadata_resource=compute_v1.Metadata(
    fingerprint=common.common_instance_metadata.fingerprint,
    items=[compute_v1.Items(key="enable-oslogin", value="TRUE")])).result(timeout=30)
assert projects.get(project=project).common_instance_metadata.items[0].key == "enable-oslogin"

zones = {scope: listed.instances for scope, listed in instances.aggregated_list(project=project) if listed.instances}
assert list(zones) == [f"zones/{zone}"], list(zones)
assert [instance.name for instance in zones[f"zones/{zone}"]] == ["py-vm"]
print("ok")
