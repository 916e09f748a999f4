//! The SAM template: `sam validate --lint` and `cfn-lint` pass (both offline, from the project
//! venv), and the properties the product promises are present.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn venv_tool(name: &str) -> PathBuf {
    let tool = root().join(".venv/bin").join(name);
    assert!(
        tool.exists(),
        "{} is missing: run `make test` (its venv target installs it)",
        tool.display()
    );
    tool
}

fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(venv_tool(tool))
        .args(args)
        .current_dir(root())
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

#[test]
fn sam_validate_lint_passes() {
    let out = run(
        "sam",
        &[
            "validate",
            "--lint",
            "--template",
            "template.yaml",
            "--region",
            "us-east-1",
        ],
    );
    assert!(out.contains("is a valid SAM Template"), "{out}");
}

#[test]
fn cfn_lint_passes() {
    run("cfn-lint", &["template.yaml"]);
}

#[test]
fn template_has_what_the_product_promises() {
    let t = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    for needle in [
        "Type: AWS::Serverless::HttpApi",
        "Runtime: provided.al2023",
        "Architectures: [arm64]",
        "BuildMethod: rust-cargolambda",
        "Binary: lambda-api",
        "SSEAlgorithm: AES256",
        "BlockPublicAcls: true",
        "BlockPublicPolicy: true",
        "IgnorePublicAcls: true",
        "RestrictPublicBuckets: true",
        "aws:SecureTransport: \"false\"",
        "Prefix: uploads/",
        "AbortIncompleteMultipartUpload:",
        "BillingMode: PAY_PER_REQUEST",
        "PointInTimeRecoveryEnabled: true",
        "SSEEnabled: true",
        "MaxFileSize:",
        "InlineDownloadThreshold:",
        "PresignTtlSeconds:",
        "ApiUrl:",
        "BucketName:",
        "TableName:",
    ] {
        assert!(t.contains(needle), "template.yaml lacks {needle:?}");
    }
    // Least privilege: no wildcard actions or resources for the function.
    assert!(!t.contains("dynamodb:*") && !t.contains("Resource: \"*\""));
    assert!(!t.contains("dynamodb:Scan"), "listing never scans");
}

#[test]
fn template_declares_the_indexes_the_code_queries() {
    let t = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let squashed: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
    for (name, pk, sk, included) in depot::store::dynamo::INDEXES {
        let keys = format!(
            "IndexName: {name} KeySchema: - AttributeName: {pk} KeyType: HASH \
             - AttributeName: {sk} KeyType: RANGE Projection:"
        );
        assert!(squashed.contains(&keys), "template.yaml lacks index {name}");
        let projection = match included {
            Some(attrs) => format!(
                "{keys} ProjectionType: INCLUDE NonKeyAttributes: [{}]",
                attrs.join(", ")
            ),
            None => format!("{keys} ProjectionType: ALL"),
        };
        assert!(
            squashed.contains(&projection),
            "index {name}: projection differs"
        );
        for attribute in [pk, sk] {
            assert!(
                squashed.contains(&format!("AttributeName: {attribute} AttributeType: S")),
                "{attribute} is not defined"
            );
        }
    }
}
