//! Principals another service vouched for, for one request: what they may do (grants: a
//! target, a role, API scopes) and who vouched (for the log and for the owner's audit).

use super::{Action, Denied, scopes_allow};
use crate::domain::{MembershipTarget, Project, Role, Scope, Visibility};

/// One thing a federated principal may do: act with `role` on `target`, within `scopes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub target: MembershipTarget,
    pub role: Role,
    pub scopes: Vec<Scope>,
}

/// Who vouched for a federated principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An OIDC ID token of `issuer` for `subject`, accepted by the trust rules `rules`.
    Oidc {
        issuer: String,
        subject: String,
        rules: Vec<i64>,
    },
    /// A GitLab CI job token, confirmed by the upstream GitLab: job `job_id` of its project
    /// `gitlab_project`.
    GitlabJob { job_id: i64, gitlab_project: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federated {
    pub source: Source,
    pub grants: Vec<Grant>,
}

impl Federated {
    /// Do the grants reach the group at `group_path` (a grant on it or on a group above it)?
    pub fn covers_group(&self, group_path: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.target.covers_group(group_path))
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
            },
            grants,
        }
    }

    #[test]
    fn grants_decide_like_memberships() {
        use Action::*;
        let grant = |target, role, scopes: &[Scope]| Grant {
            target,
            role,
            scopes: scopes.to_vec(),
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
    }
}
