//! Provisioning use cases behind `depot admin` (groups, projects, users, memberships, tokens,
//! settings) and the demo data `depot serve` creates on an empty store. Each returns the
//! created object as JSON.

use crate::auth::{hash_secret, new_secret};
use crate::domain::{
    EXCEPTION_REGEX_MAX_CHARS, ExceptionRegex, RegexRefused, valid_path, valid_segment,
};
use crate::domain::{
    GroupSettings, MembershipTarget, NewGroup, NewToken, Project, Role, Scope, Timestamp,
    TokenKind, User, Visibility,
};
use crate::store::{MetaStore, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("storage: {0}")]
    Store(StoreError),
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

pub struct Admin {
    meta: Arc<dyn MetaStore>,
}

impl Admin {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        Self { meta }
    }

    pub async fn create_group(&self, path: &str) -> Result<Value> {
        if !valid_path(path) {
            return Err(AdminError::Invalid(format!(
                "{path:?} is not a valid group path"
            )));
        }
        if self
            .meta
            .project_by_path(path)
            .await
            .map_err(AdminError::Store)?
            .is_some()
        {
            return Err(AdminError::AlreadyExists(format!("a project at {path:?}")));
        }
        let parent_id = match path.rsplit_once('/') {
            None => None,
            Some((parent, _)) => Some(
                self.meta
                    .group_by_path(parent)
                    .await
                    .map_err(AdminError::Store)?
                    .ok_or_else(|| {
                        AdminError::Invalid(format!("parent group {parent:?} does not exist"))
                    })?
                    .id,
            ),
        };
        let g = self
            .meta
            .create_group(NewGroup {
                path: path.to_string(),
                parent_id,
                created_at: Timestamp::now(),
            })
            .await
            .map_err(store_err(format!("group {path:?}")))?;
        Ok(json!({ "id": g.id, "full_path": g.path, "parent_id": g.parent_id }))
    }

    pub async fn create_project(&self, full_path: &str, public: bool) -> Result<Value> {
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
        let group = self
            .meta
            .group_by_path(group_path)
            .await
            .map_err(AdminError::Store)?
            .ok_or_else(|| AdminError::NotFound(format!("group {group_path:?}")))?;
        if self
            .meta
            .group_by_path(full_path)
            .await
            .map_err(AdminError::Store)?
            .is_some()
        {
            return Err(AdminError::AlreadyExists(format!(
                "a group at {full_path:?}"
            )));
        }
        let visibility = if public {
            Visibility::Public
        } else {
            Visibility::Private
        };
        let p = self
            .meta
            .create_project(&group, name, visibility, Timestamp::now())
            .await
            .map_err(store_err(format!("project {full_path:?}")))?;
        Ok(project_json(&p))
    }

    pub async fn create_user(&self, username: &str) -> Result<Value> {
        if !valid_segment(username) {
            return Err(AdminError::Invalid(format!(
                "{username:?} is not a valid username"
            )));
        }
        let u = self
            .meta
            .create_user(username, Timestamp::now())
            .await
            .map_err(store_err(format!("user {username:?}")))?;
        Ok(json!({ "id": u.id, "username": u.username }))
    }

    async fn user(&self, username: &str) -> Result<User> {
        self.meta
            .user_by_name(username)
            .await
            .map_err(AdminError::Store)?
            .ok_or_else(|| AdminError::NotFound(format!("user {username:?}")))
    }

    async fn project(&self, path: &str) -> Result<Project> {
        self.meta
            .project_by_path(path)
            .await
            .map_err(AdminError::Store)?
            .ok_or_else(|| AdminError::NotFound(format!("project {path:?}")))
    }

    /// A project or group by full path (projects first; the two never share a path).
    async fn target(&self, path: &str) -> Result<MembershipTarget> {
        if let Some(p) = self
            .meta
            .project_by_path(path)
            .await
            .map_err(AdminError::Store)?
        {
            return Ok(MembershipTarget::Project(p.id));
        }
        match self
            .meta
            .group_by_path(path)
            .await
            .map_err(AdminError::Store)?
        {
            Some(g) => Ok(MembershipTarget::Group(g.path)),
            None => Err(AdminError::NotFound(format!("group or project {path:?}"))),
        }
    }

    pub async fn add_member(&self, username: &str, path: &str, role: Role) -> Result<Value> {
        let user = self.user(username).await?;
        let target = self.target(path).await?;
        self.meta
            .set_membership(user.id, &target, role)
            .await
            .map_err(AdminError::Store)?;
        Ok(json!({
            "user": user.username,
            "source": path,
            "source_type": match target { MembershipTarget::Group(_) => "group", MembershipTarget::Project(_) => "project" },
            "role": role.as_str(),
            "access_level": role.access_level(),
        }))
    }

    /// Create a token; the secret is in the answer and nowhere else, ever.
    pub async fn create_token(&self, spec: TokenSpec) -> Result<Value> {
        let allowed = Scope::allowed_for(spec.kind);
        if let Some(bad) = spec.scopes.iter().find(|s| !allowed.contains(s)) {
            return Err(AdminError::Invalid(format!(
                "scope {} is not valid for a {} token (allowed: {})",
                bad.as_str(),
                spec.kind.as_str(),
                Scope::join(allowed)
            )));
        }
        let user_id = match &spec.user {
            Some(name) => Some(self.user(name).await?.id),
            None => None,
        };
        let target = match (&spec.project, &spec.group) {
            (Some(p), _) => Some(MembershipTarget::Project(self.project(p).await?.id)),
            (None, Some(g)) => match self.target(g).await? {
                t @ MembershipTarget::Group(_) => Some(t),
                MembershipTarget::Project(_) => {
                    return Err(AdminError::Invalid(format!(
                        "{g:?} is a project, not a group"
                    )));
                }
            },
            (None, None) => None,
        };
        let secret = new_secret(spec.kind);
        let token = self
            .meta
            .create_token(
                NewToken {
                    kind: spec.kind,
                    sha256: hash_secret(&secret),
                    scopes: spec.scopes,
                    user_id,
                    target,
                    expires_at: spec.expires_at,
                },
                Timestamp::now(),
            )
            .await
            .map_err(AdminError::Store)?;
        Ok(json!({
            "id": token.id,
            "kind": token.kind.as_str(),
            "token": secret,
            "scopes": token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "expires_at": token.expires_at,
        }))
    }

    pub async fn revoke_token(&self, id: i64) -> Result<Value> {
        let t = self
            .meta
            .revoke_token(id)
            .await
            .map_err(store_err(format!("token {id}")))?;
        Ok(json!({ "id": t.id, "kind": t.kind.as_str(), "revoked": t.revoked }))
    }

    pub async fn set_settings(
        &self,
        group_path: &str,
        duplicates_allowed: Option<bool>,
        exception_regex: Option<String>,
    ) -> Result<Value> {
        let group = self
            .meta
            .group_by_path(group_path)
            .await
            .map_err(AdminError::Store)?
            .ok_or_else(|| AdminError::NotFound(format!("group {group_path:?}")))?;
        let mut settings = self
            .meta
            .group_settings(group.id)
            .await
            .map_err(AdminError::Store)?
            .unwrap_or_default();
        if let Some(allowed) = duplicates_allowed {
            settings.generic_duplicates_allowed = allowed;
        }
        if let Some(re) = exception_regex {
            settings.generic_duplicate_exception_regex = match ExceptionRegex::parse(&re) {
                Ok(re) => re.into_string(),
                Err(RegexRefused::TooLong) => {
                    return Err(AdminError::Invalid(format!(
                        "generic_duplicate_exception_regex is too long (maximum is \
                         {EXCEPTION_REGEX_MAX_CHARS} characters)"
                    )));
                }
                Err(RegexRefused::Invalid(message)) => return Err(AdminError::Invalid(message)),
            };
        }
        let s = self
            .meta
            .set_group_settings(group.id, &settings)
            .await
            .map_err(AdminError::Store)?;
        Ok(settings_json(&group.path, &s))
    }

    /// On an empty store: group `demo`, project `demo/app`, user `demo` (owner of the group)
    /// and a personal token with `api` scope. `None` when the store already holds anything.
    pub async fn bootstrap_demo(&self) -> Result<Option<Demo>> {
        if !self.meta.is_empty().await.map_err(AdminError::Store)? {
            return Ok(None);
        }
        self.create_group("demo").await?;
        self.create_project("demo/app", false).await?;
        self.create_user("demo").await?;
        self.add_member("demo", "demo", Role::Owner).await?;
        let token = self
            .create_token(TokenSpec {
                kind: TokenKind::Personal,
                scopes: vec![Scope::Api],
                user: Some("demo".into()),
                project: None,
                group: None,
                expires_at: None,
            })
            .await?;
        let secret = token["token"].as_str().unwrap_or_default().to_string();
        Ok(Some(Demo {
            project: self.project("demo/app").await?,
            user: self.user("demo").await?,
            token: secret,
        }))
    }
}

/// What `token create` asks for.
pub struct TokenSpec {
    pub kind: TokenKind,
    pub scopes: Vec<Scope>,
    pub user: Option<String>,
    pub project: Option<String>,
    pub group: Option<String>,
    pub expires_at: Option<Timestamp>,
}

pub fn project_json(p: &Project) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "path_with_namespace": p.path_with_namespace,
        "visibility": p.visibility.as_str(),
    })
}

pub fn settings_json(group: &str, s: &GroupSettings) -> Value {
    json!({
        "group": group,
        "generic_duplicates_allowed": s.generic_duplicates_allowed,
        "generic_duplicate_exception_regex": s.generic_duplicate_exception_regex,
    })
}
