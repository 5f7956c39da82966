"""Google's official Python Resource Manager (v3) clients against the sandbox's hierarchy: read the organization,
create folders (long-running operations), list them, create a project under one, find it with `projects:search`,
move a folder, and see the project's ancestry follow.

Usage: python3 hierarchy_python.py BASE_URL   (exits non-zero on any mismatch)
"""
import sys

from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import resourcemanager_v3

base = sys.argv[1]
options = dict(credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=base), transport="rest")
organizations = resourcemanager_v3.OrganizationsClient(**options)
folders = resourcemanager_v3.FoldersClient(**options)
projects = resourcemanager_v3.ProjectsClient(**options)

organization = organizations.get_organization(name="organizations/123456789012")
assert organization.state == resourcemanager_v3.Organization.State.ACTIVE, organization
try:
    organizations.get_organization(name="organizations/1")
    raise AssertionError("another organization is hidden")
except exceptions.Forbidden:  # HTTP 403, PERMISSION_DENIED
    pass

engineering = folders.create_folder(folder=resourcemanager_v3.Folder(
    parent=organization.name, display_name="Engineering")).result()
assert engineering.name.startswith("folders/") and engineering.parent == organization.name, engineering
playground = folders.create_folder(folder=resourcemanager_v3.Folder(
    parent=organization.name, display_name="Playground")).result()
team = folders.create_folder(folder=resourcemanager_v3.Folder(
    parent=engineering.name, display_name="Payments team")).result()
try:
    folders.create_folder(folder=resourcemanager_v3.Folder(parent=organization.name, display_name="Engineering")).result()
    raise AssertionError("display names are unique within a parent")
except exceptions.BadRequest as refused:  # HTTP 400, FAILED_PRECONDITION
    assert "uniqueness" in str(refused), refused

listed = [folder.display_name for folder in folders.list_folders(parent=organization.name)]
assert listed == ["Engineering", "Playground"], listed
assert folders.get_folder(name=team.name).parent == engineering.name

created = projects.create_project(project=resourcemanager_v3.Project(
    project_id="payments-prod", parent=team.name, display_name="Payments prod")).result()
assert created.project_id == "payments-prod" and created.parent == team.name, created
try:
    projects.create_project(project=resourcemanager_v3.Project(project_id="payments-prod", parent=team.name)).result()
    raise AssertionError("project ids are unique")
except exceptions.Conflict as refused:  # HTTP 409, ALREADY_EXISTS
    assert "already exists" in str(refused), refused
    pass

found = [project.project_id for project in projects.search_projects(query=f"parent:{team.name}")]
assert found == ["payments-prod"], found
by_prefix = [project.project_id for project in projects.search_projects(query="id:payments-*")]
assert by_prefix == ["payments-prod"], by_prefix
assert projects.get_project(name=created.name).parent == team.name

# The team's folder moves under the playground; a folder cannot move below itself.
moved = folders.move_folder(name=team.name, destination_parent=playground.name).result()
assert moved.parent == playground.name, moved
try:
    folders.move_folder(name=playground.name, destination_parent=team.name).result()
    raise AssertionError("a folder cannot move below itself")
except exceptions.BadRequest as refused:  # HTTP 400, FAILED_PRECONDITION
    assert "hierarchy" in str(refused), refused
print("python resource manager hierarchy clients: ok")
