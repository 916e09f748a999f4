//! The `depot` command: `serve` (the local registry), `admin` (provisioning on a store),
//! `push` and `pull` (the client for CI jobs).

mod admin;
mod admin_events;
mod http;
mod serve;

use admin::AdminArgs;
use clap::{Parser, Subcommand};
use depot::config::Config;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "depot",
    version,
    about = "A GitLab-compatible generic package registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry on the embedded local store.
    Serve(Config),
    /// Provision groups, projects, users, memberships, tokens and settings.
    Admin(AdminArgs),
    /// Publish a file to a registry: one PUT for small files, an upload session (parallel
    /// parts straight to storage, resumable) for large ones. Prints the package file record.
    /// Exit codes: 0 published, 1 local problem, 2 usage, 3 refused by the registry, 4
    /// network or server failure (retry, with --resume), 5 integrity failure.
    Push(PushArgs),
    /// Download a package file, verified against the registry's SHA-256 before it appears.
    /// Exit codes as for push.
    Pull(PullArgs),
}

/// Where the file is, on which registry, and the token.
#[derive(clap::Args)]
struct TargetArgs {
    /// Base URL of the registry (without /api/v4), e.g. $CI_SERVER_URL.
    #[arg(long, env = "DEPOT_URL")]
    url: String,
    /// Project id or full path.
    #[arg(long)]
    project: String,
    /// Package name.
    #[arg(long)]
    package: String,
    /// Package version.
    #[arg(long)]
    version: String,
    /// Directories before the file name inside the package.
    #[arg(long)]
    path: Option<String>,
    /// Token, sent as PRIVATE-TOKEN; without it DEPOT_TOKEN, then CI_JOB_TOKEN (as JOB-TOKEN).
    #[arg(long)]
    token: Option<String>,
}

impl TargetArgs {
    fn target(&self, file_name: String) -> depot::client::Target {
        depot::client::Target {
            url: self.url.clone(),
            project: self.project.clone(),
            package: self.package.clone(),
            version: self.version.clone(),
            path: self.path.clone(),
            file_name,
        }
    }
}

#[derive(clap::Args)]
struct PushArgs {
    /// The file to publish (its name is the package file's name).
    file: std::path::PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    /// Publish as hidden (status=hidden).
    #[arg(long)]
    hidden: bool,
    /// Continue this file's interrupted upload session from the parts already received.
    #[arg(long)]
    resume: bool,
    /// Parts sent at once.
    #[arg(long, default_value = "4")]
    jobs: usize,
    /// Files up to this size go by one direct PUT (API Gateway takes about 6 MB per request).
    #[arg(long, default_value = "4MiB", value_parser = depot::config::parse_size)]
    direct_max: u64,
}

#[derive(clap::Args)]
struct PullArgs {
    /// The package file's name (not with --all).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    file: Option<String>,
    /// Every file of the version, from its manifest, into the directory -o names (default:
    /// here), directories recreated.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    target: TargetArgs,
    /// Where to write it (default: the file's name, here); with --all, the directory.
    #[arg(short = 'o', long)]
    output: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => serve::serve(config).await,
        Command::Admin(args) => admin::admin(args).await,
        Command::Push(args) => push(args).await,
        Command::Pull(args) => pull(args).await,
    }
}

/// One record as the JSON line the commands print. Depot's records are plain structs with
/// string keys, which always serialize.
fn json_line(value: impl serde::Serialize) -> String {
    serde_json::to_string(&value).expect("a plain record serializes")
}

fn client_exit(
    result: Result<impl serde::Serialize, depot::client::ClientError>,
    verb: &str,
) -> ExitCode {
    match result {
        Ok(out) => {
            println!("{}", json_line(out));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("depot {verb}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn push(args: PushArgs) -> ExitCode {
    let Some(auth) = depot::client::Auth::resolve(args.target.token.clone()) else {
        eprintln!("depot push: no token: pass --token, or set DEPOT_TOKEN or CI_JOB_TOKEN");
        return ExitCode::from(1);
    };
    let Some(name) = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        eprintln!("depot push: {} is not a file", args.file.display());
        return ExitCode::from(1);
    };
    let options = depot::client::PushOptions {
        hidden: args.hidden,
        resume: args.resume,
        jobs: args.jobs,
        direct_max: args.direct_max,
        state_dir: depot::client::default_state_dir(),
    };
    let target = args.target.target(name);
    client_exit(
        depot::client::push(&args.file, &target, &auth, &options).await,
        "push",
    )
}

async fn pull(args: PullArgs) -> ExitCode {
    let auth = depot::client::Auth::resolve(args.target.token.clone());
    let Some(file) = args.file.clone() else {
        let dir = args.output.clone().unwrap_or_else(|| ".".into());
        let target = args.target.target(String::new());
        return client_exit(
            depot::client::pull_all(&target, auth.as_ref(), &dir).await,
            "pull",
        );
    };
    let file_name = file.rsplit('/').next().unwrap_or(&file).to_string();
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(&file_name));
    let target = args.target.target(file);
    client_exit(
        depot::client::pull(&target, auth.as_ref(), &out).await,
        "pull",
    )
}
