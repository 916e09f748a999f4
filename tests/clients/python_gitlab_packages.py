"""python-gitlab's Packages API against a running depot: list every page through Link headers,
filters and ordering, one package and its files, delete. Prints OK on success."""
import sys

import gitlab

url, token, project_path = sys.argv[1:4]
gl = gitlab.Gitlab(url, private_token=token, per_page=20)
project = gl.projects.get(project_path, lazy=True)
generic = project.generic_packages

COUNT = 105
names = [f"pkg-{i:03}" for i in range(COUNT)]
for name in names:
    generic.upload(package_name=name, package_version="1.0", file_name="a.bin", data=name.encode())
generic.upload(package_name="pkg-000", package_version="1.0", file_name="b.bin", data=b"second file")

# Every page, followed through rel="next" (python-gitlab's iterator), 20 at a time.
listed = project.packages.list(iterator=True)
seen = [p.name for p in listed]
assert seen == names, seen[:5]
assert listed.total == COUNT and listed.total_pages == 6, (listed.total, listed.total_pages)
assert listed.per_page == 20, listed.per_page

# get_all walks the same pages.
assert len(project.packages.list(get_all=True)) == COUNT

# Filters and ordering.
found = project.packages.list(package_name="PKG-10", order_by="name", sort="desc", get_all=True)
assert [p.name for p in found] == ["pkg-104", "pkg-103", "pkg-102", "pkg-101", "pkg-100"], found
assert project.packages.list(package_version="2.0", get_all=True) == []
assert project.packages.list(package_type="generic", per_page=5, page=2)[0].name == "pkg-005"
try:
    project.packages.list(order_by="size")
    raise AssertionError("a bad order_by must raise")
except gitlab.exceptions.GitlabListError as e:
    assert e.response_code == 400, e

# One package and its files.
first = project.packages.list(package_name="pkg-000", get_all=True)[0]
package = project.packages.get(first.id)
assert (package.name, package.version, package.package_type, package.status) == (
    "pkg-000", "1.0", "generic", "default"), package.attributes
files = package.package_files.list(get_all=True)
assert [f.file_name for f in files] == ["a.bin", "b.bin"], files
assert files[0].size == 7 and len(files[0].file_sha256) == 64, files[0].attributes

# Delete: gone from lists, the package and its downloads at once.
project.packages.delete(first.id)
try:
    project.packages.get(first.id)
    raise AssertionError("a deleted package must not be found")
except gitlab.exceptions.GitlabGetError as e:
    assert e.response_code == 404, e
try:
    generic.download(package_name="pkg-000", package_version="1.0", file_name="a.bin")
    raise AssertionError("a deleted package's file must not download")
except gitlab.exceptions.GitlabGetError as e:
    assert e.response_code == 404, e
remaining = [p.name for p in project.packages.list(iterator=True)]
assert remaining == names[1:], remaining[:3]

print("OK")
