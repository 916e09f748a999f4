//! The soak's servers: the release `depot serve` on a loopback port for each store pair (local:
//! SQLite + a directory; aws: DynamoDB Local + s3s-fs, the latter in this process), provisioned
//! through `depot::admin::Admin` before it starts, and the server process's memory (`VmRSS`).

use crate::support::dynamo::DynamoEmulator;
use crate::support::s3::{ACCESS_KEY, S3Emulator, SECRET_KEY};
use depot::admin::{Admin, TokenSpec};
use depot::domain::{Role, Scope};
use depot::store::dynamo::DynamoMetaStore;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
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
    _dir: tempfile::TempDir,
    _s3: Option<S3Emulator>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Group `soak`, private project `soak/app`, and user `soak` as its Maintainer (who may
/// delete) with an `api` token. Returns (project id, token).
async fn provision(admin: &Admin) -> (i64, String) {
    admin.create_group("soak").await.unwrap();
    let project = admin.create_project("soak/app", false).await.unwrap().id;
    admin.create_user("soak").await.unwrap();
    admin
        .add_member("soak", "soak", Role::Maintainer)
        .await
        .unwrap();
    let spec = TokenSpec::Personal {
        user: "soak".into(),
        scopes: vec![Scope::Api],
        expires_at: None,
    };
    (project, admin.create_token(spec).await.unwrap().secret)
}

impl Server {
    /// Provision the store pair, then start `depot serve` on it.
    pub async fn start(pair: Pair) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (args, env, s3, (project, token)) = match pair {
            Pair::Local => {
                let data = dir.path().join("data");
                let limits = depot::Limits {
                    max_file_size: depot::config::DEFAULT_MAX_FILE_SIZE,
                };
                let registry = depot::local_registry(&data, limits).unwrap();
                let provisioned = provision(&registry.admin()).await;
                drop(registry);
                let args = vec!["--data-dir".into(), data.display().to_string()];
                (args, vec![], None, provisioned)
            }
            Pair::Aws => {
                let s3 = S3Emulator::start().await;
                let bucket = s3.bucket("depot-soak").await;
                let dynamo = DynamoEmulator::shared();
                let (client, table) = dynamo.fresh_table().await;
                let admin = Admin::new(Arc::new(DynamoMetaStore::new(client, table.clone())));
                let provisioned = provision(&admin).await;
                let args = [
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
                let args = args.map(String::from).to_vec();
                (args, env, Some(s3), provisioned)
            }
        };
        let log = dir.path().join("server.log");
        let (child, base) = spawn(&args, &env, &log);
        Server {
            child,
            base,
            project,
            token,
            log,
            _dir: dir,
            _s3: s3,
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

/// Start `target/release/depot serve` on a free loopback port with `args` (the store) and
/// `env`; its stderr goes to `log`. Returns the process and its base URL, read from the banner.
fn spawn(args: &[String], env: &[(&str, String)], log: &std::path::Path) -> (Child, String) {
    let binary = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/depot");
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("RUST_LOG", "warn")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--purge-interval", PURGE_INTERVAL])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary} (built by `make soak`): {e}"));
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
