//! Events: what changed, who changed it, when and from where. One is written with every write
//! it describes (the outbox: the same SQLite transaction, or an attribute of the DynamoDB item
//! that makes the change, read back from the table's stream), then delivered (webhooks,
//! EventBridge) and kept for reading as the audit log. Its JSON is the published schema
//! (`infra/event.schema.json`); it never carries a secret.

use super::{Package, PackageFile, Project, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A new package, with its first file.
    #[serde(rename = "package.published")]
    PackagePublished,
    /// A file added to a package that was there.
    #[serde(rename = "package_file.published")]
    FilePublished,
    #[serde(rename = "package_file.deleted")]
    FileDeleted,
    #[serde(rename = "package.deleted")]
    PackageDeleted,
    /// A group's package settings.
    #[serde(rename = "settings.changed")]
    SettingsChanged,
    /// A project's cleanup policy.
    #[serde(rename = "cleanup_policy.changed")]
    CleanupPolicyChanged,
    #[serde(rename = "protection_rule.created")]
    ProtectionRuleCreated,
    #[serde(rename = "protection_rule.updated")]
    ProtectionRuleUpdated,
    #[serde(rename = "protection_rule.deleted")]
    ProtectionRuleDeleted,
    #[serde(rename = "token.created")]
    TokenCreated,
    #[serde(rename = "token.rotated")]
    TokenRotated,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    /// A membership added, or its role changed.
    #[serde(rename = "member.updated")]
    MemberUpdated,
    #[serde(rename = "member.removed")]
    MemberRemoved,
    #[serde(rename = "trust_rule.created")]
    TrustRuleCreated,
    #[serde(rename = "trust_rule.deleted")]
    TrustRuleDeleted,
    #[serde(rename = "group.created")]
    GroupCreated,
    #[serde(rename = "project.created")]
    ProjectCreated,
    #[serde(rename = "user.created")]
    UserCreated,
}

impl EventType {
    pub const ALL: [EventType; 19] = [
        Self::PackagePublished,
        Self::FilePublished,
        Self::FileDeleted,
        Self::PackageDeleted,
        Self::SettingsChanged,
        Self::CleanupPolicyChanged,
        Self::ProtectionRuleCreated,
        Self::ProtectionRuleUpdated,
        Self::ProtectionRuleDeleted,
        Self::TokenCreated,
        Self::TokenRotated,
        Self::TokenRevoked,
        Self::MemberUpdated,
        Self::MemberRemoved,
        Self::TrustRuleCreated,
        Self::TrustRuleDeleted,
        Self::GroupCreated,
        Self::ProjectCreated,
        Self::UserCreated,
    ];

    /// The name on the wire (`type`, EventBridge's `detail-type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PackagePublished => "package.published",
            Self::FilePublished => "package_file.published",
            Self::FileDeleted => "package_file.deleted",
            Self::PackageDeleted => "package.deleted",
            Self::SettingsChanged => "settings.changed",
            Self::CleanupPolicyChanged => "cleanup_policy.changed",
            Self::ProtectionRuleCreated => "protection_rule.created",
            Self::ProtectionRuleUpdated => "protection_rule.updated",
            Self::ProtectionRuleDeleted => "protection_rule.deleted",
            Self::TokenCreated => "token.created",
            Self::TokenRotated => "token.rotated",
            Self::TokenRevoked => "token.revoked",
            Self::MemberUpdated => "member.updated",
            Self::MemberRemoved => "member.removed",
            Self::TrustRuleCreated => "trust_rule.created",
            Self::TrustRuleDeleted => "trust_rule.deleted",
            Self::GroupCreated => "group.created",
            Self::ProjectCreated => "project.created",
            Self::UserCreated => "user.created",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// What a hook takes unless it chooses: the package events.
    pub fn package_events() -> Vec<Self> {
        Self::ALL
            .into_iter()
            .filter(|t| t.is_package_event())
            .collect()
    }

