//! The event APIs' bodies: GitLab's audit event entity (`GET /projects/:id/audit_events`,
//! `GET /audit_events`) and project hook entity (`/projects/:id/hooks`), with depot's events
//! inside.

use crate::domain::{Event, Hook, HookLog, MembershipTarget};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// GitLab's `AuditEvent` entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEventEntity {
    /// Ordered by time: the event's milliseconds, then three digits of its id.
    pub id: i64,
    /// The user who made the change; -1 where no user did (GitLab's unauthenticated author).
    pub author_id: i64,
    pub entity_id: i64,
    /// `Project`, `Group`, or `Gitlab::Audit::InstanceScope` for the instance's own.
    pub entity_type: String,
    pub event_name: String,
    pub details: Map<String, Value>,
    pub created_at: String,
}

impl AuditEventEntity {
    /// `event` as GitLab shows an audit event (`author`: its user's username, if known).
    pub fn of(event: &Event, author: Option<&str>) -> Self {
        let user = matches!(event.actor.kind.as_str(), "user" | "job");
        let author_id = if user {
            event.actor.id.unwrap_or(-1)
        } else {
            -1
        };
        let (entity_type, entity_id, entity_path) = match (&event.project, &event.group) {
            (Some(p), _) => ("Project", p.id, p.path.clone()),
            (None, Some(g)) => ("Group", g.id, g.path.clone()),
            (None, None) => ("Gitlab::Audit::InstanceScope", 1, String::new()),
        };
        let author_name = match (author, &event.actor.name) {
            (Some(name), _) => name.to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => match event.actor.id {
                Some(id) => format!("{} {id}", event.actor.kind),
                None => event.actor.kind.clone(),
            },
        };
        let mut details = Map::new();
        details.insert("event_name".into(), json!(event.kind.as_str()));
        details.insert("author_name".into(), json!(author_name));
        details.insert(
            "author_class".into(),
            json!(author_class(&event.actor.kind)),
        );
        details.insert("custom_message".into(), json!(message(event)));
        if let Some(address) = &event.actor.address {
            details.insert("ip_address".into(), json!(address));
        }
        details.insert("entity_path".into(), json!(entity_path));
        details.insert("event_id".into(), json!(event.id));
        if let Some(id) = &event.request_id {
            details.insert("request_id".into(), json!(id));
        }
        if let Some(package) = &event.package {
            details.insert("target_type".into(), json!("Packages::Package"));
            details.insert("target_id".into(), json!(package.id));
            let target = format!("{}/{}", package.name, package.version);
            details.insert("target_details".into(), json!(target));
        }
        if let Some(file) = &event.file {
            details.insert("file_id".into(), json!(file.id));
            details.insert("file_name".into(), json!(file.name));
            details.insert("file_size".into(), json!(file.size));
            details.insert("file_sha256".into(), json!(file.sha256));
        }
        if let Value::Object(more) = &event.detail {
            for (k, v) in more {
                details.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        Self {
            id: event.time.millis() * 1000 + id_digits(&event.id),
            author_id,
            entity_id,
            entity_type: entity_type.into(),
            event_name: event.kind.as_str().into(),
            details,
            created_at: event.time.to_iso8601(),
        }
    }
}

fn author_class(kind: &str) -> &'static str {
    match kind {
        "user" | "job" => "User",
        "deploy_token" => "DeployToken",
        "system" => "Gitlab::Audit::NullAuthor",
        "anonymous" => "Gitlab::Audit::UnauthenticatedAuthor",
        _ => "Gitlab::Audit::CiRunnerTokenAuthor",
    }
}

/// Three decimal digits from an event id's first hex digits (0..1000).
fn id_digits(id: &str) -> i64 {
    let hex: String = id.chars().filter(char::is_ascii_hexdigit).take(3).collect();
    i64::from_str_radix(&hex, 16).unwrap_or(0) % 1000
}

/// What happened, in words.
fn message(event: &Event) -> String {
    let package = event
        .package
        .as_ref()
        .map(|p| format!("{} {}", p.name, p.version))
        .unwrap_or_default();
    let file = event
        .file
        .as_ref()
        .map(|f| f.name.clone())
        .unwrap_or_default();
    use crate::domain::EventType as T;
    match event.kind {
        T::PackagePublished => format!("Published package {package} with {file}"),
        T::FilePublished => format!("Published {file} to package {package}"),
        T::FileDeleted => format!("Deleted {file} of package {package}"),
        T::PackageDeleted => format!("Deleted package {package}"),
        other => other.as_str().replace(['.', '_'], " "),
    }
}

/// GitLab's `ProjectHook` entity, with depot's event types and the hook's delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookEntity {
    pub id: i64,
    pub url: String,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_path: Option<String>,
    pub created_at: String,
    pub enable_ssl_verification: bool,
    /// GitLab's: `executable` (depot never disables a hook; it gives up on deliveries).
    pub alert_status: String,
    /// The events it takes (depot's).
    pub event_types: Vec<String>,
    /// GitLab's flag for package events (what depot sends by default).
    pub package_events: bool,
    /// What became of its deliveries (depot's).
    pub deliveries: DeliveryLogEntity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryLogEntity {
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

impl HookEntity {
    pub fn of(hook: &Hook, log: &HookLog) -> Self {
        let (project_id, group_path) = match &hook.target {
            MembershipTarget::Project(id) => (Some(*id), None),
            MembershipTarget::Group(path) => (None, Some(path.clone())),
        };
        Self {
            id: hook.id,
            url: hook.url.clone(),
            name: hook.name.clone(),
            description: hook.description.clone(),
            project_id,
            group_path,
            created_at: hook.created_at.to_iso8601(),
            enable_ssl_verification: hook.enable_ssl_verification,
            alert_status: "executable".into(),
            event_types: hook
                .event_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            package_events: hook.event_types.iter().any(|t| t.is_package_event()),
            deliveries: DeliveryLogEntity {
                last_status: log.last_status,
                last_error: log.last_error.clone(),
                last_attempt_at: log.last_at.map(|t| t.to_iso8601()),
                pending: log.pending,
                delivered: log.delivered,
                failed: log.failed,
            },
        }
    }
}
