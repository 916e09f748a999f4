//! One typed configuration, read once from flags or the environment (`DEPOT_*`): which store
//! pair (a `StoreConfig` that cannot lack its table or bucket), how files move, and what
//! `depot serve` and the Lambda functions add. Defaults are the registry's own constants.

use crate::registry::{DEFAULT_PART_SIZE, DEFAULT_PRESIGN_TTL_SECS, DEFAULT_SINGLE_MAX};
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which store pair holds the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// SQLite + a directory under `--data-dir` (the embedded default).
    Local,
    /// DynamoDB table `--table` + S3 bucket `--bucket` (or their emulators).
    Aws,
}

/// Where the registry's records and files live, as flags and variables say it (`--store aws`
/// without `--table` or `--bucket` is refused while parsing). [`StoreArgs::config`] makes the
/// typed [`StoreConfig`].
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// `local` (SQLite + directory) or `aws` (DynamoDB + S3).
    #[arg(
        long = "store",
        env = "DEPOT_STORE",
        value_enum,
        default_value = "local"
    )]
    pub kind: StoreKind,
    /// Directory holding the SQLite metadata file and the blobs (local store).
    #[arg(long, env = "DEPOT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// DynamoDB table (aws store).
    #[arg(long, env = "DEPOT_TABLE", required_if_eq("kind", "aws"))]
    pub table: Option<String>,
    /// S3 bucket (aws store).
    #[arg(long, env = "DEPOT_BUCKET", required_if_eq("kind", "aws"))]
    pub bucket: Option<String>,
    /// S3 endpoint override, e.g. an emulator (`AWS_ENDPOINT_URL_S3` works too).
    #[arg(long, env = "DEPOT_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// DynamoDB endpoint override (`AWS_ENDPOINT_URL_DYNAMODB` works too).
    #[arg(long, env = "DEPOT_DYNAMODB_ENDPOINT")]
    pub dynamodb_endpoint: Option<String>,
    #[command(flatten)]
    pub patience: AwsPatience,
}

/// How long the AWS clients wait and how often they try (aws store): the SDK's standard retry
/// mode (throttling, 5xx, timeouts and dropped connections are retried with jittered
/// backoff), with a limit on connecting and on each attempt, so a stalled request is retried
/// or given up (503) instead of holding its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct AwsPatience {
    /// Longest wait for a connection to DynamoDB or S3 (`500ms`, `3s`).
    #[arg(long = "aws-connect-timeout", env = "DEPOT_AWS_CONNECT_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Longest wait for one attempt of a DynamoDB request, answer included.
    #[arg(long = "dynamodb-attempt-timeout", env = "DEPOT_DYNAMODB_ATTEMPT_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub dynamodb_attempt_timeout: Duration,
    /// Longest wait for S3 to start answering one attempt of a request (a part's bytes are
    /// sent within it; a server-side copy or a download then takes as long as it needs). The
    /// API function sets less, so that its retries fit API Gateway's 29 s.
    #[arg(long = "s3-attempt-timeout", env = "DEPOT_S3_ATTEMPT_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub s3_attempt_timeout: Duration,
    /// Attempts per AWS request, the first included.
    #[arg(long = "aws-max-attempts", env = "DEPOT_AWS_MAX_ATTEMPTS", default_value = "3", value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,
    /// The backoff before a first retry; it doubles (jittered, at most 20 s) with each one.
    #[arg(long = "aws-retry-backoff", env = "DEPOT_AWS_RETRY_BACKOFF", default_value = "1s", value_parser = parse_duration)]
    pub initial_backoff: Duration,
}

impl Default for AwsPatience {
    /// The flags' defaults.
    fn default() -> Self {
        AwsPatience {
            connect_timeout: Duration::from_secs(3),
            dynamodb_attempt_timeout: Duration::from_secs(3),
            s3_attempt_timeout: Duration::from_secs(60),
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
        }
    }
}

/// Endpoint overrides of the AWS services (emulators); `None`: the SDK's own resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub s3: Option<String>,
    pub dynamodb: Option<String>,
}

