//! The soak's servers: the release `depot serve` on a loopback port for each store pair (local:
//! SQLite + a directory; aws: DynamoDB Local + s3s-fs, the latter in this process), provisioned
//! by the same binary's `depot admin` before it starts, and the server process's memory
//! (`VmRSS`). `DEPOT_BIN` soaks another build.

use crate::support::dynamo::DynamoEmulator;
use crate::support::s3::{ACCESS_KEY, S3Emulator, SECRET_KEY};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Seconds between the server's purges of deleted packages' bytes: short, so the purge runs
/// many times during the soak, alongside the publishes and downloads it must not disturb.
const PURGE_INTERVAL: &str = "5";

/// Which store pair a soak runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pair {
    Local,
    Aws,
}

impl Pair {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "local" => Some(Pair::Local),
            "aws" => Some(Pair::Aws),
            _ => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Pair::Local => "local (SQLite + fs)",
            Pair::Aws => "aws (DynamoDB Local + s3s-fs)",
        }
    }
}

/// A running `depot serve` with the project and token the soak uses; stopped when dropped,
/// with everything it stored.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub project: i64,
    pub token: String,
    /// The server's stderr (warnings and errors; `RUST_LOG=warn`).
    pub log: PathBuf,
    dir: tempfile::TempDir,
    /// The AWS pair's S3 emulator and bucket.
    s3: Option<(S3Emulator, String)>,
    /// The AWS pair's table (where small files keep their bytes).
    table: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `depot` binary soaked: `$DEPOT_BIN`, or the release build.
fn binary() -> String {
    std::env::var("DEPOT_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/depot").to_string()
    })
}

/// `depot <args>` with only `env` set (no credentials or settings of this shell leak in).
fn depot(args: &[String], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(binary());
    command
        .env_clear()
        .env(
            "RUST_LOG",
            std::env::var("SOAK_RUST_LOG").unwrap_or("warn".into()),
        )
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v)));
    command
}

/// With the binary's own `depot admin` on the store: group `soak`, private project `soak/app`,
/// user `soak` as its Maintainer (who may delete) with an `api` token. Returns (project id,
/// token).
fn provision(store: &[String], env: &[(&str, String)]) -> (i64, String) {
    let admin = |words: &[&str]| -> serde_json::Value {
        let mut args: Vec<String> = vec!["admin".into()];
        args.extend(store.iter().cloned());
        args.extend(words.iter().map(|w| w.to_string()));
        let out = depot(&args, env).output().unwrap();
        assert!(
            out.status.success(),
            "depot {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    admin(&["group", "create", "soak"]);
    let project = admin(&["project", "create", "soak/app"])["id"]
        .as_i64()
        .unwrap();
    admin(&["user", "create", "soak"]);
    admin(&["member", "add", "soak", "soak", "maintainer"]);
    let created = admin(&[
        "token", "create", "personal", "--user", "soak", "--scopes", "api",
    ]);
    (project, created["token"].as_str().unwrap().to_string())
}

impl Server {
    /// Provision the store pair, then start `depot serve` on it.
    pub async fn start(pair: Pair) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (store, env, aws) = match pair {
            Pair::Local => {
                let data = dir.path().join("data").display().to_string();
                (vec!["--data-dir".into(), data], vec![], None)
            }
            Pair::Aws => {
                let s3 = S3Emulator::start().await;
                let bucket = s3.bucket("depot-soak").await;
                let dynamo = DynamoEmulator::shared();
                let (_, table) = dynamo.fresh_table().await;
                let table_name = table.clone();
                let store = [
                    "--store",
                    "aws",
                    "--table",
                    &table,
                    "--bucket",
                    &bucket,
                    "--s3-endpoint",
                    &s3.endpoint,
                    "--dynamodb-endpoint",
                    &dynamo.endpoint,
                ];
                let env = vec![
                    ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
                    ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
                    ("AWS_REGION", "us-east-1".to_string()),
                    ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
                ];
                let store = store.map(String::from).to_vec();
                (store, env, Some((s3, bucket, table_name)))
            }
        };
        let (project, token) = provision(&store, &env);
        let log = dir.path().join("server.log");
        let (child, base) = spawn(&store, &env, &log);
        Server {
            child,
            base,
            project,
            token,
            log,
            dir,
            table: aws.as_ref().map(|(_, _, table)| table.clone()),
            s3: aws.map(|(s3, bucket, _)| (s3, bucket)),
        }
    }

    /// How many files' bytes the store holds: blobs (`blobs/` on disk or in the bucket) and
    /// small files kept in their rows or items.
    pub async fn stored_bodies(&self) -> usize {
        match (&self.s3, &self.table) {
            (Some((s3, bucket)), Some(table)) => {
                let keys = s3.keys(bucket).await;
                let client = DynamoEmulator::shared().client();
                keys.iter().filter(|k| k.starts_with("blobs/")).count()
                    + crate::support::dynamo::items_with(&client, table, "content").await
            }
            _ => {
                let data = self.dir.path().join("data");
                count_files(&data.join("blobs")) + crate::support::inline_bodies(&data)
            }
        }
    }

    /// The server's resident memory now, MiB (`VmRSS`).
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    /// Whether the server is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The warnings and errors the server logged (lines with ` WARN ` or ` ERROR `).
    pub fn logged_problems(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(str::to_string)
            .collect()
    }
}

/// Start `depot serve` on a free loopback port on `store`, with `env`; its stderr goes to
/// `log`. Returns the process and its base URL, read from the banner.
fn spawn(store: &[String], env: &[(&str, String)], log: &std::path::Path) -> (Child, String) {
    let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--purge-interval"]
        .map(String::from)
        .to_vec();
    args.push(PURGE_INTERVAL.into());
    args.extend(store.iter().cloned());
    let mut child = depot(&args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("start {} (built by `make soak`): {e}", binary()));
    // The banner's first line: `depot is serving http://127.0.0.1:<port> (...)`.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| {
            let said = std::fs::read_to_string(log).unwrap_or_default();
            panic!("depot serve did not start: {first:?}; stderr: {said}")
        })
        .to_string();
    // Keep reading the rest of stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    wait_ready(&base);
    (child, base)
}

/// Wait until the server accepts connections (it printed its banner after binding).
fn wait_ready(base: &str) {
    let addr = base.trim_start_matches("http://");
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("depot serve at {base} does not accept connections");
}

/// Regular files under `dir`, at any depth.
fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => count_files(&entry.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}
