//! Smoke test of the real Lambda binaries under the Lambda runtime emulator of `cargo lambda
//! watch` (from the project venv), on DynamoDB Local and s3s-fs: publish, download, HEAD, list,
//! delete; then the scheduled purge function, invoked the way EventBridge would, removes the
//! deleted package's bytes; then the finalizer commits a handoff on its S3 event. The emulator
//! runs with `--only-lambda-apis` and serves the binaries `cargo test` built (one emulator per
//! function), so the test does not compile the crate a second time.

use crate::support::dynamo::DynamoEmulator;
use crate::support::prerequisites::{on_path, venv_tool};
use crate::support::s3::S3Emulator;
use depot::admin::Admin;
use depot::store::dynamo::DynamoMetaStore;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn curl(args: &[&str]) -> (String, String) {
    let out = on_path("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (code.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lambda_binary_serves_under_cargo_lambda_watch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv_bin = venv_tool("cargo-lambda").parent().unwrap().to_path_buf();

    let s3 = S3Emulator::start().await;
    let bucket = s3.bucket("depot-lambda").await;
    let dynamo = DynamoEmulator::shared();
    let (client, table) = dynamo.fresh_table().await;
    let admin = Admin::new(Arc::new(DynamoMetaStore::new(client, &table)));
    let (pid, token) = crate::support::provision_developer(&admin, "ci", "app", "bot").await;
    // Deleting packages needs a Maintainer.
    admin
        .add_member("bot", "ci", depot::domain::Role::Maintainer)
        .await
        .unwrap();

    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [
        ("DEPOT_STORE", "aws"),
        ("DEPOT_TABLE", table.as_str()),
        ("DEPOT_BUCKET", bucket.as_str()),
        ("DEPOT_S3_ENDPOINT", s3.endpoint.as_str()),
        ("DEPOT_DYNAMODB_ENDPOINT", dynamo.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let api = Emulated::start(env!("CARGO_BIN_EXE_lambda-api"), root, &path, &env);
    let purge = Emulated::start(env!("CARGO_BIN_EXE_lambda-purge"), root, &path, &env);
    let finalize = Emulated::start(env!("CARGO_BIN_EXE_lambda-finalize"), root, &path, &env);
    let port = api.port;
    let base = format!(
        "http://127.0.0.1:{port}/lambda-url/_/api/v4/projects/{pid}/packages/generic/smoke/1.0"
    );
    let header = format!("PRIVATE-TOKEN: {token}");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("smoke.bin");
    let payload: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    std::fs::write(&file, &payload).unwrap();
    let file = file.to_str().unwrap();

    // The function polls the emulator as soon as both are up; wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (code, body) = loop {
        let (code, body) = curl(&[
            "-H",
            &header,
            "-H",
            "Content-Type: application/octet-stream",
            "--upload-file",
            file,
            &format!("{base}/smoke.bin"),
        ]);
        if code == "201" || Instant::now() > deadline {
            break (code, body);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("201", r#"{"message":"201 Created"}"#),
        "log:\n{}",
        api.log()
    );

    let out = work.path().join("back.bin");
    let (code, _) = curl(&[
        "-H",
        &header,
        "-o",
        out.to_str().unwrap(),
        &format!("{base}/smoke.bin"),
    ]);
    assert_eq!(code, "200");
    assert!(
        std::fs::read(&out).unwrap() == payload,
        "downloaded bytes differ"
    );
    let (code, _) = curl(&["-I", "-H", &header, &format!("{base}/smoke.bin")]);
    assert_eq!(code, "200");
    let (code, body) = curl(&[&format!("{base}/smoke.bin")]);
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("401", r#"{"message":"401 Unauthorized"}"#)
    );
    assert_eq!(s3.keys(&bucket).await.len(), 1, "the file is in S3");

    // The package list, with GitLab's pagination headers, served through the function too.
    let list = format!("http://127.0.0.1:{port}/lambda-url/_/api/v4/projects/{pid}/packages");
    let headers_file = work.path().join("list.headers");
    let (code, body) = curl(&["-H", &header, "-D", headers_file.to_str().unwrap(), &list]);
    assert_eq!(code, "200", "{body}");
    let packages: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(packages.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(packages[0]["name"], "smoke");
    assert_eq!(packages[0]["version"], "1.0");
    assert_eq!(packages[0]["package_type"], "generic");
    let headers = std::fs::read_to_string(&headers_file)
        .unwrap()
        .to_ascii_lowercase();
    assert!(headers.contains("x-total: 1\r\n"), "{headers}");
    assert!(headers.contains("x-total-pages: 1\r\n"), "{headers}");
    assert!(
        headers.contains(&format!(
            "/api/v4/projects/{pid}/packages?page=1&per_page=20>; rel=\"first\""
        )),
        "{headers}"
    );

    // Delete through the API function: gone at once, bytes still in S3 until the purge.
    let id = packages[0]["id"].as_i64().unwrap();
    let (code, body) = curl(&["-X", "DELETE", "-H", &header, &format!("{list}/{id}")]);
    assert_eq!((code.as_str(), body.as_str()), ("204", ""));
    let (code, _) = curl(&["-H", &header, &format!("{base}/smoke.bin")]);
    assert_eq!(code, "404");
    assert_eq!(s3.keys(&bucket).await.len(), 1);

    // The scheduled purge: the lambda-purge binary, invoked with a scheduler's event through
    // `cargo lambda invoke`, as the Lambda Invoke API would: its answer.
    let invoke = |function: &Emulated, event: &str| -> serde_json::Value {
        function.wait_listening();
        let out = Command::new("cargo")
            .args(["lambda", "invoke", "_", "--data-ascii", event])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &function.port.to_string(),
            ])
            .current_dir(root)
            .env("PATH", &path)
            .output()
            .unwrap();
        let answer = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{answer}\n{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            function.log()
        );
        serde_json::from_str(answer.trim()).unwrap()
    };
    let purged = invoke(&purge, "{}");
    assert_eq!(
        purged,
        serde_json::json!({
            "cleaned_up": {"packages": 0, "files": 0},
            "packages": 1, "files": 1, "blobs": 1
        })
    );
    assert!(
        s3.keys(&bucket).await.is_empty(),
        "the purge removed the bytes"
    );

    // The handoff: a session opened through the API function, the bytes PUT straight to S3 by
    // its presigned URL, and the lambda-finalize binary committing it on the S3 event.
    let (code, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &header,
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"size": 11}"#,
        &format!("{base}/handoff.bin/uploads"),
    ]);
    assert_eq!(code, "201", "{body}\n{}", api.log());
    let opened: serde_json::Value = serde_json::from_str(&body).unwrap();
    let session = opened["id"].as_str().unwrap().to_string();
    let upload_url = opened["upload"]["url"].as_str().unwrap();
    assert!(upload_url.starts_with(&s3.endpoint), "{upload_url}");
    let bytes = work.path().join("handoff.bin");
    std::fs::write(&bytes, b"to s3 direc").unwrap();
    // With exactly the headers given (they are signed: `If-None-Match: *` among them).
    let headers: Vec<String> = opened["upload"]["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap()))
        .collect();
    let mut put = vec!["-X", "PUT", "--upload-file", bytes.to_str().unwrap()];
    for h in &headers {
        put.extend(["-H", h.as_str()]);
    }
    put.push(upload_url);
    let (code, body) = curl(&put);
    assert_eq!(code, "200", "{body}");
    let event = serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": format!("uploads/{session}"), "size": 11}}
    }]});
    let finalized = invoke(&finalize, &event.to_string());
    assert_eq!(finalized["records"][0]["state"], "committed", "{finalized}");
    // The client's complete agrees, and the file downloads through the API function.
    let (code, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &header,
        &format!("{base}/handoff.bin/uploads/{session}/complete"),
    ]);
    assert_eq!(code, "200", "{body}");
    let (code, body) = curl(&["-H", &header, &format!("{base}/handoff.bin")]);
    assert_eq!((code.as_str(), body.as_str()), ("200", "to s3 direc"));

    eprintln!("cargo lambda watch log (API function):\n{}", api.log());
}