/// The store pair, typed: each kind carries exactly what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite + a directory.
    Local { data_dir: PathBuf },
    /// DynamoDB + S3.
    Aws {
        table: String,
        bucket: String,
        endpoints: Endpoints,
        patience: AwsPatience,
    },
}

impl StoreArgs {
    /// The typed store configuration; an error names a flag the aws store lacks.
    pub fn config(&self) -> Result<StoreConfig, String> {
        match self.kind {
            StoreKind::Local => Ok(StoreConfig::Local {
                data_dir: self.data_dir.clone(),
            }),
            StoreKind::Aws => {
                let needed = |value: &Option<String>, flag: &str| {
                    value
                        .clone()
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| format!("the aws store needs {flag}"))
                };
                Ok(StoreConfig::Aws {
                    table: needed(&self.table, "--table (DEPOT_TABLE)")?,
                    bucket: needed(&self.bucket, "--bucket (DEPOT_BUCKET)")?,
                    endpoints: Endpoints {
                        s3: self.s3_endpoint.clone(),
                        dynamodb: self.dynamodb_endpoint.clone(),
                    },
                    patience: self.patience,
                })
            }
        }
    }
}

impl StoreConfig {
    /// Where the store lives, for messages.
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Local { data_dir } => format!("data in {}", data_dir.display()),
            StoreConfig::Aws { table, bucket, .. } => {
                format!("table {table}, bucket {bucket}")
            }
        }
    }
}

/// GitLab's default generic package size limit: 5 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 5 << 30;

/// Settings of a running registry.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "DEPOT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub transfers: TransferConfig,
    #[command(flatten)]
    pub identity: IdentityConfig,
    #[command(flatten)]
    pub events: EventsConfig,
    /// Base URL clients use to reach this registry (printed in examples). Defaults to
    /// `http://<listen>`.
    #[arg(long, env = "DEPOT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Seconds between purges of deleted packages' bytes (0 = never).
    #[arg(long, env = "DEPOT_PURGE_INTERVAL", default_value = "60")]
    pub purge_interval: u64,
    /// Show the process's counters at `/metrics` (Prometheus's text format).
    #[arg(long, env = "DEPOT_METRICS")]
    pub metrics: bool,
    /// Seconds a client may take to send a request's headers before its connection is closed.
    #[arg(long, env = "DEPOT_HEADER_TIMEOUT", default_value = "30", value_parser = positive_seconds)]
    pub header_timeout: u64,
    /// Seconds an upload may go without sending a byte of its body before it is refused (and
    /// nothing of it kept).
    #[arg(long, env = "DEPOT_BODY_IDLE_TIMEOUT", default_value = "60", value_parser = positive_seconds)]
    pub body_idle_timeout: u64,
}

/// A number of seconds, at least one.
fn positive_seconds(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) | Err(_) => Err(format!("{s:?} is not a number of seconds (at least 1)")),
        Ok(n) => Ok(n),
    }
}

/// How files move, and how long who-is-who answers are kept, for `depot serve` and the Lambda
/// functions alike (flags or environment).
#[derive(Debug, Clone, Args)]
pub struct TransferConfig {
    /// Largest accepted file: a file of this size or more is refused. 0 = unlimited.
    /// Accepts plain bytes or KiB/MiB/GiB/TiB (and K/M/G/T) suffixes.
    #[arg(long, env = "DEPOT_MAX_FILE_SIZE", default_value = "5GiB", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Files up to this size are kept in their metadata record (SQLite row, DynamoDB item)
    /// rather than as a blob of their own: one durable write instead of two. 0 = never.
    #[arg(long, env = "DEPOT_INLINE_FILE_MAX", default_value = "8KiB", value_parser = parse_size)]
    pub inline_file_max: u64,
    /// Files larger than this are downloaded by a redirect to a presigned URL where the store
    /// can presign (S3); smaller ones inline.
    #[arg(long, env = "DEPOT_INLINE_DOWNLOAD_MAX", default_value = "4MiB", value_parser = parse_size)]
    pub inline_download_max: u64,
    /// Lifetime of presigned URLs, in seconds.
    #[arg(long, env = "DEPOT_PRESIGN_TTL", default_value_t = DEFAULT_PRESIGN_TTL_SECS)]
    pub presign_ttl: u64,
    /// Upload sessions declaring more than this go to a multipart upload in parts of this size
    /// (at least 5MiB).
    #[arg(long, env = "DEPOT_UPLOAD_PART_SIZE", default_value_t = DEFAULT_PART_SIZE, value_parser = parse_size)]
    pub upload_part_size: u64,
    /// On S3, upload sessions declaring a SHA-256 and at most this size are sent as one PUT
    /// that S3 checks against the digest as the bytes arrive (no copy or read-back at commit;
    /// 0 = never): larger ones go in parts.
    #[arg(long, env = "DEPOT_UPLOAD_SINGLE_MAX", default_value_t = DEFAULT_SINGLE_MAX, value_parser = parse_size)]
    pub upload_single_max: u64,
    /// How long projects, memberships, group settings and trust rules read from the store are
    /// kept in memory (`5s`, `0` = not kept): a removed member made by another process or
    /// function instance takes effect within it (tokens are read every time).
    #[arg(long, env = "DEPOT_IDENTITY_CACHE", default_value = "5s", value_parser = parse_duration)]
    pub identity_cache: Duration,
}

