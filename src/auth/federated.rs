//! Principals another service vouched for, for one request: what they may do (grants: a
//! target, a role, API scopes) and who vouched (for the log and for the owner's audit). An
//! upload session such a principal opens keeps it written down (its delegation), and its
//! commit acts for it again, as long as the trust rules that accepted it still stand.

use super::{Action, Denied, Principal, scopes_allow};
use crate::domain::{MembershipTarget, Project, ProjectRef, Role, Scope, Visibility};
use crate::store::MetaStore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One thing a federated principal may do: act with `role` on `target`, within `scopes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(with = "target_text")]
    pub target: MembershipTarget,
    #[serde(with = "role_level")]
    pub role: Role,
    #[serde(with = "scope_names")]
    pub scopes: Vec<Scope>,
    /// The trust rule that granted it (OIDC), checked again when a session commits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<i64>,
}

/// Who vouched for a federated principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// An OIDC ID token of `issuer` for `subject`, accepted by the trust rules `rules`.
    Oidc {
        issuer: String,
        subject: String,
        rules: Vec<i64>,
    },
    /// A GitLab CI job token, confirmed by the upstream GitLab: job `job_id` of its project
    /// `gitlab_project` (at `gitlab_path`, when GitLab said), mapped to depot's `depot_project`.
    GitlabJob {
        job_id: i64,
        gitlab_project: i64,
        #[serde(default)]
        gitlab_path: Option<String>,
        #[serde(default)]
        depot_project: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Federated {
    pub source: Source,
    pub grants: Vec<Grant>,
}

impl Federated {
    /// The project a reference names for this principal: a GitLab job's requests name its
    /// GitLab project (`$CI_PROJECT_ID`, `$CI_PROJECT_PATH`), which means the depot project it
    /// maps to; every other reference means what it says.
    pub fn project_ref(&self, reference: &ProjectRef) -> Option<ProjectRef> {
        let Source::GitlabJob {
            gitlab_project,
            gitlab_path,
            depot_project,
            ..
        } = &self.source
        else {
            return None;
        };
        let names_it = match reference {
            ProjectRef::Id(id) => id == gitlab_project,
            ProjectRef::Path(path) => gitlab_path.as_deref() == Some(path.as_str()),
        };
        names_it.then_some(ProjectRef::Id(*depot_project))
    }

    /// Is `other` vouched for as the same one (the same OIDC subject of the same issuer, the
    /// same GitLab job)?
    pub fn same_as(&self, other: &Federated) -> bool {
        match (&self.source, &other.source) {
            (
                Source::Oidc {
                    issuer: a,
                    subject: s,
                    ..
                },
                Source::Oidc {
                    issuer: b,
                    subject: t,
                    ..
                },
            ) => a == b && s == t && !s.is_empty(),
            (Source::GitlabJob { job_id: a, .. }, Source::GitlabJob { job_id: b, .. }) => a == b,
            _ => false,
        }
    }

    /// As an upload session writes it down.
    pub fn to_delegation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The principal a session's delegation stands for now: its OIDC grants whose trust rule
    /// still stands (a removed rule revokes what it granted), or why none does.
    pub async fn from_delegation(meta: &dyn MetaStore, text: &str) -> Result<Principal, Denied> {
        let Ok(mut federated) = serde_json::from_str::<Federated>(text) else {
            return Err(Denied::Unauthorized);
        };
        if let Source::Oidc { issuer, .. } = &federated.source {
            let standing: Vec<i64> = meta
                .trust_rules_for_issuer(issuer)
                .await
                .map_err(|_| Denied::VouchUnavailable)?
                .iter()
                .map(|r| r.id)
                .collect();
            federated
                .grants
                .retain(|g| g.rule.is_none_or(|id| standing.contains(&id)));
        }
        if federated.grants.is_empty() {
            return Err(Denied::Revoked);
        }
        Ok(Principal::Federated(Arc::new(federated)))
    }

    /// Do the grants reach the group at `group_path` (a grant on it or on a group above it)?
    pub fn covers_group(&self, group_path: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.target.covers_group(group_path))
    }

    /// The highest role the grants covering `project` give for `action` (only grants whose
    /// scopes allow it, as [`Self::decide`] counts them): what a package protection rule
    /// compares.
    pub fn role_on(&self, project: &Project, action: Action) -> Option<Role> {
        self.grants
            .iter()
            .filter(|g| g.target.covers(project.id, project.namespace_path()))
            .filter(|g| scopes_allow(&g.scopes, action))
            .map(|g| g.role)
            .max()
    }

    /// May it do `action` on `project`? As a member with the highest role among the grants
    /// covering the project whose scopes allow the action; public projects are readable.
    pub fn decide(&self, action: Action, project: &Project) -> Result<(), Denied> {
        let public = project.visibility == Visibility::Public;
        let covering: Vec<&Grant> = self
            .grants
            .iter()
            .filter(|g| g.target.covers(project.id, project.namespace_path()))
            .collect();
        if covering.is_empty() {
            return match (public, action) {
                (true, Action::Read) => Ok(()),
                (true, _) => Err(Denied::Forbidden),
                (false, _) => Err(Denied::ProjectNotFound),
            };
        }
        let Some(role) = covering
            .iter()
            .filter(|g| scopes_allow(&g.scopes, action))
            .map(|g| g.role)
            .max()
        else {
            return Err(Denied::InsufficientScope);
        };
        let needed = match action {
            Action::Read => Role::Guest,
            Action::Write => Role::Developer,
            Action::Delete => Role::Maintainer,
        };
        if role >= needed {
            Ok(())
        } else {
            Err(Denied::Forbidden)
        }
    }
}

/// A target as `project:<id>` or `group:<path>`.
mod target_text {
    use crate::domain::MembershipTarget;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &MembershipTarget, s: S) -> Result<S::Ok, S::Error> {
        let (kind, value) = t.to_parts();
        s.serialize_str(&format!("{kind}:{value}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MembershipTarget, D::Error> {
        let text = String::deserialize(d)?;
        text.split_once(':')
            .and_then(|(kind, value)| MembershipTarget::from_parts(kind, value))
            .ok_or_else(|| D::Error::custom(format!("target {text:?}")))
    }
}

/// A role as its access level.
mod role_level {
    use crate::domain::Role;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(r: &Role, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(r.access_level())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        let level = i64::deserialize(d)?;
        Role::from_access_level(level).ok_or_else(|| D::Error::custom(format!("level {level}")))
    }
}

/// Scopes as their names.
mod scope_names {
    use crate::domain::Scope;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(scopes: &[Scope], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Scope::join(scopes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Scope>, D::Error> {
        Scope::parse_list(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    fn project(id: i64, path: &str, visibility: Visibility) -> Project {
        Project {
            id,
            name: path.rsplit('/').next().unwrap().into(),
            path_with_namespace: path.into(),
            namespace_id: 1,
            visibility,
            created_at: Timestamp::from_millis(0),
        }
    }

    fn federated(grants: Vec<Grant>) -> Federated {
        Federated {
            source: Source::GitlabJob {
                job_id: 1,
                gitlab_project: 2,
                gitlab_path: Some("team/app".into()),
                depot_project: 10,
            },
            grants,
        }
    }

    /// A protection rule weighs only the grants that allow the action: a Maintainer grant
    /// that may only read does not lift a Developer grant's write.
    #[test]
    fn the_role_for_an_action_counts_only_grants_allowing_it() {
        let grant = |role, scopes: &[Scope]| Grant {
            target: MembershipTarget::Project(10),
            role,
            scopes: scopes.to_vec(),
            rule: None,
        };
        let f = federated(vec![
            grant(Role::Maintainer, &[Scope::ReadApi]),
            grant(Role::Developer, &[Scope::Api]),
        ]);
        let own = project(10, "x/app", Visibility::Private);
        assert_eq!(f.role_on(&own, Action::Write), Some(Role::Developer));
        assert_eq!(f.role_on(&own, Action::Read), Some(Role::Maintainer));
        assert_eq!(
            f.role_on(&project(12, "h/app", Visibility::Private), Action::Read),
            None
        );
    }

    #[test]
    fn grants_decide_like_memberships() {
        use Action::*;
        let grant = |target, role, scopes: &[Scope]| Grant {
            target,
            role,
            scopes: scopes.to_vec(),
            rule: None,
        };
        let f = federated(vec![
            grant(
                MembershipTarget::Project(10),
                Role::Developer,
                &[Scope::Api],
            ),
            grant(
                MembershipTarget::Group("g".into()),
                Role::Reporter,
                &[Scope::ReadApi],
            ),
        ]);
        let own = project(10, "x/app", Visibility::Private);
        let in_group = project(11, "g/sub/lib", Visibility::Private);
        let other = project(12, "h/app", Visibility::Private);
        let public = project(13, "h/pub", Visibility::Public);
        assert_eq!(f.decide(Write, &own), Ok(()));
        assert_eq!(f.decide(Delete, &own), Err(Denied::Forbidden));
        assert_eq!(f.decide(Read, &in_group), Ok(()));
        assert_eq!(f.decide(Write, &in_group), Err(Denied::InsufficientScope));
        assert_eq!(f.decide(Read, &other), Err(Denied::ProjectNotFound));
        assert_eq!(f.decide(Read, &public), Ok(()));
        assert_eq!(f.decide(Write, &public), Err(Denied::Forbidden));
        assert!(f.covers_group("g/sub") && !f.covers_group("h"));
        // Written down for a session, and read back the same.
        let back: Federated = serde_json::from_str(&f.to_delegation()).unwrap();
        assert_eq!(back, f);
        assert!(back.same_as(&f));
        // A GitLab job's own project id and path name the depot project it maps to.
        let mapped = Some(ProjectRef::Id(10));
        assert_eq!(f.project_ref(&ProjectRef::Id(2)), mapped);
        assert_eq!(f.project_ref(&ProjectRef::Path("team/app".into())), mapped);
        assert_eq!(f.project_ref(&ProjectRef::Id(3)), None);
    }
}
