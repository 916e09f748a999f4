//! `depot admin hooks ...` and `depot admin audit ...`: webhooks of the local store (what
//! `depot serve` delivers) and the audit log, one JSON line each.

use clap::Subcommand;
use depot::admin::{Admin, AdminError};
use depot::config::StoreConfig;
use depot::domain::{EventQuery, EventType, Timestamp};
use depot::wire::events::{AuditEventEntity, HookEntity};

#[derive(Subcommand)]
pub enum HookAction {
    /// `add <project-or-group> <url> [--token SECRET] [--events TYPE,...]`
    Add {
        path: String,
        url: String,
        /// Signs each delivery (`X-Depot-Signature: sha256=<HMAC-SHA256 of the body>`).
        #[arg(long)]
        token: Option<String>,
        /// Event types, comma-separated (default: package publishes and deletes).
        #[arg(long, default_value = "")]
        events: String,
    },
    /// `list <project-or-group>`: the hooks with their delivery logs
    List { path: String },
    /// `remove <id>`
    Remove { id: i64 },
}

#[derive(clap::Args)]
pub struct AuditArgs {
    /// A project's full path; none: every event (the instance's log).
    project: Option<String>,
    /// Only events at or after this date or time (ISO 8601).
    #[arg(long)]
    after: Option<String>,
    /// Only events at or before this date or time (ISO 8601).
    #[arg(long)]
    before: Option<String>,
    #[arg(long, default_value = "1")]
    page: usize,
    #[arg(long, default_value = "20")]
    per_page: usize,
}

fn time(text: Option<&str>) -> Result<Option<Timestamp>, AdminError> {
    let Some(text) = text else { return Ok(None) };
    Timestamp::parse_iso(text)
        .map(Some)
        .ok_or_else(|| AdminError::Invalid(format!("{text:?} is not an ISO 8601 date or time")))
}

/// `depot admin hooks ...`: only on the local store (on AWS, events go to EventBridge).
pub async fn run_hooks(
    admin: &Admin,
    store: &StoreConfig,
    action: HookAction,
) -> Result<String, AdminError> {
    let StoreConfig::Local { data_dir } = store else {
        return Err(AdminError::Invalid(
            "webhooks are delivered by `depot serve` on the local store; on AWS, attach an \
             EventBridge rule to depot's events"
                .into(),
        ));
    };
    let hooks = depot::local_hooks(data_dir).map_err(AdminError::Store)?;
    Ok(match action {
        HookAction::Add {
            path,
            url,
            token,
            events,
        } => {
            let types = events
                .split(',')
                .filter(|t| !t.is_empty())
                .map(|t| {
                    EventType::parse(t)
                        .ok_or_else(|| AdminError::Invalid(format!("unknown event type {t:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let hook = admin
                .add_hook(hooks.as_ref(), &path, &url, token, types)
                .await?;
            crate::json_line(HookEntity::of(&hook, &Default::default()))
        }
        HookAction::List { path } => {
            let found = admin.hooks_of(hooks.as_ref(), &path).await?;
            let entities: Vec<HookEntity> =
                found.iter().map(|(h, l)| HookEntity::of(h, l)).collect();
            crate::json_line(entities)
        }
        HookAction::Remove { id } => {
            hooks.delete_hook(id).await.map_err(AdminError::Store)?;
            crate::json_line(serde_json::json!({ "removed": id }))
        }
    })
}

/// `depot admin audit ...`: one JSON array of GitLab's audit event entities.
pub async fn run_audit(admin: &Admin, args: AuditArgs) -> Result<String, AdminError> {
    let query = EventQuery {
        project_id: None,
        after: time(args.after.as_deref())?,
        before: time(args.before.as_deref())?,
        kind: None,
        page: args.page.max(1),
        per_page: args.per_page.clamp(1, 100),
    };
    let (events, more) = admin.audit(args.project.as_deref(), query).await?;
    let entries: Vec<AuditEventEntity> = events
        .iter()
        .map(|e| AuditEventEntity::of(e, None))
        .collect();
    Ok(crate::json_line(
        serde_json::json!({ "events": entries, "more": more }),
    ))
}
