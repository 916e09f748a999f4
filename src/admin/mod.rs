//! Provisioning use cases behind `depot admin` (groups, projects, users, memberships, tokens,
//! settings) and the demo data `depot serve` creates on an empty store. Each returns the record
//! it made; `depot admin` prints them (as `wire` types). Names and the exception regex are
//! checked by the same `domain` rules the registry uses.

use crate::auth::{IdentityCache, hash_secret, new_secret};
use crate::domain::{
    EXCEPTION_REGEX_MAX_CHARS, EventType, Group, GroupSettings, Membership, MembershipTarget,
    NewGroup, NewToken, NewUser, Project, RegexRefused, Role, Scope, Timestamp, Token, TokenGrant,
    TokenKind, User, Visibility, valid_path, valid_segment,
};
use crate::store::{MetaStore, StoreError};
use std::sync::Arc;

mod bootstrap;
mod downloads;
mod events;
mod trust;

pub use trust::TrustSpec;

/// Why a provisioning command did nothing, worded for an operator.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The command's input is wrong.
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{}", store_words(.0))]
    Store(StoreError),
}

/// A store failure as an operator should read it: what happened and what to do.
fn store_words(e: &StoreError) -> String {
    match e {
        StoreError::Corrupt { .. } => {
            format!(
                "the store holds a record that does not read back ({e}); restore it from a backup or repair it"
            )
        }
        StoreError::Contention { .. } => {
            format!("the store stayed busy ({e}); nothing was changed, try again")
        }
        StoreError::Unavailable { .. } => format!(
            "the store's service is unavailable ({e}); the change may or may not have been made: check, and try again later"
        ),
        StoreError::Misconfigured(why) => format!("the store is not set up as depot needs: {why}"),
        StoreError::Full(_) => format!("the store is full ({e}); free space and try again"),
        _ => format!("the store failed: {e}"),
    }
}

type Result<T> = std::result::Result<T, AdminError>;

fn store_err(what: impl Into<String>) -> impl FnOnce(StoreError) -> AdminError {
    let what = what.into();
    move |e| match e {
        StoreError::AlreadyExists { .. } => AdminError::AlreadyExists(what),
        StoreError::NotFound { .. } => AdminError::NotFound(what),
        StoreError::Rejected(msg) => AdminError::Invalid(msg),
        other => AdminError::Store(other),
    }
}

/// What `depot serve` created on first start.
pub struct Demo {
    pub project: Project,
    pub user: User,
    pub token: String,
}

/// Where a deploy token is valid: one project, or every project under a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployTarget {
    Project(String),
    Group(String),
}

/// What `token create` asks for, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSpec {
    Personal {
        user: String,
        scopes: Vec<Scope>,
        expires_at: Option<Timestamp>,
    },
    Deploy {
        target: DeployTarget,
        scopes: Vec<Scope>,
        expires_at: Option<Timestamp>,
    },
    Job {
        user: String,
        project: String,
        expires_at: Timestamp,
    },
}

/// A token just made: its record, and the secret, shown this once and kept nowhere.
pub struct CreatedToken {
    pub token: Token,
    pub secret: String,
}

/// A group's settings as they now are.
pub struct SettingsRecord {
    pub group: Group,
    pub settings: GroupSettings,
}

pub struct Admin {
    meta: Arc<dyn MetaStore>,
    /// The identity cache of the registry this admin shares a process with: what a change
    /// touches is forgotten there at once (elsewhere it takes the cache's lifetime).
    cache: Option<Arc<IdentityCache>>,
}

