"""One requests.Session (as python-gitlab keeps) against a running depot: uploads refused before
their body is read (no token, a bad token, a duplicate, too large) alternate with requests that
must succeed on the same connection pool. Counts connection errors; prints OK when there are none
in 100 rounds."""
import sys

import requests

url, token, project = sys.argv[1:4]
base = f"{url}/api/v4/projects/{project}/packages/generic"
session = requests.Session()
body = b"x" * (256 << 10)
good = {"PRIVATE-TOKEN": token}

put = session.put(f"{base}/keep/1.0/taken.bin", headers=good, data=b"first")
assert put.status_code == 201, put.text

refusals = [
    ({}, 401),
    ({"PRIVATE-TOKEN": "dpat-wrong"}, 401),
    (good, 400),  # larger than the server's --max-file-size
]
errors = []
for round_ in range(100):
    headers, status = refusals[round_ % len(refusals)]
    try:
        refused = session.put(f"{base}/keep/1.0/r{round_}.bin", headers=headers, data=body)
        assert refused.status_code == status, (round_, refused.status_code, refused.text)
        ok = session.get(f"{base}/keep/1.0/taken.bin", headers=good)
        assert ok.status_code == 200 and ok.content == b"first", (round_, ok.status_code)
    except requests.exceptions.ConnectionError as e:
        errors.append(f"round {round_}: {e}")

if errors:
    print(f"{len(errors)} connection errors in 100 rounds:", *errors[:5], sep="\n")
    sys.exit(1)
print("OK")
