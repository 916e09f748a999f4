//! Events and `depot admin`: the events of its changes (depot itself their actor, `system`
//! named `depot admin`, at the project or group the command names), webhooks, and reading
//! the audit log.

use super::{Admin, AdminError, Result};
use crate::domain::{Event, EventQuery, EventType, Hook, HookLog, Timestamp};
use crate::registry::system_event;
use crate::store::HookStore;

/// An event of `depot admin` (no place yet).
pub(super) fn admin_event(kind: EventType) -> Event {
    let mut event = system_event(kind);
    event.actor.name = Some("depot admin".into());
    event
}

impl Admin {
    /// An event of `depot admin` at `path`, a project or a group.
    pub(super) async fn event_at(&self, kind: EventType, path: &str) -> Result<Event> {
        let event = admin_event(kind);
        if let Some(project) = self.find_project(path).await? {
            return Ok(event.in_project(&project));
        }
        Ok(match self.find_group(path).await? {
            Some(group) => event.in_group(group.id, &group.path),
            None => event,
        })
    }
}

impl Admin {
    /// `depot admin hooks add`: a webhook of the project or group at `path`.
    pub async fn add_hook(
        &self,
        hooks: &dyn HookStore,
        path: &str,
        url: &str,
        secret: Option<String>,
        event_types: Vec<EventType>,
    ) -> Result<Hook> {
        let url =
            Hook::checked_url(url).map_err(|why| AdminError::Invalid(format!("url {why}")))?;
        let event_types = if event_types.is_empty() {
            EventType::package_events()
        } else {
            event_types
        };
        let hook = Hook {
            id: 0,
            target: self.target(path).await?,
            url,
            secret,
            name: None,
            description: None,
            event_types,
            enable_ssl_verification: true,
            created_at: Timestamp::now(),
        };
        hooks.create_hook(hook).await.map_err(AdminError::Store)
    }

    /// `depot admin hooks list`: the hooks of `path`, each with its delivery log.
    pub async fn hooks_of(
        &self,
        hooks: &dyn HookStore,
        path: &str,
    ) -> Result<Vec<(Hook, HookLog)>> {
        let target = self.target(path).await?;
        let mut found = Vec::new();
        for hook in hooks.hooks_of(&target).await.map_err(AdminError::Store)? {
            let log = hooks.hook_log(hook.id).await.map_err(AdminError::Store)?;
            found.push((hook, log));
        }
        Ok(found)
    }

    /// `depot admin audit`: a page of the audit log (a project's, with `path`), newest first.
    pub async fn audit(&self, path: Option<&str>, query: EventQuery) -> Result<(Vec<Event>, bool)> {
        let project_id = match path {
            Some(path) => Some(self.project(path).await?.id),
            None => None,
        };
        let query = EventQuery {
            project_id,
            ..query
        };
        self.meta.events(&query).await.map_err(AdminError::Store)
    }
}
