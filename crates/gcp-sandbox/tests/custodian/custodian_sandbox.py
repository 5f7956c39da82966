"""Runs stock Cloud Custodian (c7n, c7n-gcp) against the sandbox, changing only where its Google clients connect and
which credentials they carry: every discovery-built client gets `client_options.api_endpoint` pointing at the sandbox
(the API's own service path kept), and `google.auth.default()` answers a fixed bearer token.

Usage: python custodian_sandbox.py BASE_URL PROJECT -- custodian run -s OUTPUT POLICY.yml
"""
import sys

import google.auth
import google.oauth2.credentials
from googleapiclient import discovery_cache

import c7n_gcp.client

base, project = sys.argv[1].rstrip("/"), sys.argv[2]
arguments = sys.argv[sys.argv.index("--") + 1:]


def sandbox_credentials(*_args, **_kwargs):
    return google.oauth2.credentials.Credentials(token="custodian-token"), project


google.auth.default = sandbox_credentials
original = c7n_gcp.client._create_service_api


def create_service_api(credentials, service_name, version, developer_key=None, cache_discovery=False, http=None,
                       client_options=None):
    document = discovery_cache.get_static_doc(service_name, version)
    service_path = __import__("json").loads(document)["servicePath"] if document else ""
    options = {"api_endpoint": f"{base}/{service_path}"}
    return original(credentials, service_name, version, developer_key, cache_discovery, http, options)


c7n_gcp.client._create_service_api = create_service_api

from c7n.cli import main  # noqa: E402  (after the redirection, as a user's wrapper would do it)

sys.argv = arguments
main()
