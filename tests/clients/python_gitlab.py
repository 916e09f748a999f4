"""python-gitlab against a running depot: upload (with and without select, from bytes and from
a path), download (whole and streamed), and the errors it surfaces. Prints OK on success."""
import hashlib
import os
import sys
import tempfile

import gitlab

url, token, project_path = sys.argv[1:4]
gl = gitlab.Gitlab(url, private_token=token)
project = gl.projects.get(project_path, lazy=True)
packages = project.generic_packages

data = os.urandom(300_000)
digest = hashlib.sha256(data).hexdigest()

created = packages.upload(package_name="pygl", package_version="1.2.3", file_name="blob.bin", data=data)
assert created.attributes.get("message") == "201 Created", created.attributes

record = packages.upload(
    package_name="pygl", package_version="1.2.3", file_name="record.bin", data=data, select="package_file"
)
assert record.file_name == "record.bin", record.attributes
assert record.size == len(data), record.attributes
assert record.file_sha256 == digest, record.attributes
assert record.file_md5 is None and record.file_sha1 is None, record.attributes
assert isinstance(record.id, int) and isinstance(record.package_id, int), record.attributes

with tempfile.NamedTemporaryFile(delete=False) as f:
    f.write(b"from a path\n")
packages.upload(package_name="pygl", package_version="1.2.3", file_name="from_path.txt", path=f.name)
os.unlink(f.name)

assert packages.download(package_name="pygl", package_version="1.2.3", file_name="blob.bin") == data
assert packages.download(package_name="pygl", package_version="1.2.3", file_name="record.bin") == data
assert packages.download(package_name="pygl", package_version="1.2.3", file_name="from_path.txt") == b"from a path\n"
chunks = []
packages.download(
    package_name="pygl", package_version="1.2.3", file_name="blob.bin", streamed=True, action=chunks.append
)
assert b"".join(chunks) == data

try:
    packages.download(package_name="pygl", package_version="1.2.3", file_name="missing.bin")
    raise AssertionError("a missing file must raise")
except gitlab.exceptions.GitlabGetError as e:
    assert e.response_code == 404, e

try:
    packages.upload(package_name="bad name", package_version="1.0", file_name="f", data=b"x")
    raise AssertionError("a bad name must raise")
except gitlab.exceptions.GitlabUploadError as e:
    assert e.response_code == 400, e

bad = gitlab.Gitlab(url, private_token="dpat-not-a-token")
try:
    bad.projects.get(project_path, lazy=True).generic_packages.upload(
        package_name="pygl", package_version="1.0", file_name="f", data=b"x"
    )
    raise AssertionError("a bad token must raise")
except gitlab.exceptions.GitlabAuthenticationError as e:
    assert e.response_code == 401, e

print("OK")
