//! The events of `depot admin`'s changes: depot itself is their actor (`system`, named
//! `depot admin`), at the project or group the command names.

use super::{Admin, Result};
use crate::domain::{Event, EventType};
use crate::registry::system_event;

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
