//! People's records on the wire: trust rules (depot's own entity), and GitLab's user, token,
//! member, project and group entities as its API shows them.

use crate::domain::{MembershipTarget, Scope, Timestamp, TrustRule};
use serde::{Deserialize, Serialize};

/// A trust rule of trusted publishing (depot's own: GitLab has no such entity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRuleEntity {
    pub id: i64,
    /// The project the rule covers, or `null` for a group's rule.
    pub project_id: Option<i64>,
    /// The group whose every project the rule covers, or `null` for a project's rule.
    pub group_path: Option<String>,
    pub issuer: String,
    pub audience: String,
    /// Claim name to exact value or glob; all must hold.
    pub conditions: serde_json::Map<String, serde_json::Value>,
    pub access_level: i64,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
}

impl From<&TrustRule> for TrustRuleEntity {
    fn from(r: &TrustRule) -> Self {
        let (project_id, group_path) = match &r.target {
            MembershipTarget::Project(id) => (Some(*id), None),
            MembershipTarget::Group(path) => (None, Some(path.clone())),
        };
        Self {
            id: r.id,
            project_id,
            group_path,
            issuer: r.issuer.clone(),
            audience: r.audience.clone(),
            conditions: r
                .conditions
                .iter()
                .map(|c| (c.claim.clone(), c.pattern.clone().into()))
                .collect(),
            access_level: r.role.access_level(),
            scopes: r
                .scopes
                .iter()
                .map(|s| Scope::as_str(*s).to_string())
                .collect(),
            created_at: r.created_at,
        }
    }
}

/// GitLab's `UserBasic`: how a user is shown inside other entities (members, authors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBasic {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub state: String,
    pub locked: bool,
    pub avatar_url: Option<String>,
    pub web_url: String,
}

impl UserBasic {
    /// `base` is the URL clients reach depot at (python-gitlab checks `web_url` starts with it).
    pub fn new(user: &crate::domain::User, base: &str) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            name: user.username.clone(),
            state: "active".into(),
            locked: false,
            avatar_url: None,
            web_url: format!("{base}/{}", user.username),
        }
    }
}

/// GitLab's `UserPublic` (what `GET /user` shows its owner), with the administrator's fields
/// when the viewer is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntity {
    #[serde(flatten)]
    pub basic: UserBasic,
    pub created_at: Timestamp,
    pub bot: bool,
    pub email: Option<String>,
    pub projects_limit: i64,
    pub can_create_group: bool,
    pub can_create_project: bool,
    pub two_factor_enabled: bool,
    pub external: bool,
    pub private_profile: bool,
    pub identities: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
}

impl UserEntity {
    /// The user as `viewer_is_admin` may see them.
    pub fn new(user: &crate::domain::User, base: &str, viewer_is_admin: bool) -> Self {
        Self {
            basic: UserBasic::new(user, base),
            created_at: user.created_at,
            bot: false,
            email: None,
            projects_limit: 0,
            can_create_group: user.admin,
            can_create_project: true,
            two_factor_enabled: false,
            external: false,
            private_profile: false,
            identities: Vec::new(),
            is_admin: viewer_is_admin.then_some(user.admin),
        }
    }
}

/// GitLab's `PersonalAccessToken` (with `token` only when just made or rotated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalAccessTokenEntity {
    pub id: i64,
    pub name: String,
    pub revoked: bool,
    pub created_at: Timestamp,
    pub description: Option<String>,
    pub scopes: Vec<String>,
    pub user_id: i64,
    pub last_used_at: Option<Timestamp>,
    pub active: bool,
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl PersonalAccessTokenEntity {
    pub fn new(token: &crate::domain::Token, now: Timestamp, secret: Option<&str>) -> Self {
        let user_id = match &token.grant {
            crate::domain::TokenGrant::Personal { user_id, .. }
            | crate::domain::TokenGrant::Job { user_id, .. } => *user_id,
            crate::domain::TokenGrant::Deploy { .. } => 0,
        };
        Self {
            id: token.id,
            name: token.name.clone(),
            revoked: token.revoked,
            created_at: token.created_at,
            description: None,
            scopes: scope_names(&token.grant.scopes()),
            user_id,
            last_used_at: token.last_used_at,
            active: !token.revoked && !token.expired(now),
            expires_at: token.expires_at.map(Timestamp::to_date),
            token: secret.map(str::to_string),
        }
    }
}

fn scope_names(scopes: &[Scope]) -> Vec<String> {
    scopes.iter().map(|s| s.as_str().to_string()).collect()
}

/// GitLab's `DeployToken` (with `token` only when just made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployTokenEntity {
    pub id: i64,
    pub name: String,
    pub username: String,
    pub expires_at: Option<Timestamp>,
    pub scopes: Vec<String>,
    pub revoked: bool,
    pub expired: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl DeployTokenEntity {
    pub fn new(token: &crate::domain::Token, now: Timestamp, secret: Option<&str>) -> Self {
        Self {
            id: token.id,
            name: token.name.clone(),
            username: format!("gitlab+deploy-token-{}", token.id),
            expires_at: token.expires_at,
            scopes: scope_names(&token.grant.scopes()),
            revoked: token.revoked,
            expired: token.expired(now),
            token: secret.map(str::to_string),
        }
    }
}

