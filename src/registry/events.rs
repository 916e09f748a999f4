//! Events of the use cases: who made a change (the principal as an [`Actor`], with the
//! request's address and id), the audit log's query, and webhooks (`depot serve`).

use super::{Error, Missing, Place, ProjectAccess, Registry};
use crate::auth::{Principal, Source};
use crate::domain::{
    Actor, Event, EventDraft, EventQuery, EventType, Hook, HookLog, MembershipTarget, Project,
    Timestamp,
};
use crate::telemetry::current_request;

/// Who `principal` is, as an event names it (never a secret), from the address of the request
/// being served, if any.
pub fn actor_of(principal: &Principal) -> Actor {
    let (kind, id, name) = match principal {
        Principal::Anonymous => ("anonymous", None, None),
        Principal::User {
            user_id,
            job_project: None,
            ..
        } => ("user", Some(*user_id), None),
        Principal::User { user_id, .. } => ("job", Some(*user_id), None),
        Principal::Deploy { token_id, .. } => ("deploy_token", Some(*token_id), None),
        Principal::Federated(f) => match &f.source {
            Source::Oidc {
                issuer, subject, ..
            } => ("oidc", None, Some(format!("{issuer} {subject}"))),
            Source::GitlabJob {
                job_id,
                gitlab_project,
                ..
            } => (
                "gitlab_job",
                Some(*job_id),
                Some(format!("job {job_id} of project {gitlab_project}")),
            ),
        },
    };
    Actor {
        kind: kind.into(),
        id,
        name,
        address: current_request().and_then(|r| r.address),
    }
}

/// A new event of `kind` by `principal`, now.
pub fn event(kind: EventType, principal: &Principal) -> Event {
    Event::new(kind, actor_of(principal), Timestamp::now())
        .with_request(current_request().map(|r| r.id))
}

/// A new event of `kind` in `project` by `principal`, now.
pub fn project_event(kind: EventType, principal: &Principal, project: &Project) -> Event {
    event(kind, principal).in_project(project)
}

/// An event by depot itself (cleanup policies, `depot admin`).
pub fn system_event(kind: EventType) -> Event {
    Event::new(kind, Actor::system(), Timestamp::now())
}

/// A publish's event, before the store knows whether it makes a package.
pub fn publish_draft(principal: &Principal, project: &Project, now: Timestamp) -> EventDraft {
    let mut draft = EventDraft::new(actor_of(principal), project, now);
    draft.request_id = current_request().map(|r| r.id);
    draft
}

/// An event as the audit log shows it: with its author's username, where a user made it.
#[derive(Debug, Clone)]
pub struct Audited {
    pub event: Event,
    pub author: Option<String>,
}

/// The most entries one page of the audit log holds.
pub const AUDIT_MAX_PER_PAGE: usize = 100;

/// A hook about to be made.
#[derive(Debug, Clone, Default)]
pub struct HookRequest {
    pub url: String,
    pub token: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// `None`: the package events.
    pub event_types: Option<Vec<EventType>>,
    pub enable_ssl_verification: Option<bool>,
}

impl Registry {
    /// `GET /projects/:id/audit_events`: a project's events (its Maintainers, and admins).
    pub async fn project_audit_events(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
        query: EventQuery,
    ) -> Result<(Vec<Audited>, bool), Error> {
        Self::manages_rules(principal, access)?;
        let query = EventQuery {
            project_id: Some(access.project.id),
            ..query
        };
        self.audited(&query).await
    }

    /// `GET /audit_events`: every event (admins).
    pub async fn instance_audit_events(
        &self,
        principal: &Principal,
        query: EventQuery,
    ) -> Result<(Vec<Audited>, bool), Error> {
        self.administrator(principal).await?;
        self.audited(&query).await
    }

    /// A page of events, each with its author's username where a user made it.
    async fn audited(&self, query: &EventQuery) -> Result<(Vec<Audited>, bool), Error> {
        let (events, more) = self.meta.events(query).await?;
        let mut names = std::collections::HashMap::new();
        let mut page = Vec::with_capacity(events.len());
        for event in events {
            let user = match event.actor.kind.as_str() {
                "user" | "job" => event.actor.id,
                _ => None,
            };
            let author = match user {
                Some(id) if !names.contains_key(&id) => {
                    let name = self.meta.user_by_id(id).await?.map(|u| u.username);
                    names.insert(id, name.clone());
                    name
                }
                Some(id) => names[&id].clone(),
                None => None,
            };
            page.push(Audited { event, author });
        }
        Ok((page, more))
    }