    /// Publishes and deletes of packages and files.
    pub fn is_package_event(self) -> bool {
        matches!(
            self,
            Self::PackagePublished | Self::FilePublished | Self::FileDeleted | Self::PackageDeleted
        )
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `user`, `job` (a user's CI job token), `deploy_token`, `oidc` (trusted publishing),
    /// `gitlab_job` (a GitLab job token its GitLab confirmed), `system` (depot itself: cleanup
    /// policies, `depot admin`) or `anonymous`.
    pub kind: String,
    /// The user's id, or the deploy token's; `None` where there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// What else names it: the OIDC issuer and subject, the GitLab job and project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The client's address, where the request had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            kind: "system".into(),
            id: None,
            name: None,
            address: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPlace {
    pub id: i64,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPackage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFile {
    pub id: i64,
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// One change, as written, delivered and kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique (random, UUID-shaped): receivers drop repeats by it.
    pub id: String,
    pub time: Timestamp,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<EventPlace>,
    /// The group changed (its settings, members, deploy tokens, trust rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<EventPlace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<EventPackage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<EventFile>,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What else the change was (a setting's new values, a token's name and scopes), never a
    /// secret.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

impl Event {
    /// A new event of `kind` now, by `actor`, with nothing else said yet.
    pub fn new(kind: EventType, actor: Actor, time: Timestamp) -> Self {
        Self {
            id: new_event_id(),
            time,
            kind,
            project: None,
            group: None,
            package: None,
            file: None,
            actor,
            request_id: None,
            detail: Value::Null,
        }
    }

    pub fn in_project(mut self, project: &Project) -> Self {
        self.project = Some(EventPlace {
            id: project.id,
            path: project.path_with_namespace.clone(),
        });
        self
    }

    pub fn in_group(mut self, id: i64, path: &str) -> Self {
        self.group = Some(EventPlace {
            id,
            path: path.to_string(),
        });
        self
    }

    pub fn of_package(mut self, package: &Package) -> Self {
        self.package = Some(EventPackage {
            id: Some(package.id),
            name: package.name.as_str().to_string(),
            version: package.version.as_str().to_string(),
        });
        self
    }

    pub fn of_file(mut self, file: &PackageFile) -> Self {
        self.file = Some(EventFile {
            id: file.id,
            name: file.file_name.as_str().to_string(),
            size: file.size,
            sha256: file.sha256.clone(),
        });
        self
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn with_request(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// A field of `detail` set (an id the store gave, say).
    pub fn with_detail_field(mut self, key: &str, value: impl Into<Value>) -> Self {
        if !self.detail.is_object() {
            self.detail = Value::Object(Default::default());
        }
        if let Value::Object(map) = &mut self.detail {
            map.insert(key.to_string(), value.into());
        }
        self
    }

    /// The publish of `file` into `package`, as the store found it: a new package or a file
    /// added to one (`draft` says who and when).
    pub fn published(
        draft: &EventDraft,
        created: bool,
        package: &Package,
        file: &PackageFile,
    ) -> Self {
        let kind = if created {
            EventType::PackagePublished
        } else {
            EventType::FilePublished
        };
        Event {
            id: draft.id.clone(),
            time: draft.time,
            kind,
            project: draft.project.clone(),
            group: None,
            package: None,
            file: None,
            actor: draft.actor.clone(),
            request_id: draft.request_id.clone(),
            detail: Value::Null,
        }
        .of_package(package)
        .of_file(file)
    }

    /// The key that orders deliveries: events of one package go out in order.
    pub fn order_key(&self) -> String {
        match (&self.project, &self.package) {
            (Some(p), Some(pkg)) => format!("{}/{}/{}", p.id, pkg.name, pkg.version),
            (Some(p), None) => format!("{}", p.id),
            (None, _) => self
                .group
                .as_ref()
                .map_or(String::new(), |g| g.path.clone()),
        }
    }

    /// Does the event concern `path` (a project's full path, or a group's, which holds every
    /// project and group below it)?
    pub fn concerns(&self, path: &str) -> bool {
        let under = |p: &str| p == path || p.starts_with(&format!("{path}/"));
        self.project.as_ref().is_some_and(|p| under(&p.path))
            || self.group.as_ref().is_some_and(|g| under(&g.path))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event serializes")
    }

    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// A publish's event before the store knows whether it makes a package: who, when, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    pub id: String,
    pub time: Timestamp,
    pub actor: Actor,
    pub project: Option<EventPlace>,
    pub request_id: Option<String>,
}

impl EventDraft {
    pub fn new(actor: Actor, project: &Project, time: Timestamp) -> Self {
        Self {
            id: new_event_id(),
            time,
            actor,
            project: Some(EventPlace {
                id: project.id,
                path: project.path_with_namespace.clone(),
            }),
            request_id: None,
        }
    }
}

impl EventDraft {
    /// A publish by depot itself (tools and tests), in no project the event names.
    pub fn system(time: Timestamp) -> Self {
        Self {
            id: new_event_id(),
            time,
            actor: Actor::system(),
            project: None,
            request_id: None,
        }
    }
}

/// 122 random bits in a UUID's shape (version 4).
pub fn new_event_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Which events a query of the audit log wants, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// One project's (and what happened to it); `None`: every event.
    pub project_id: Option<i64>,
    pub after: Option<Timestamp>,
    pub before: Option<Timestamp>,
    pub kind: Option<EventType>,
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
}

impl EventQuery {
    pub fn matches(&self, event: &Event) -> bool {
        self.project_id
            .is_none_or(|id| event.project.as_ref().is_some_and(|p| p.id == id))
            && self.after.is_none_or(|t| event.time >= t)
            && self.before.is_none_or(|t| event.time <= t)
            && self.kind.is_none_or(|k| event.kind == k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip_and_match_serde() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
    }

    #[test]
    fn ids_are_uuid_shaped_and_differ() {
        let (a, b) = (new_event_id(), new_event_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn an_event_concerns_its_project_and_the_groups_above() {
        let mut e = Event::new(EventType::PackageDeleted, Actor::system(), Timestamp::now());
        e.project = Some(EventPlace {
            id: 1,
            path: "acme/tools/app".into(),
        });
        assert!(e.concerns("acme/tools/app"));
        assert!(e.concerns("acme"));
        assert!(e.concerns("acme/tools"));
        assert!(!e.concerns("acm"));
        assert!(!e.concerns("acme/tools/app2"));
        let back = Event::from_json(&e.to_json()).unwrap();
        assert_eq!(back, e);
    }
}
