//! `depot push` / `depot pull` against a real `depot serve`, on the local store and on the AWS
//! stores (s3s-fs + DynamoDB Local): a 200 MiB file through one presigned PUT and through
//! parallel parts, a push killed halfway and finished with `--resume`, byte-identical pulls,
//! a corrupted file refused by `pull` with nothing written, and the exit codes.

use crate::support::PACKAGE_FILE_FIELDS;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEPOT: &str = env!("CARGO_BIN_EXE_depot");

const EMULATOR_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// A `depot serve` child on a free loopback port; killed when dropped.
struct Server {
    child: std::process::Child,
    base: String,
    token: String,
    dir: tempfile::TempDir,
}

impl Server {
    /// A server on a new store prints a demo token; on a store already provisioned, pass the
    /// token it printed then.
    fn start(flags: &[String], known_token: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let mut child = Command::new(DEPOT)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(flags)
            .envs(EMULATOR_ENV)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps draining stdout so the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let _ = tx.send(line.unwrap_or_default());
            }
        });
        let (mut base, mut token) = (None, known_token);
        let deadline = Instant::now() + Duration::from_secs(60);
        while base.is_none() || token.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                break;
            };
            if let Some(rest) = line.strip_prefix("depot is serving ") {
                base = rest.split_whitespace().next().map(str::to_string);
            }
            if line.trim().starts_with("dpat-") {
                token = Some(line.trim().to_string());
            }
        }
        Server {
            child,
            base: base.expect("a banner with the URL"),
            token: token.expect("a demo token"),
            dir,
        }
    }

    /// The last lines the server logged, for a failure's message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A client's output with the server's log after it.
    fn explain(&self, out: &Output) -> String {
        format!("{}\nserver log:\n{}", text(out), self.log_tail())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file of `size` bytes that does not repeat within any part.
fn big_file(dir: &Path, name: &str, size: usize) -> (PathBuf, String) {
    let path = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut left = size;
    while left > 0 {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let n = left.min(block.len());
        out.write_all(&block[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
    drop(out);
    let sha = sha256_of(&path);
    (path, sha)
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut file = std::fs::File::open(path).unwrap();
    std::io::copy(&mut file, &mut hasher).unwrap();
    hex::encode(hasher.finalize())
}

fn depot(args: &[&str], state: &Path) -> Command {
    let mut cmd = Command::new(DEPOT);
    cmd.args(args)
        .env("DEPOT_STATE_DIR", state)
        .env_remove("DEPOT_TOKEN")
        .env_remove("CI_JOB_TOKEN");
    cmd
}

fn target<'a>(server: &'a Server, version: &'a str) -> Vec<&'a str> {
    vec![
        "--url",
        &server.base,
        "--project",
        "demo/app",
        "--package",
        "big",
        "--version",
        version,
        "--token",
        &server.token,
    ]
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Push then pull `file` at `version`; the pulled copy is byte-identical.
fn push_then_pull(server: &Server, file: &Path, sha: &str, version: &str, extra: &[&str]) {
    let state = tempfile::tempdir().unwrap();
    let mut args = vec!["push", file.to_str().unwrap()];
    args.extend(target(server, version));
    args.extend(["--direct-max", "1MiB"]);
    args.extend(extra);
    let out = run(&mut depot(&args, state.path()));
    assert!(out.status.success(), "{}", server.explain(&out));
    printed_record(server, &out, sha);
    pull_matches(server, version, sha);
}

/// The one JSON line `out` printed is the package-file record of bytes with `sha`.
fn printed_record(server: &Server, out: &Output, sha: &str) {
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["file_sha256"], sha, "{}", server.explain(out));
    let fields: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, PACKAGE_FILE_FIELDS, "{}", server.explain(out));
    assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 1);
}

/// A file within `--direct-max` goes by one PUT to the GitLab route, and prints the same record.
fn small_push_goes_direct(server: &Server, dir: &Path) {
    let (file, sha) = big_file(dir, "small.bin", 64 << 10);
    let state = tempfile::tempdir().unwrap();
    let mut args = vec!["push", file.to_str().unwrap()];
    args.extend(target(server, "0.1"));
    let out = run(&mut depot(&args, state.path()));
    assert!(out.status.success(), "{}", server.explain(&out));
    printed_record(server, &out, &sha);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("part "), "no session: {stderr}");
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
}

fn pull_matches(server: &Server, version: &str, sha: &str) {
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("copy.bin");
    let mut args = vec!["pull", "data.bin"];
    args.extend(target(server, version));
    args.extend(["-o", copy.to_str().unwrap()]);
    let out = run(&mut depot(&args, work.path()));
    assert!(out.status.success(), "{}", server.explain(&out));
    assert_eq!(sha256_of(&copy), sha);
    let printed = String::from_utf8_lossy(&out.stdout);
    let expected = serde_json::json!({
        "file": copy.display().to_string(),
        "size": SIZE,
        "sha256": sha,
    });
    assert_eq!(printed.trim_end(), expected.to_string(), "what pull prints");
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        1,
        "only the output file"
    );
}