/// GitLab's `Member`: the user, with their access level there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntity {
    #[serde(flatten)]
    pub user: UserBasic,
    pub access_level: i64,
    /// depot does not record when a membership was made: always `null`.
    pub created_at: Option<Timestamp>,
    pub expires_at: Option<String>,
    pub membership_state: String,
}

impl MemberEntity {
    pub fn new(user: &crate::domain::User, role: crate::domain::Role, base: &str) -> Self {
        Self {
            user: UserBasic::new(user, base),
            access_level: role.access_level(),
            created_at: None,
            expires_at: None,
            membership_state: "active".into(),
        }
    }
}

/// GitLab's `NamespaceBasic`: a group as a project's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceEntity {
    pub id: i64,
    pub name: String,
    pub path: String,
    pub kind: String,
    pub full_path: String,
    pub parent_id: Option<i64>,
    pub avatar_url: Option<String>,
    pub web_url: String,
}

impl NamespaceEntity {
    pub fn new(group: &crate::domain::Group, base: &str) -> Self {
        let name = group
            .path
            .rsplit('/')
            .next()
            .unwrap_or(&group.path)
            .to_string();
        Self {
            id: group.id,
            name: name.clone(),
            path: name,
            kind: "group".into(),
            full_path: group.path.clone(),
            parent_id: group.parent_id,
            avatar_url: None,
            web_url: format!("{base}/groups/{}", group.path),
        }
    }
}

/// An access level as `permissions` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntity {
    pub access_level: i64,
    pub notification_level: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionsEntity {
    pub project_access: Option<AccessEntity>,
    pub group_access: Option<AccessEntity>,
}

impl PermissionsEntity {
    pub fn new(project: Option<crate::domain::Role>, group: Option<crate::domain::Role>) -> Self {
        let access = |r: crate::domain::Role| AccessEntity {
            access_level: r.access_level(),
            notification_level: 3,
        };
        Self {
            project_access: project.map(access),
            group_access: group.map(access),
        }
    }
}

/// GitLab's `Project` (the fields a package registry has), with `permissions` for a caller
/// who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectEntity {
    pub id: i64,
    pub description: Option<String>,
    pub name: String,
    pub name_with_namespace: String,
    pub path: String,
    pub path_with_namespace: String,
    pub created_at: Timestamp,
    pub default_branch: Option<String>,
    pub tag_list: Vec<String>,
    pub topics: Vec<String>,
    pub web_url: String,
    pub avatar_url: Option<String>,
    pub star_count: i64,
    pub last_activity_at: Timestamp,
    pub namespace: NamespaceEntity,
    pub visibility: String,
    pub packages_enabled: bool,
    pub empty_repo: bool,
    pub archived: bool,
    #[serde(rename = "_links")]
    pub links: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<PermissionsEntity>,
}

impl ProjectEntity {
    pub fn new(
        project: &crate::domain::Project,
        group: &crate::domain::Group,
        base: &str,
        permissions: Option<PermissionsEntity>,
    ) -> Self {
        let mut links = serde_json::Map::new();
        let api = format!("{base}/api/v4/projects/{}", project.id);
        links.insert("self".into(), api.clone().into());
        links.insert("members".into(), format!("{api}/members").into());
        Self {
            id: project.id,
            description: None,
            name: project.name.clone(),
            name_with_namespace: project.path_with_namespace.replace('/', " / "),
            path: project.name.clone(),
            path_with_namespace: project.path_with_namespace.clone(),
            created_at: project.created_at,
            default_branch: None,
            tag_list: Vec::new(),
            topics: Vec::new(),
            web_url: format!("{base}/{}", project.path_with_namespace),
            avatar_url: None,
            star_count: 0,
            last_activity_at: project.created_at,
            namespace: NamespaceEntity::new(group, base),
            visibility: project.visibility.as_str().into(),
            packages_enabled: true,
            empty_repo: true,
            archived: false,
            links,
            permissions,
        }
    }
}

/// GitLab's `Group` (groups in depot are private: seen by members and by those who may read
/// one of their projects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntity {
    pub id: i64,
    pub web_url: String,
    pub name: String,
    pub path: String,
    pub description: String,
    pub visibility: String,
    pub full_name: String,
    pub full_path: String,
    pub parent_id: Option<i64>,
    pub created_at: Timestamp,
    pub avatar_url: Option<String>,
    pub request_access_enabled: bool,
    pub project_creation_level: String,
    pub subgroup_creation_level: String,
}

impl GroupEntity {
    pub fn new(group: &crate::domain::Group, base: &str) -> Self {
        let name = group
            .path
            .rsplit('/')
            .next()
            .unwrap_or(&group.path)
            .to_string();
        Self {
            id: group.id,
            web_url: format!("{base}/groups/{}", group.path),
            name: name.clone(),
            path: name,
            description: String::new(),
            visibility: "private".into(),
            full_name: group.path.replace('/', " / "),
            full_path: group.path.clone(),
            parent_id: group.parent_id,
            created_at: group.created_at,
            avatar_url: None,
            request_access_enabled: false,
            project_creation_level: "maintainer".into(),
            subgroup_creation_level: "owner".into(),
        }
    }
}