impl TransferConfig {
    pub fn limits(&self) -> crate::Limits {
        crate::Limits {
            max_file_size: self.max_file_size,
            inline_file_max: self.inline_file_max,
        }
    }

    pub fn downloads(&self) -> crate::Downloads {
        crate::Downloads {
            inline_max: Some(self.inline_download_max),
            presign_ttl: std::time::Duration::from_secs(self.presign_ttl.max(1)),
        }
    }

    /// The handoff's part size; sessions committed by `complete` whatever their size.
    pub fn uploads(&self) -> crate::Uploads {
        crate::Uploads {
            part_size: self.upload_part_size,
            commit_inline_max: None,
            single_max: self.upload_single_max,
        }
    }
}

impl Config {
    /// The URL clients should use, without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// Where the metadata database of a data directory lives.
pub fn database_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("depot.sqlite3")
}

/// `250ms`, `3s`, `2m` → a duration (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration"))?;
    let millis = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        other => return Err(format!("unknown duration unit {other:?} (ms, s, m or h)")),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// `5GiB`, `100M`, `4096` → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        "t" | "tib" | "tb" => 40,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Events: how long the audit log keeps them, where they go on AWS, and how webhooks retry.
#[derive(Debug, Clone, Args)]
pub struct EventsConfig {
    /// Days the audit log keeps an event (DynamoDB's TTL; `depot serve`'s purge).
    #[arg(long, env = "DEPOT_AUDIT_RETENTION_DAYS", default_value = "400", value_parser = clap::value_parser!(u32).range(2..))]
    pub audit_retention_days: u32,
    /// The EventBridge bus the events function puts events on.
    #[arg(long, env = "DEPOT_EVENT_BUS", default_value = "default")]
    pub event_bus: String,
    /// EventBridge's endpoint, for an emulator; unset: AWS's.
    #[arg(long, env = "DEPOT_EVENTBRIDGE_ENDPOINT")]
    pub eventbridge_endpoint: Option<String>,
    /// The wait before a failed webhook delivery's first retry (`10s`; it doubles after each
    /// failure, up to an hour, for at least a day).
    #[arg(long, env = "DEPOT_HOOK_RETRY_FIRST", default_value = "10s", value_parser = parse_duration)]
    pub hook_retry_first: Duration,
    /// Seconds between webhook passes (what is due is sent).
    #[arg(long, env = "DEPOT_HOOK_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub hook_interval: Duration,
}

impl EventsConfig {
    /// The audit log's retention in seconds.
    pub fn keep_seconds(&self) -> i64 {
        i64::from(self.audit_retention_days) * 86_400
    }
}