/// One function under its own runtime emulator (`cargo lambda watch --only-lambda-apis`), both
/// in one process group that a watchdog kills when this value is dropped or the test process
/// goes away (the watchdog's stdin closes).
struct Emulated {
    port: u16,
    watchdog: std::process::Child,
    log: tempfile::NamedTempFile,
}

impl Emulated {
    fn start(binary: &str, root: &Path, path: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The function starts once the emulator accepts connections: its first poll must not
        // be refused. The function name under `--only-lambda-apis` is `_`.
        let script = r#"setsid sh -c '
  cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$1" &
  tries=0
  until curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/.rt/2018-06-01/runtime/invocation/none/error" \
      || [ $tries -ge 300 ]; do tries=$((tries + 1)); sleep 0.1; done
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$1/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 \
    AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/depot AWS_LAMBDA_LOG_STREAM_NAME=smoke exec "$2"
' sh "$1" "$3" >"$2" 2>&1 &
p=$!
cat >/dev/null
kill -- -$p 2>/dev/null"#;
        let log = tempfile::NamedTempFile::new().unwrap();
        let watchdog = Command::new("sh")
            .args(["-c", script, "sh", &port.to_string()])
            .arg(log.path())
            .arg(binary)
            .current_dir(root)
            .env("PATH", path)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        Emulated {
            port,
            watchdog,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Wait (bounded) until the emulator accepts connections: with the whole suite running on
    /// two cores, `cargo lambda watch` can take many seconds to start.
    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the emulator on port {} never listened:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        drop(self.watchdog.stdin.take());
        let _ = self.watchdog.wait();
    }
}