    fn hook_store(&self) -> Result<&dyn crate::store::HookStore, Error> {
        self.hooks.as_deref().ok_or(Error::NotFound(Missing::Hooks))
    }

    /// `GET .../hooks` of a project (its Maintainers) or group (its Owners), each with its
    /// delivery log.
    pub async fn hooks(
        &self,
        principal: &Principal,
        place: &Place,
    ) -> Result<Vec<(Hook, HookLog)>, Error> {
        self.manager(principal, place).await?;
        let store = self.hook_store()?;
        let mut hooks = Vec::new();
        for hook in store.hooks_of(&place.target()).await? {
            let log = store.hook_log(hook.id).await?;
            hooks.push((hook, log));
        }
        Ok(hooks)
    }

    /// `POST .../hooks`.
    pub async fn create_hook(
        &self,
        principal: &Principal,
        place: &Place,
        request: HookRequest,
    ) -> Result<Hook, Error> {
        self.manager(principal, place).await?;
        self.save_hook(place.target(), request).await
    }

    /// Save a hook of `target` (`depot admin hooks add` too: the caller checked who may).
    pub async fn save_hook(
        &self,
        target: MembershipTarget,
        request: HookRequest,
    ) -> Result<Hook, Error> {
        let url = Hook::checked_url(&request.url).map_err(|message| Error::Validation {
            field: "url",
            message,
        })?;
        let hook = Hook {
            id: 0,
            target,
            url,
            secret: request.token.filter(|t| !t.is_empty()),
            name: request.name,
            description: request.description,
            event_types: request
                .event_types
                .unwrap_or_else(EventType::package_events),
            enable_ssl_verification: request.enable_ssl_verification.unwrap_or(true),
            created_at: Timestamp::now(),
        };
        Ok(self.hook_store()?.create_hook(hook).await?)
    }

    /// `GET .../hooks/:hook_id`: the hook and its delivery log.
    pub async fn hook(
        &self,
        principal: &Principal,
        place: &Place,
        id: i64,
    ) -> Result<(Hook, HookLog), Error> {
        self.manager(principal, place).await?;
        let store = self.hook_store()?;
        let hook = store
            .hook(id)
            .await?
            .filter(|h| h.target == place.target())
            .ok_or(Error::NotFound(Missing::Hook))?;
        let log = store.hook_log(id).await?;
        Ok((hook, log))
    }

    /// `DELETE .../hooks/:hook_id`.
    pub async fn delete_hook(
        &self,
        principal: &Principal,
        place: &Place,
        id: i64,
    ) -> Result<(), Error> {
        let (hook, _) = self.hook(principal, place, id).await?;
        Ok(self.hook_store()?.delete_hook(hook.id).await?)
    }
}

/// A new event of `kind` at `place` (a project or a group) by `principal`, now.
pub fn place_event(kind: EventType, principal: &Principal, place: &super::Place) -> Event {
    let event = event(kind, principal);
    match place {
        super::Place::Project(p) => event.in_project(p),
        super::Place::Group(g) => event.in_group(g.id, &g.path),
    }
}

/// A token as an event's `detail` tells it (never its secret or hash).
pub fn token_detail(token: &crate::domain::NewToken) -> serde_json::Value {
    serde_json::json!({
        "token_name": token.name,
        "token_kind": token.grant.kind().as_str(),
        "scopes": token.grant.scopes().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "expires_at": token.expires_at.map(|t| t.to_date()),
    })
}

/// `event` as a change of `group`'s package settings to `settings` (by whoever `event` names).
pub fn settings_event(
    event: Event,
    group: &crate::domain::Group,
    settings: &crate::domain::GroupSettings,
) -> Event {
    event
        .in_group(group.id, &group.path)
        .with_detail(serde_json::json!({
            "generic_duplicates_allowed": settings.generic_duplicates_allowed,
            "generic_duplicate_exception_regex": settings.generic_duplicate_exception_regex,
        }))
}
