"""Translate template.yaml (SAM) into the CloudFormation it deploys, offline, to stdout.

`sam validate --lint` lints the SAM source, where a circular dependency between generated
resources (the bucket notification, the function permission) cannot be seen; the translated
template shows it, so tests lint this output too. Local `CodeUri`s become placeholder S3 URIs
(what `sam build`/`sam package` would upload)."""

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoPolicies:
    """No AWS managed-policy lookups (offline)."""

    def load(self):
        return {}


def main(path):
    source = open(path, encoding="utf-8").read()
    source = source.replace("CodeUri: .", "CodeUri: s3://placeholder-bucket/code.zip")
    print(json.dumps(transform(yaml_parse(source), {}, NoPolicies()), indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
