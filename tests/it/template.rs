//! The SAM template: `sam validate --lint` and `cfn-lint` pass (both offline, from the project
//! venv), and the properties the product promises are present.

use crate::support::prerequisites::venv_tool;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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

/// The CloudFormation the SAM template becomes, linted too: the bucket notifies the finalizer
/// that writes to it, and only the translated template shows a circular dependency there.
#[test]
fn the_translated_template_lints_clean_without_cycles() {
    let out = Command::new(venv_tool("python"))
        .arg("infra/sam-translate.py")
        .arg("template.yaml")
        .current_dir(root())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let translated = dir.path().join("translated.json");
    std::fs::write(&translated, &out.stdout).unwrap();
    let cfn: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The S3 event became a notification on the bucket and a permission to invoke.
    let resources = cfn["Resources"].as_object().unwrap();
    assert!(
        resources
            .values()
            .any(|r| r["Type"] == "AWS::Lambda::Permission"
                && r["Properties"]["Principal"] == "s3.amazonaws.com"),
        "no S3 invoke permission"
    );
    assert!(
        cfn["Resources"]["Bucket"]["Properties"]["NotificationConfiguration"]
            ["LambdaConfigurations"]
            .is_array()
    );
    run("cfn-lint", &[translated.to_str().unwrap()]);
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
        "Binary: lambda-finalize",
        "Events: s3:ObjectCreated:*",
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
        // Operations: access logs in JSON, default route throttling, alarms, a dashboard.
        "AccessLogSettings:",
        "ThrottlingRateLimit: !Ref ThrottleRateLimit",
        "ThrottlingBurstLimit: !Ref ThrottleBurstLimit",
        "MetricName: 5xx",
        "MetricName: Errors",
        "MetricName: Throttles",
        "MetricName: ThrottledRequests",
        "Type: AWS::CloudWatch::Dashboard",
        // Events: the stream, its function with a dead-letter queue and retries, the alarms,
        // an example rule.
        "StreamViewType: NEW_AND_OLD_IMAGES",
        "Binary: lambda-events",
        "Type: DynamoDB",
        "ReportBatchItemFailures",
        "Type: AWS::SQS::Queue",
        "MetricName: ApproximateNumberOfMessagesVisible",
        "MetricName: IteratorAge",
        "Type: AWS::Events::Rule",
        "source: [depot]",
        "events:PutEvents",
        "EventBusName:",
        "AuditRetentionDays:",
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

/// The table's TTL reads the attribute the DynamoDB store writes on upload-session records.
#[test]
fn template_expires_session_records_by_the_attribute_the_code_writes() {
    let t = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let ttl = t
        .split("TimeToLiveSpecification:")
        .nth(1)
        .expect("a TimeToLiveSpecification on the table");
    let name = format!("AttributeName: {}", depot::store::dynamo::TTL_ATTRIBUTE);
    assert!(ttl.lines().take(3).any(|l| l.trim() == name), "{ttl}");
    assert!(ttl.lines().take(3).any(|l| l.trim() == "Enabled: true"));
}

/// `infra/openapi.yaml` parses and describes the four upload-session routes the router serves.
#[test]
fn the_openapi_file_describes_the_upload_routes() {
    let script = r#"
import json, sys, yaml
doc = yaml.safe_load(open("infra/openapi.yaml"))
print(json.dumps({p: sorted(m for m in ops if m in ("get", "post", "put", "delete"))
                  for p, ops in doc["paths"].items()}))
"#;
    let out = Command::new(venv_tool("python"))
        .args(["-c", script])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let base =
        "/projects/{id}/packages/generic/{package_name}/{package_version}/{file_path}/uploads";
    assert_eq!(paths[base], serde_json::json!(["post"]));
    assert_eq!(
        paths[format!("{base}/{{session_id}}")],
        serde_json::json!(["delete", "get"])
    );
    assert_eq!(
        paths[format!("{base}/{{session_id}}/complete")],
        serde_json::json!(["post"])
    );
}
