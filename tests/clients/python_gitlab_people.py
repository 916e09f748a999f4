"""python-gitlab against a running depot, the people APIs: who am I, a project and group read
whole (not lazy), members with those inherited, a deploy token made and used to upload, and the
caller's own token rotated (the new one works, the old one fails). Prints OK on success."""
import sys

import gitlab
import requests

url, token, project_path = sys.argv[1:4]
gl = gitlab.Gitlab(url, private_token=token)
gl.auth()
me = gl.user
assert me.username == "demo", me.attributes
assert me.web_url == f"{url}/demo", me.attributes

project = gl.projects.get(project_path)
assert project.path_with_namespace == project_path, project.attributes
assert project.namespace["full_path"] == project_path.split("/")[0], project.attributes
assert project.permissions["group_access"]["access_level"] == 50, project.attributes
group = gl.groups.get(project.namespace["full_path"])
assert group.full_path == project.namespace["full_path"], group.attributes
assert project_path in [p.path_with_namespace for p in gl.projects.list(membership=True, get_all=True)]

members = project.members_all.list(get_all=True)
assert [(m.username, m.access_level) for m in members] == [("demo", 50)], members
assert project.members.list(get_all=True) == []

deploy = project.deploytokens.create(
    {"name": "ci", "scopes": ["read_package_registry", "write_package_registry"]}
)
assert deploy.username == f"gitlab+deploy-token-{deploy.id}", deploy.attributes
# python-gitlab itself, signed in as the deploy token (HTTP Basic: its username and secret).
as_deploy = gitlab.Gitlab(url, http_username=deploy.username, http_password=deploy.token)
packages = as_deploy.projects.get(project.id, lazy=True).generic_packages
packages.upload(package_name="by-deploy-token", package_version="1.0", file_name="f.txt", data=b"deployed\n")
assert packages.download(package_name="by-deploy-token", package_version="1.0", file_name="f.txt") == b"deployed\n"
upload = requests.put(
    f"{url}/api/v4/projects/{project.id}/packages/generic/by-deploy-token/1.0/h.txt",
    data=b"deployed\n",
    headers={"DEPLOY-TOKEN": deploy.token},
)
assert upload.status_code == 201, upload.text
assert [t.id for t in project.deploytokens.list(get_all=True)] == [deploy.id]
assert not hasattr(project.deploytokens.get(deploy.id), "token")
project.deploytokens.delete(deploy.id)
refused = requests.put(
    f"{url}/api/v4/projects/{project.id}/packages/generic/by-deploy-token/1.0/g.txt",
    data=b"x",
    headers={"DEPLOY-TOKEN": deploy.token},
)
assert refused.status_code == 401, refused.text

mine = gl.personal_access_tokens.get("self")
assert mine.scopes == ["api"] and mine.active, mine.attributes
rotated = mine.rotate(self_rotate=True)
assert rotated["token"] != token and mine.token == rotated["token"], rotated
fresh = gitlab.Gitlab(url, private_token=rotated["token"])
fresh.auth()
assert fresh.user.username == "demo"
try:
    gl.projects.get(project_path)
    raise AssertionError("the rotated token must fail")
except gitlab.exceptions.GitlabAuthenticationError as e:
    assert e.response_code == 401, e
print("OK")