/// `depot pull --all`: every file of a version, directories recreated, each verified (the
/// large one through storage's redirect on S3); a version that does not exist is refused
/// (exit 3) with nothing written.
fn pull_all_fetches_the_version(server: &Server, dir: &Path) {
    let files = [
        ("a.bin", None, 10 << 10),
        ("b.bin", Some("sub/dir"), 20 << 10),
        ("c.bin", None, 2 << 20),
    ];
    let mut expected = Vec::new();
    for (name, path, size) in files {
        let (file, sha) = big_file(dir, name, size);
        let state = tempfile::tempdir().unwrap();
        let mut args = vec!["push", file.to_str().unwrap()];
        args.extend(target(server, "3.0"));
        if let Some(path) = path {
            args.extend(["--path", path]);
        }
        let out = run(&mut depot(&args, state.path()));
        assert!(out.status.success(), "{}", server.explain(&out));
        let shown = path.map_or(name.to_string(), |p| format!("{p}/{name}"));
        expected.push((shown, sha));
    }
    let work = tempfile::tempdir().unwrap();
    let into = work.path().join("out");
    let mut args = vec!["pull", "--all"];
    args.extend(target(server, "3.0"));
    args.extend(["-o", into.to_str().unwrap()]);
    let out = run(&mut depot(&args, work.path()));
    assert!(out.status.success(), "{}", server.explain(&out));
    for (path, sha) in &expected {
        assert_eq!(&sha256_of(&into.join(path)), sha, "{path}");
    }
    assert_eq!(walk(&into).len(), expected.len(), "only the files");
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (printed["package"].as_str(), printed["version"].as_str()),
        (Some("big"), Some("3.0"))
    );
    assert_eq!(printed["files"].as_array().unwrap().len(), expected.len());
    // `--version latest`: the highest version holding the file (3.0 here).
    let latest = work.path().join("latest.bin");
    let mut args = vec!["pull", "a.bin"];
    args.extend(target(server, "latest"));
    args.extend(["-o", latest.to_str().unwrap()]);
    let out = run(&mut depot(&args, work.path()));
    assert!(out.status.success(), "{}", server.explain(&out));
    assert_eq!(sha256_of(&latest), expected[0].1);
    let missing = work.path().join("missing");
    let mut args = vec!["pull", "--all"];
    args.extend(target(server, "9.9"));
    args.extend(["-o", missing.to_str().unwrap()]);
    let out = run(&mut depot(&args, work.path()));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(!missing.exists());
}

