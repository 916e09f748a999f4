//! The `depot` command: `serve` (the local registry), `admin` (provisioning on a store).

use clap::{Parser, Subcommand};
use depot::admin::{Admin, AdminError, DeployTarget, TokenSpec};
use depot::config::{Config, StoreArgs, StoreConfig};
use depot::domain::{Role, Scope, Timestamp};
use depot::registry::PURGE_BATCH;
use depot::telemetry::init_logging;
use depot::wire::admin::{
    GroupCreated, MemberAdded, ProjectCreated, SettingsSet, TokenCreated, TokenRevoked, UserCreated,
};
use depot::{Serving, meta_store, registry, router};
use std::process::ExitCode;
use std::sync::Arc;

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
    /// The package file's name.
    file: String,
    #[command(flatten)]
    target: TargetArgs,
    /// Where to write it (default: the file's name, here).
    #[arg(short = 'o', long)]
    output: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct AdminArgs {
    /// The store to provision (the one `depot serve` uses): `--data-dir DIR`, or
    /// `--store aws --table T --bucket B` with the operator's AWS credentials.
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// `group create <path>`
    Group {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// `project create <group>/<name> [--public]`
    Project {
        #[command(subcommand)]
        action: ProjectAction,
    },
    /// `user create <username>`
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// `member add <username> <group-or-project-path> <role>`
    Member {
        #[command(subcommand)]
        action: MemberAction,
    },
    /// `token create personal|deploy|job ...`, `token revoke <id>`
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// `settings set <group> [--duplicates-allowed true|false] [--exception-regex RE]`
    Settings {
        #[command(subcommand)]
        action: SettingsAction,
    },
}

#[derive(Subcommand)]
enum GroupAction {
    Create { path: String },
}

#[derive(Subcommand)]
enum ProjectAction {
    Create {
        /// `<group>/<name>`
        path: String,
        #[arg(long)]
        public: bool,
    },
}

#[derive(Subcommand)]
enum UserAction {
    Create { username: String },
}

#[derive(Subcommand)]
enum MemberAction {
    Add {
        username: String,
        /// Full path of a group or a project.
        path: String,
        /// guest | reporter | developer | maintainer | owner
        role: Role,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    Create {
        #[command(subcommand)]
        kind: TokenCreate,
    },
    Revoke {
        id: i64,
    },
}

#[derive(Subcommand)]
enum TokenCreate {
    /// A personal access token of a user.
    Personal {
        #[arg(long)]
        user: String,
        /// api and/or read_api, comma-separated.
        #[arg(long)]
        scopes: String,
        /// Last day of validity (the token expires at the start of that day, UTC).
        #[arg(long, value_parser = parse_date)]
        expires_at: Option<Timestamp>,
    },
    /// A deploy token of a project (or of a group: valid for all its projects).
    Deploy {
        #[arg(long, required_unless_present = "group", conflicts_with = "group")]
        project: Option<String>,
        #[arg(long)]
        group: Option<String>,
        /// read_package_registry and/or write_package_registry, comma-separated.
        #[arg(long)]
        scopes: String,
        #[arg(long, value_parser = parse_date)]
        expires_at: Option<Timestamp>,
    },
    /// A CI job token: acts as the user, in one project, for a limited time.
    Job {
        #[arg(long)]
        user: String,
        #[arg(long)]
        project: String,
        /// Lifetime: `90s`, `30m`, `1h`, `2d`.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: i64,
    },
}

#[derive(Subcommand)]
enum SettingsAction {
    Set {
        group: String,
        #[arg(long, action = clap::ArgAction::Set)]
        duplicates_allowed: Option<bool>,
        #[arg(long)]
        exception_regex: Option<String>,
    },
}

fn parse_date(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_date(s).ok_or_else(|| format!("{s:?} is not a YYYY-MM-DD date"))
}

/// `90s`, `30m`, `1h`, `2d` → seconds.
fn parse_ttl(s: &str) -> Result<i64, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n.parse().map_err(|_| format!("{s:?} is not a duration"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: use s, m, h or d")),
    };
    Ok(n * secs)
}

fn scopes(list: &str) -> Result<Vec<Scope>, AdminError> {
    Scope::parse_list(list).map_err(AdminError::Invalid)
}

/// What `token create <kind>` asks for.
fn token_spec(kind: TokenCreate) -> Result<TokenSpec, AdminError> {
    Ok(match kind {
        TokenCreate::Personal {
            user,
            scopes: list,
            expires_at,
        } => TokenSpec::Personal {
            user,
            scopes: scopes(&list)?,
            expires_at,
        },
        TokenCreate::Deploy {
            project,
            group,
            scopes: list,
            expires_at,
        } => TokenSpec::Deploy {
            target: match (project, group) {
                (Some(project), _) => DeployTarget::Project(project),
                (None, Some(group)) => DeployTarget::Group(group),
                (None, None) => {
                    return Err(AdminError::Invalid(
                        "a deploy token needs --project or --group".into(),
                    ));
                }
            },
            scopes: scopes(&list)?,
            expires_at,
        },
        TokenCreate::Job { user, project, ttl } => TokenSpec::Job {
            user,
            project,
            expires_at: Timestamp::now().plus_seconds(ttl),
        },
    })
}

/// Run one provisioning command; the record it made, as the JSON line to print.
async fn run_admin(admin: &Admin, command: AdminCommand) -> Result<serde_json::Value, AdminError> {
    fn json(value: impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(value).unwrap_or_default()
    }
    Ok(match command {
        AdminCommand::Group {
            action: GroupAction::Create { path },
        } => json(GroupCreated::from(&admin.create_group(&path).await?)),
        AdminCommand::Project {
            action: ProjectAction::Create { path, public },
        } => json(ProjectCreated::from(
            &admin.create_project(&path, public).await?,
        )),
        AdminCommand::User {
            action: UserAction::Create { username },
        } => json(UserCreated::from(&admin.create_user(&username).await?)),
        AdminCommand::Member {
            action:
                MemberAction::Add {
                    username,
                    path,
                    role,
                },
        } => {
            let membership = admin.add_member(&username, &path, role).await?;
            json(MemberAdded::new(&username, &path, &membership))
        }
        AdminCommand::Token {
            action: TokenAction::Revoke { id },
        } => json(TokenRevoked::from(&admin.revoke_token(id).await?)),
        AdminCommand::Token {
            action: TokenAction::Create { kind },
        } => {
            let created = admin.create_token(token_spec(kind)?).await?;
            json(TokenCreated::new(&created.token, &created.secret))
        }
        AdminCommand::Settings {
            action:
                SettingsAction::Set {
                    group,
                    duplicates_allowed,
                    exception_regex,
                },
        } => {
            let set = admin
                .set_settings(&group, duplicates_allowed, exception_regex)
                .await?;
            json(SettingsSet::new(&set.group, &set.settings))
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => serve(config).await,
        Command::Admin(args) => admin(args).await,
        Command::Push(args) => push(args).await,
        Command::Pull(args) => pull(args).await,
    }
}

fn client_exit(
    result: Result<impl serde::Serialize, depot::client::ClientError>,
    verb: &str,
) -> ExitCode {
    match result {
        Ok(out) => {
            println!("{}", serde_json::to_value(out).unwrap_or_default());
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
    let file_name = args
        .file
        .rsplit('/')
        .next()
        .unwrap_or(&args.file)
        .to_string();
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(&file_name));
    let target = args.target.target(args.file.clone());
    client_exit(
        depot::client::pull(&target, auth.as_ref(), &out).await,
        "pull",
    )
}

async fn admin(args: AdminArgs) -> ExitCode {
    let store = match args.store.config() {
        Ok(store) => store,
        Err(e) => {
            eprintln!("depot admin: {e}");
            return ExitCode::FAILURE;
        }
    };
    let meta = match meta_store(&store).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "depot admin: cannot open the store ({}): {e}",
                store.describe()
            );
            return ExitCode::FAILURE;
        }
    };
    let result = run_admin(&Admin::new(meta), args.command).await;
    match result {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("depot admin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    init_logging();
    let store = match config.store.config() {
        Ok(store) => store,
        Err(e) => {
            eprintln!("depot serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let serving = Serving {
        transfers: config.transfers.clone(),
        public_url: config.public_url.clone(),
        commit_inline_max: None,
    };
    let registry = match registry(&store, &serving).await {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!(
                "depot serve: cannot open the store ({}): {e}",
                store.describe()
            );
            return ExitCode::FAILURE;
        }
    };
    let demo = match registry.admin().bootstrap_demo().await {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("depot serve: cannot create the demo data: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("depot serve: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let base = match &config.public_url {
        Some(_) => config.base_url(),
        None => format!("http://{bound}"),
    };
    print_banner(&base, &store, demo.as_ref());
    if config.purge_interval > 0 {
        tokio::spawn(purge_loop(
            registry.clone(),
            std::time::Duration::from_secs(config.purge_interval),
        ));
    }
    let app = router(registry);
    // Answers go out as soon as they are written: without TCP_NODELAY a small answer whose
    // headers and body leave in two writes waits for the client's delayed ACK (about 40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        eprintln!("depot serve: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Remove the bytes and records of deleted packages every `every`, the same purge the AWS
/// shape runs on a schedule; and the staged bytes of abandoned upload sessions (what the
/// bucket's lifecycle rule does on AWS).
async fn purge_loop(registry: Arc<depot::Registry>, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match registry.expire_uploads().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired staged uploads"),
            Err(e) => tracing::error!(error = %e, "expiring staged uploads failed"),
        }
        loop {
            match registry.purge(PURGE_BATCH).await {
                Ok(p) if p.packages + p.files == 0 => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "purge failed; retrying at the next interval");
                    break;
                }
            }
        }
    }
}

/// The `depot admin` flags that reach the same store.
fn admin_flags(store: &StoreConfig) -> String {
    match store {
        StoreConfig::Local { data_dir } => format!("--data-dir {}", data_dir.display()),
        StoreConfig::Aws { table, bucket, .. } => {
            format!("--store aws --table {table} --bucket {bucket}")
        }
    }
}

fn print_banner(base: &str, store: &StoreConfig, demo: Option<&depot::admin::Demo>) {
    println!("depot is serving {base} ({})", store.describe());
    match demo {
        Some(demo) => {
            let url = format!(
                "{base}/api/v4/projects/{}/packages/generic/my_package/0.0.1/file.txt",
                demo.project.id
            );
            println!();
            println!(
                "First start: created group \"demo\", project \"{}\" (id {}), user \"{}\" (group owner)",
                demo.project.path_with_namespace, demo.project.id, demo.user.username
            );
            println!("and a personal access token with api scope (shown only this once):");
            println!();
            println!("  {}", demo.token);
            println!();
            println!("Upload a file:");
            println!("  echo 'hello depot' > file.txt");
            println!(
                "  curl --header \"PRIVATE-TOKEN: {}\" --upload-file file.txt \"{url}\"",
                demo.token
            );
            println!("Download it:");
            println!(
                "  curl --header \"PRIVATE-TOKEN: {}\" \"{url}\"",
                demo.token
            );
        }
        None => {
            println!(
                "New token: depot admin {} token create personal --user <user> --scopes api",
                admin_flags(store)
            );
        }
    }
    println!();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