impl Admin {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        Self { meta, cache: None }
    }

    /// Changes through this admin clear `cache` (the registry's of the same process).
    pub fn with_cache(mut self, cache: Arc<IdentityCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// After a change to who may do what.
    fn changed(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    pub async fn create_group(&self, path: &str) -> Result<Group> {
        if !valid_path(path) {
            return Err(AdminError::Invalid(format!(
                "{path:?} is not a valid group path"
            )));
        }
        if crate::domain::reserved_path(path) {
            return Err(AdminError::Invalid(format!(
                "{path:?} is reserved (a top-level group may not be named {})",
                crate::domain::RESERVED_TOP_LEVEL.join(", ")
            )));
        }
        if self.find_project(path).await?.is_some() {
            return Err(AdminError::AlreadyExists(format!("a project at {path:?}")));
        }
        let parent_id = match path.rsplit_once('/') {
            None => None,
            Some((parent, _)) => Some(
                self.find_group(parent)
                    .await?
                    .ok_or_else(|| {
                        AdminError::Invalid(format!("parent group {parent:?} does not exist"))
                    })?
                    .id,
            ),
        };
        let group = NewGroup {
            path: path.to_string(),
            parent_id,
            created_at: Timestamp::now(),
            owner: None,
        };
        let event = events::admin_event(EventType::GroupCreated);
        self.meta
            .create_group(group, &event)
            .await
            .map_err(store_err(format!("group {path:?}")))
    }

    pub async fn create_project(&self, full_path: &str, public: bool) -> Result<Project> {
        let Some((group_path, name)) = full_path.rsplit_once('/') else {
            return Err(AdminError::Invalid(format!(
                "{full_path:?} must be <group>/<name>: every project lives in a group"
            )));
        };
        if !valid_path(full_path) {
            return Err(AdminError::Invalid(format!(
                "{full_path:?} is not a valid project path"
            )));
        }
        let group = self.group(group_path).await?;
        if self.find_group(full_path).await?.is_some() {
            return Err(AdminError::AlreadyExists(format!(
                "a group at {full_path:?}"
            )));
        }
        let visibility = if public {
            Visibility::Public
        } else {
            Visibility::Private
        };
        let event = events::admin_event(EventType::ProjectCreated);
        self.meta
            .create_project(&group, name, visibility, Timestamp::now(), &event)
            .await
            .map_err(store_err(format!("project {full_path:?}")))
    }

    pub async fn create_user(&self, username: &str) -> Result<User> {
        self.create_user_as(username, false).await
    }

    /// A user, an administrator if `admin`.
    pub async fn create_user_as(&self, username: &str, admin: bool) -> Result<User> {
        if !valid_segment(username) {
            return Err(AdminError::Invalid(format!(
                "{username:?} is not a valid username"
            )));
        }
        let user = NewUser {
            username: username.to_string(),
            admin,
            created_at: Timestamp::now(),
        };
        let event = events::admin_event(EventType::UserCreated)
            .with_detail(serde_json::json!({ "username": username, "admin": admin }));
        self.meta
            .create_user(user, &event)
            .await
            .map_err(store_err(format!("user {username:?}")))
    }

    async fn find_group(&self, path: &str) -> Result<Option<Group>> {
        self.meta
            .group_by_path(path)
            .await
            .map_err(AdminError::Store)
    }

    async fn find_project(&self, path: &str) -> Result<Option<Project>> {
        self.meta
            .project_by_path(path)
            .await
            .map_err(AdminError::Store)
    }

    async fn group(&self, path: &str) -> Result<Group> {
        self.find_group(path)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("group {path:?}")))
    }

    async fn user(&self, username: &str) -> Result<User> {
        self.meta
            .user_by_name(username)
            .await
            .map_err(AdminError::Store)?
            .ok_or_else(|| AdminError::NotFound(format!("user {username:?}")))
    }

    async fn project(&self, path: &str) -> Result<Project> {
        self.find_project(path)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("project {path:?}")))
    }

    /// A project or group by full path (projects first; the two never share a path).
    pub(crate) async fn target(&self, path: &str) -> Result<MembershipTarget> {
        if let Some(p) = self.find_project(path).await? {
            return Ok(MembershipTarget::Project(p.id));
        }
        match self.find_group(path).await? {
            Some(g) => Ok(MembershipTarget::Group(g.path)),
            None => Err(AdminError::NotFound(format!("group or project {path:?}"))),
        }
    }

    pub async fn add_member(&self, username: &str, path: &str, role: Role) -> Result<Membership> {
        let user = self.user(username).await?;
        let target = self.target(path).await?;
        let event = self
            .event_at(EventType::MemberUpdated, path)
            .await?
            .with_detail(serde_json::json!({
                "user_id": user.id,
                "username": user.username,
                "access_level": role.access_level(),
            }));
        let membership = self
            .meta
            .set_membership(user.id, &target, role, &event)
            .await;
        self.changed();
        membership.map_err(AdminError::Store)
    }

    /// The grant `spec` asks for, its names looked up and its scopes checked.
    async fn grant(&self, spec: TokenSpec) -> Result<(TokenGrant, Option<Timestamp>)> {
        let check = |kind: TokenKind, scopes: &[Scope]| {
            let allowed = Scope::allowed_for(kind);
            match scopes.iter().find(|s| !allowed.contains(s)) {
                Some(bad) => Err(AdminError::Invalid(format!(
                    "scope {} is not valid for a {} token (allowed: {})",
                    bad.as_str(),
                    kind.as_str(),
                    Scope::join(allowed)
                ))),
                None => Ok(()),
            }
        };
        Ok(match spec {
            TokenSpec::Personal {
                user,
                scopes,
                expires_at,
            } => {
                check(TokenKind::Personal, &scopes)?;
                let user_id = self.user(&user).await?.id;
                (TokenGrant::Personal { user_id, scopes }, expires_at)
            }
            TokenSpec::Deploy {
                target,
                scopes,
                expires_at,
            } => {
                check(TokenKind::Deploy, &scopes)?;
                let target = match target {
                    DeployTarget::Project(p) => {
                        MembershipTarget::Project(self.project(&p).await?.id)
                    }
                    DeployTarget::Group(g) => match self.target(&g).await? {
                        group @ MembershipTarget::Group(_) => group,
                        MembershipTarget::Project(_) => {
                            return Err(AdminError::Invalid(format!(
                                "{g:?} is a project, not a group"
                            )));
                        }
                    },
                };
                (TokenGrant::Deploy { target, scopes }, expires_at)
            }
            TokenSpec::Job {
                user,
                project,
                expires_at,
            } => {
                let user_id = self.user(&user).await?.id;
                let project_id = self.project(&project).await?.id;
                let grant = TokenGrant::Job {
                    user_id,
                    project_id,
                };
                (grant, Some(expires_at))
            }
        })
    }

    /// Create a token named after the command that made it; the secret is in the answer and
    /// nowhere else, ever.
    pub async fn create_token(&self, spec: TokenSpec) -> Result<CreatedToken> {
        self.create_named_token("depot admin", spec).await
    }

    /// [`Self::create_token`] with the token's `name`.
    pub async fn create_named_token(&self, name: &str, spec: TokenSpec) -> Result<CreatedToken> {
        let (grant, expires_at) = self.grant(spec).await?;
        let secret = new_secret(grant.kind());
        let new = NewToken {
            name: name.to_string(),
            sha256: hash_secret(&secret),
            grant,
            expires_at,
        };
        let event = events::admin_event(EventType::TokenCreated)
            .with_detail(crate::registry::token_detail(&new));
        let token = self
            .meta
            .create_token(new, Timestamp::now(), &event)
            .await
            .map_err(AdminError::Store)?;
        Ok(CreatedToken { token, secret })
    }

    pub async fn revoke_token(&self, id: i64) -> Result<Token> {
        let event = events::admin_event(EventType::TokenRevoked)
            .with_detail(serde_json::json!({ "token_id": id }));
        let token = self.meta.revoke_token(id, &event).await;
        self.changed();
        token.map_err(store_err(format!("token {id}")))
    }

    pub async fn set_settings(
        &self,
        group_path: &str,
        duplicates_allowed: Option<bool>,
        exception_regex: Option<String>,
    ) -> Result<SettingsRecord> {
        let group = self.group(group_path).await?;
        let current = self
            .meta
            .group_settings(group.id)
            .await
            .map_err(AdminError::Store)?
            .unwrap_or_default();
        let settings = match current.changed(duplicates_allowed, exception_regex.as_deref()) {
            Ok(settings) => settings,
            Err(RegexRefused::TooLong) => {
                return Err(AdminError::Invalid(format!(
                    "generic_duplicate_exception_regex is too long (maximum is \
                     {EXCEPTION_REGEX_MAX_CHARS} characters)"
                )));
            }
            Err(RegexRefused::Invalid(message)) => return Err(AdminError::Invalid(message)),
        };
        let event = crate::registry::settings_event(
            events::admin_event(EventType::SettingsChanged),
            &group,
            &settings,
        );
        let settings = self
            .meta
            .set_group_settings(group.id, &settings, &event)
            .await;
        self.changed();
        let settings = settings.map_err(AdminError::Store)?;
        Ok(SettingsRecord { group, settings })
    }

    /// On an empty store: group `demo`, project `demo/app`, user `demo` (owner of the group)
    /// and a personal token with `api` scope. `None` when the store already holds anything.
    pub async fn bootstrap_demo(&self) -> Result<Option<Demo>> {
        if !self.meta.is_empty().await.map_err(AdminError::Store)? {
            return Ok(None);
        }
        self.create_group("demo").await?;
        let project = self.create_project("demo/app", false).await?;
        let user = self.create_user("demo").await?;
        self.add_member("demo", "demo", Role::Owner).await?;
        let created = self
            .create_token(TokenSpec::Personal {
                user: "demo".into(),
                scopes: vec![Scope::Api],
                expires_at: None,
            })
            .await?;
        Ok(Some(Demo {
            project,
            user,
            token: created.secret,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_are_worded_for_an_operator() {
        let corrupt = AdminError::Store(StoreError::corrupt("tokens row 7", "bad scopes"));
        assert!(
            corrupt.to_string().contains("restore it from a backup"),
            "{corrupt}"
        );
        let busy = AdminError::Store(StoreError::Contention {
            what: "publish".into(),
            attempts: 8,
        });
        assert!(busy.to_string().contains("try again"), "{busy}");
        let setup = AdminError::Store(StoreError::Misconfigured("table t is not ACTIVE".into()));
        assert_eq!(
            setup.to_string(),
            "the store is not set up as depot needs: table t is not ACTIVE"
        );
        let mistake = store_err("group \"x\"")(StoreError::Rejected("bad".into()));
        assert_eq!(mistake.to_string(), "bad");
    }
}