/// Who else may vouch for a caller: an upstream GitLab whose CI job tokens depot accepts
/// (`depot serve` and the Lambda functions alike). OIDC trust rules live in the store.
#[derive(Debug, Clone, Default, Args)]
pub struct IdentityConfig {
    /// An upstream GitLab's base URL: a job token depot does not know is asked of it
    /// (`GET /api/v4/job`). Unset: only depot's own tokens and OIDC ID tokens are accepted.
    #[arg(long, env = "DEPOT_GITLAB_URL")]
    pub gitlab_url: Option<String>,
    /// Which GitLab projects' jobs may act on which depot projects, comma-separated:
    /// `<gitlab id or path>=<depot group/project>[:<role>]` (role developer unless given).
    #[arg(long, env = "DEPOT_GITLAB_PROJECTS", default_value = "")]
    pub gitlab_projects: String,
    /// How long a job token the upstream GitLab confirmed is taken as confirmed (`30s`; a
    /// revoked job token may work here until then; `0` asks every time).
    #[arg(long, env = "DEPOT_GITLAB_JOB_CACHE", default_value = "30s", value_parser = parse_duration)]
    pub gitlab_job_cache: Duration,
    /// How long a sign-in to the web UI lasts (`12h`; at least a minute).
    #[arg(long, env = "DEPOT_WEB_SESSION_LIFETIME", default_value = "12h", value_parser = parse_duration)]
    pub web_session_lifetime: Duration,
}

impl IdentityConfig {
    /// The upstream GitLab, if configured (its project mapping checked).
    pub fn upstream(&self) -> Result<Option<crate::auth::upstream::UpstreamConfig>, String> {
        let Some(url) = self.gitlab_url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let loopback = ["http://127.", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| url.starts_with(p));
        if !(url.starts_with("https://") || loopback) {
            return Err(format!(
                "DEPOT_GITLAB_URL {url:?} must be https (job tokens would cross the network in \
                 clear; plain http only to a loopback host)"
            ));
        }
        let projects = crate::auth::upstream::ProjectMapping::parse_list(&self.gitlab_projects)?;
        Ok(Some(crate::auth::upstream::UpstreamConfig {
            url: url.to_string(),
            projects,
            cache_ttl: self.gitlab_job_cache,
        }))
    }
}

/// Settings of the Lambda function, read from its environment only (set by `template.yaml`).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "lambda-api")]
pub struct FunctionConfig {
    #[command(flatten)]
    pub store: StoreArgs,
    /// As for `depot serve`.
    #[command(flatten)]
    pub transfers: TransferConfig,
    #[command(flatten)]
    pub identity: IdentityConfig,
    #[command(flatten)]
    pub events: EventsConfig,
    /// Base URL for links in answers (a custom domain); unset, links use the request's host.
    #[arg(long, env = "DEPOT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The API function commits staged uploads up to this size itself when the client calls
    /// `complete`; larger ones are committed by the finalizer on the S3 event (hashing them
    /// could outlast API Gateway's 29 s).
    #[arg(long, env = "DEPOT_COMMIT_INLINE_MAX", default_value = "128MiB", value_parser = parse_size)]
    pub commit_inline_max: u64,
}

impl FunctionConfig {
    pub fn from_env() -> Result<Self, clap::Error> {
        <Self as clap::Parser>::try_parse_from(["lambda-api"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("5GiB"), Ok(DEFAULT_MAX_FILE_SIZE));
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5XB").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("3h"), Ok(Duration::from_secs(10_800)));
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("99999999999999999999m").is_err());
    }

    #[test]
    fn the_aws_store_cannot_lack_its_table_or_bucket() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            store: StoreArgs,
        }
        let parse = |args: &[&str]| Cli::try_parse_from([&["depot"], args].concat());
        let missing = parse(&["--store", "aws", "--bucket", "b"]).err().unwrap();
        assert_eq!(
            missing.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        assert!(missing.to_string().contains("--table"), "{missing}");
        let aws = parse(&["--store", "aws", "--table", "t", "--bucket", "b"]).unwrap();
        assert_eq!(
            aws.store.config(),
            Ok(StoreConfig::Aws {
                table: "t".into(),
                bucket: "b".into(),
                endpoints: Endpoints::default(),
                patience: AwsPatience::default(),
            })
        );
        let local = parse(&["--data-dir", "/srv/depot"]).unwrap();
        assert_eq!(
            local.store.config(),
            Ok(StoreConfig::Local {
                data_dir: "/srv/depot".into()
            })
        );
    }
}
