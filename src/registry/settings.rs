//! Use cases of a group's package settings (GitLab's namespace package settings):
//! who may read and change them, and the change itself with GitLab's validation.

use super::events::{event, settings_event};
use super::{Error, Missing, Registry};
use crate::auth::{Action, Principal};
use crate::domain::{EventType, Group, GroupRef, GroupSettings, RegexRefused, Role};

/// A group as a settings request sees it.
pub struct SettingsView {
    pub group: Group,
    /// The settings, when the caller may administer the group's packages (group Owner).
    pub settings: Option<GroupSettings>,
}

/// Why a settings change was not made.
#[derive(Debug)]
pub enum SettingsRefused {
    /// The group does not exist or the caller may not change its settings (GitLab does not
    /// tell these apart).
    NotAllowed,
    /// The exception regex does not compile; GitLab's message (`<value> is an invalid
    /// regexp: <reason>`).
    InvalidRegex(String),
    /// The exception regex is longer than GitLab allows.
    TooLong,
}

impl Registry {
    /// Is `principal` an Owner of `group` (directly or through a group above it)? Job and
    /// deploy tokens never are, and changing settings needs the `api` scope.
    async fn owns(
        &self,
        principal: &Principal,
        group: &Group,
        action: Action,
    ) -> Result<bool, Error> {
        let Some(user_id) = principal.personal_user() else {
            return Ok(false);
        };
        if principal.check_scope(action).is_err() {
            return Ok(false);
        }
        let memberships = self.identities.memberships_of(user_id).await?;
        Ok(memberships
            .iter()
            .filter(|m| m.target.covers_group(&group.path))
            .any(|m| m.role == Role::Owner))
    }

    /// `group(fullPath:)`: `None` when the caller cannot see the group.
    pub async fn group_settings_view(
        &self,
        principal: &Principal,
        full_path: &str,
    ) -> Result<Option<SettingsView>, Error> {
        let group = match self
            .visible_group(principal, &GroupRef::Path(full_path.to_string()))
            .await
        {
            Ok(group) => group,
            Err(Error::NotFound(Missing::Group)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let settings = if self.owns(principal, &group, Action::Read).await? {
            Some(self.settings_of(group.id).await?)
        } else {
            None
        };
        Ok(Some(SettingsView { group, settings }))
    }

    /// `updateNamespacePackageSettings`: group Owners only. An invalid regex changes nothing.
    pub async fn update_group_settings(
        &self,
        principal: &Principal,
        full_path: &str,
        duplicates_allowed: Option<bool>,
        exception_regex: Option<String>,
    ) -> Result<Result<GroupSettings, SettingsRefused>, Error> {
        let Some(group) = self.meta.group_by_path(full_path).await? else {
            return Ok(Err(SettingsRefused::NotAllowed));
        };
        if !self.owns(principal, &group, Action::Write).await? {
            return Ok(Err(SettingsRefused::NotAllowed));
        }
        // Read past the cache: the change is made to what is stored now.
        let current = self
            .meta
            .group_settings(group.id)
            .await?
            .unwrap_or_default();
        let settings = match current.changed(duplicates_allowed, exception_regex.as_deref()) {
            Ok(settings) => settings,
            Err(RegexRefused::TooLong) => return Ok(Err(SettingsRefused::TooLong)),
            Err(RegexRefused::Invalid(message)) => {
                return Ok(Err(SettingsRefused::InvalidRegex(message)));
            }
        };
        let event = settings_event(
            event(EventType::SettingsChanged, principal),
            &group,
            &settings,
        );
        let settings = self
            .meta
            .set_group_settings(group.id, &settings, &event)
            .await;
        self.identities.cache().clear();
        Ok(Ok(settings?))
    }
}