/// A push killed after some parts, then finished with `--resume`.
fn interrupted_push_resumes(server: &Server, file: &Path, sha: &str) {
    let state = tempfile::tempdir().unwrap();
    let mut args = vec!["push", file.to_str().unwrap()];
    args.extend(target(server, "3.0"));
    args.extend(["--direct-max", "1MiB", "--jobs", "2"]);
    let mut child = depot(&args, state.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut sent = 0;
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains(" sent") && line.contains("part ") {
            sent += 1;
            if sent == 3 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(sent, 3, "the push was killed after three parts");
    // Not published yet.
    pull_refused(server, "3.0");
    let mut args = vec!["push", file.to_str().unwrap()];
    args.extend(target(server, "3.0"));
    args.extend(["--direct-max", "1MiB", "--resume"]);
    let out = run(&mut depot(&args, state.path()));
    assert!(out.status.success(), "{}", server.explain(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resuming upload session"), "{stderr}");
    let resent = stderr
        .lines()
        .filter(|l| l.contains(" sent") && l.contains("part "))
        .count();
    assert!(
        resent < 25,
        "only the missing parts were sent again: {stderr}"
    );
    assert_eq!(
        std::fs::read_dir(state.path()).unwrap().count(),
        0,
        "the finished session is forgotten"
    );
    pull_matches(server, "3.0", sha);
}

fn pull_refused(server: &Server, version: &str) {
    let work = tempfile::tempdir().unwrap();
    let mut args = vec!["pull", "data.bin"];
    args.extend(target(server, version));
    let out_path = work.path().join("x");
    args.extend(["-o", out_path.to_str().unwrap()]);
    let out = run(&mut depot(&args, work.path()));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

/// Exit codes a script can rely on.
fn exit_codes(server: &Server, file: &Path) {
    let state = tempfile::tempdir().unwrap();
    let mut args = vec!["push", file.to_str().unwrap()];
    let mut t = target(server, "9.0");
    let bad = "dpat-not-a-token";
    *t.last_mut().unwrap() = bad;
    args.extend(t);
    let out = run(&mut depot(&args, state.path()));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(!text(&out).contains(bad), "the token is never printed");
    let mut args = vec!["push", "/nonexistent/file.bin"];
    args.extend(target(server, "9.0"));
    assert_eq!(run(&mut depot(&args, state.path())).status.code(), Some(1));
    let mut args = vec!["push", file.to_str().unwrap()];
    args.extend([
        "--url",
        "http://127.0.0.1:9",
        "--project",
        "1",
        "--package",
        "p",
    ]);
    args.extend(["--version", "1", "--token", "x"]);
    assert_eq!(run(&mut depot(&args, state.path())).status.code(), Some(4));
    assert_eq!(
        run(&mut depot(&["push"], state.path())).status.code(),
        Some(2)
    );
}

/// `pull` of bytes that do not match the recorded SHA-256: exit 5, nothing written.
fn corrupted_pull_is_refused(server: &Server) {
    let work = tempfile::tempdir().unwrap();
    let out_path = work.path().join("data.bin");
    let mut args = vec!["pull", "data.bin"];
    args.extend(target(server, "1.0"));
    args.extend(["-o", out_path.to_str().unwrap()]);
    let out = run(&mut depot(&args, work.path()));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SHA-256"));
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        0,
        "no output and no partial file"
    );
}

const SIZE: usize = 200 << 20;

#[test]
fn push_and_pull_200_mib_on_the_local_store() {
    let work = tempfile::tempdir().unwrap();
    let (file, sha) = big_file(work.path(), "data.bin", SIZE);
    // One presigned PUT (the session's part size holds the whole file).
    let single = Server::start(&["--upload-part-size".into(), "256MiB".into()], None);
    small_push_goes_direct(&single, work.path());
    pull_all_fetches_the_version(&single, work.path());
    push_then_pull(&single, &file, &sha, "1.0", &[]);
    exit_codes(&single, &file);
    // Corrupt the stored bytes behind the registry's back (bit rot: same length).
    for entry in walk(&single.dir.path().join("blobs")) {
        use std::io::{Seek, SeekFrom};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&entry)
            .unwrap();
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
    }
    corrupted_pull_is_refused(&single);
    drop(single);
    // Parts of 8 MiB, four at a time; then a push killed halfway and resumed.
    let parts = Server::start(&["--upload-part-size".into(), "8MiB".into()], None);
    push_then_pull(&parts, &file, &sha, "2.0", &["--jobs", "4"]);
    interrupted_push_resumes(&parts, &file, &sha);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_and_pull_200_mib_on_the_aws_stores() {
    let work = tempfile::tempdir().unwrap();
    let (file, sha) = big_file(work.path(), "data.bin", SIZE);
    let s3 = crate::support::s3::S3Emulator::start().await;
    let dynamo = crate::support::dynamo::DynamoEmulator::shared();
    let bucket = s3.bucket("depot-push").await;
    let flags = |part: &str, table: &str| -> Vec<String> {
        [
            "--store",
            "aws",
            "--table",
            table,
            "--bucket",
            &bucket,
            "--s3-endpoint",
            &s3.endpoint,
            "--dynamodb-endpoint",
            &dynamo.endpoint,
            "--upload-part-size",
            part,
            "--inline-download-max",
            "1MiB",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let (_, table) = dynamo.fresh_table().await;
    let single = Server::start(&flags("256MiB", &table), None);
    let server = &single;
    tokio::task::block_in_place(|| {
        small_push_goes_direct(server, work.path());
        pull_all_fetches_the_version(server, work.path());
        push_then_pull(server, &file, &sha, "1.0", &[]);
    });
    // Parts, and an interrupted push resumed (same stores, another part size).
    let parts = Server::start(&flags("8MiB", &table), Some(single.token.clone()));
    let server = &parts;
    tokio::task::block_in_place(|| {
        push_then_pull(server, &file, &sha, "2.0", &["--jobs", "4"]);
        interrupted_push_resumes(server, &file, &sha);
    });
    // Corrupt the stored objects behind the registry's back: pull refuses them.
    for key in s3.keys(&bucket).await {
        s3.client()
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(b"not what was published".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    tokio::task::block_in_place(|| corrupted_pull_is_refused(server));
}
