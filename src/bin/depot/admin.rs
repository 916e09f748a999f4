//! `depot admin`: provisioning on either store (the one `depot serve` uses), one JSON line
//! printed per command.

use clap::Subcommand;
use depot::admin::{Admin, AdminError, DeployTarget, TokenSpec, TrustSpec};
use depot::config::StoreArgs;
use depot::domain::{ClaimCondition, Role, Scope, Timestamp};
use depot::meta_store;
use depot::wire::admin::{
    GroupCreated, MemberAdded, ProjectCreated, SettingsSet, TokenCreated, TokenRevoked, UserCreated,
};
use depot::wire::people::TrustRuleEntity;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct AdminArgs {
    /// The store to provision (the one `depot serve` uses): `--data-dir DIR`, or
    /// `--store aws --table T --bucket B` with the operator's AWS credentials.
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// `init`: make the store where it is missing (AWS: the table with its indexes and TTL, and
    /// the bucket; local: the data directory and database)
    Init,
    /// `bootstrap <username>`: an administrator and a personal `api` token for them, printed
    /// once; with it, everything else is done over HTTP (GitLab's users, groups, projects,
    /// members and token APIs)
    Bootstrap {
        username: String,
        /// Last day of validity (the token expires at the start of that day, UTC).
        #[arg(long, value_parser = parse_date)]
        expires_at: Option<Timestamp>,
    },
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
    /// `trust add <path> --issuer URL --audience AUD [--claim NAME=PATTERN]...`, `trust list
    /// <path>`, `trust remove <id>`: which CI jobs' OIDC ID tokens may act on a project or group
    Trust {
        #[command(subcommand)]
        action: TrustAction,
    },
    /// `downloads <project>`: the project's packages (newest 100) with the downloads counted
    /// of each and of each file, one JSON line
    Downloads { project: String },
    /// `cleanup <project> [--dry-run]`: what the project's cleanup policy takes now (and take
    /// it, unless a dry run), one JSON line
    Cleanup {
        project: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// `hooks add <path> <url> [--token SECRET] [--events TYPE,...]`, `hooks list <path>`,
    /// `hooks remove <id>`: webhooks of a project or group, delivered by `depot serve`
    Hooks {
        #[command(subcommand)]
        action: crate::admin_events::HookAction,
    },
    /// `audit [<project>] [--after T] [--before T] [--page N]`: the audit log, newest first
    Audit(crate::admin_events::AuditArgs),
}

#[derive(Subcommand)]
enum TrustAction {
    Add {
        /// Full path of a project, or of a group (the rule covers every project under it).
        path: String,
        /// The tokens' `iss`, exactly (`https://gitlab.example.com`,
        /// `https://token.actions.githubusercontent.com`).
        #[arg(long)]
        issuer: String,
        /// The `aud` the tokens must carry (`id_tokens: ... aud:` in `.gitlab-ci.yml`).
        #[arg(long)]
        audience: String,
        /// A claim condition, `name=pattern` (exact, or a glob with `*` and `?`); repeat for
        /// more, all must hold: `--claim project_path=grp/app --claim ref=refs/tags/v*`.
        #[arg(long = "claim", value_parser = ClaimCondition::parse)]
        claims: Vec<ClaimCondition>,
        /// The role a token it accepts acts with: guest | reporter | developer | maintainer
        #[arg(long, default_value = "developer")]
        role: Role,
        /// api and/or read_api, comma-separated.
        #[arg(long, default_value = "api")]
        scopes: String,
    },
    List {
        path: String,
    },
    Remove {
        id: i64,
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
    Create {
        username: String,
        /// An administrator: may create users, groups and projects over HTTP, and manage
        /// everyone's tokens and members.
        #[arg(long)]
        admin: bool,
    },
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
    let secs: i64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: use s, m, h or d")),
    };
    let too_long = || format!("{s:?} is longer than a job token may live ({MAX_JOB_TTL_DAYS}d)");
    let n: i64 = match n.parse() {
        Ok(n) => n,
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => return Err(too_long()),
        Err(_) => return Err(format!("{s:?} is not a duration")),
    };
    match n.checked_mul(secs) {
        Some(0) => Err(format!("{s:?}: a job token must live at least a second")),
        Some(ttl) if ttl <= MAX_JOB_TTL_DAYS * 86400 => Ok(ttl),
        _ => Err(too_long()),
    }
}

/// The longest a job token may be made to live: a CI job's token is short-lived by nature,
/// and a bound keeps its expiry a real date.
const MAX_JOB_TTL_DAYS: i64 = 366;

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
async fn run_admin(
    admin: &Admin,
    store: &depot::config::StoreConfig,
    command: AdminCommand,
) -> Result<String, AdminError> {
    Ok(match command {
        AdminCommand::Hooks { action } => {
            crate::admin_events::run_hooks(admin, store, action).await?
        }
        AdminCommand::Audit(args) => crate::admin_events::run_audit(admin, args).await?,
        AdminCommand::Init => unreachable!("init opens no registry: see `admin`"),
        AdminCommand::Group {
            action: GroupAction::Create { path },
        } => crate::json_line(GroupCreated::from(&admin.create_group(&path).await?)),
        AdminCommand::Project {
            action: ProjectAction::Create { path, public },
        } => crate::json_line(ProjectCreated::from(
            &admin.create_project(&path, public).await?,
        )),
        AdminCommand::User {
            action:
                UserAction::Create {
                    username,
                    admin: is_admin,
                },
        } => crate::json_line(UserCreated::from(
            &admin.create_user_as(&username, is_admin).await?,
        )),
        AdminCommand::Trust { action } => run_trust(admin, action).await?,
        AdminCommand::Cleanup { project, dry_run } => {
            let (plan, done) = admin.cleanup(&project, dry_run).await?;
            let preview = depot::api::cleanup_preview(&plan);
            crate::json_line(serde_json::json!({
                "dry_run": dry_run,
                "plan": preview,
                "deleted": done.map(|d| serde_json::json!({"packages": d.packages, "package_files": d.files})),
            }))
        }
        AdminCommand::Downloads { project } => {
            let counted: Vec<serde_json::Value> = admin
                .downloads(&project)
                .await?
                .iter()
                .map(|(package, files)| {
                    serde_json::json!({
                        "id": package.id,
                        "name": package.name.as_str(),
                        "version": package.version.as_str(),
                        "download_count": package.download_count,
                        "last_downloaded_at": package.last_downloaded_at,
                        "files": files.iter().map(|f| serde_json::json!({
                            "id": f.id,
                            "file_name": f.file_name.display(),
                            "download_count": f.download_count,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            crate::json_line(counted)
        }
        AdminCommand::Bootstrap {
            username,
            expires_at,
        } => {
            let (user, created) = admin.bootstrap(&username, expires_at).await?;
            crate::json_line(serde_json::json!({
                "user": UserCreated::from(&user),
                "token": TokenCreated::new(&created.token, &created.secret),
            }))
        }
        AdminCommand::Member {
            action:
                MemberAction::Add {
                    username,
                    path,
                    role,
                },
        } => {
            let membership = admin.add_member(&username, &path, role).await?;
            crate::json_line(MemberAdded::new(&username, &path, &membership))
        }
        AdminCommand::Token {
            action: TokenAction::Revoke { id },
        } => crate::json_line(TokenRevoked::from(&admin.revoke_token(id).await?)),
        AdminCommand::Token {
            action: TokenAction::Create { kind },
        } => {
            let created = admin.create_token(token_spec(kind)?).await?;
            crate::json_line(TokenCreated::new(&created.token, &created.secret))
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
            crate::json_line(SettingsSet::new(&set.group, &set.settings))
        }
    })
}

/// `depot admin trust ...`: the rule made or removed, or the rules of a path (one JSON array).
async fn run_trust(admin: &Admin, action: TrustAction) -> Result<String, AdminError> {
    Ok(match action {
        TrustAction::Add {
            path,
            issuer,
            audience,
            claims,
            role,
            scopes: list,
        } => {
            let spec = TrustSpec {
                path,
                issuer,
                audience,
                conditions: claims,
                role,
                scopes: Scope::parse_list(&list).map_err(AdminError::Invalid)?,
            };
            crate::json_line(TrustRuleEntity::from(&admin.add_trust_rule(spec).await?))
        }
        TrustAction::List { path } => {
            let rules = admin.trust_rules(&path).await?;
            crate::json_line(rules.iter().map(TrustRuleEntity::from).collect::<Vec<_>>())
        }
        TrustAction::Remove { id } => {
            crate::json_line(TrustRuleEntity::from(&admin.remove_trust_rule(id).await?))
        }
    })
}

/// `depot admin init`: one JSON line saying what was there and what was made.
async fn init(store: &depot::config::StoreConfig) -> ExitCode {
    match depot::provision_store(store).await {
        Ok(Some(made)) => println!("{}", crate::json_line(made)),
        Ok(None) => println!(
            "{}",
            crate::json_line(serde_json::json!({"store": store.describe()}))
        ),
        Err(e) => {
            eprintln!(
                "depot admin: cannot make the store ({}): {e}",
                store.describe()
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

pub async fn admin(args: AdminArgs) -> ExitCode {
    let store = match args.store.config() {
        Ok(store) => store,
        Err(e) => {
            eprintln!("depot admin: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let AdminCommand::Init = args.command {
        return init(&store).await;
    }
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
    let result = run_admin(&Admin::new(meta), &store, args.command).await;
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

#[cfg(test)]
mod tests {
    use super::parse_ttl;

    #[test]
    fn job_token_lifetimes_are_bounded() {
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("30m"), Ok(1800));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("366d"), Ok(366 * 86400));
        for too_long in [
            "367d",
            "99999999999d",
            "999999999999999999d",
            "99999999999999999999s",
        ] {
            let e = parse_ttl(too_long).unwrap_err();
            assert!(
                e.contains("longer than a job token may live"),
                "{too_long}: {e}"
            );
        }
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("1w").unwrap_err().contains("use s, m, h or d"));
        assert!(parse_ttl("soon").is_err());
    }
}
