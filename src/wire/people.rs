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
