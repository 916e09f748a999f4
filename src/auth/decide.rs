//! The permission decision: may a principal do an action on a project, from its token kind
//! and scopes, its roles (a project's own, or any group's above it) and the project's
//! visibility, in the order GitLab decides.

use super::{Action, Denied, Principal};
use crate::domain::{Membership, Project, Role, Scope, Visibility};

/// The highest role any of `memberships` gives on `project` (its own, its group's, or any
/// ancestor group's).
pub fn effective_role(memberships: &[Membership], project: &Project) -> Option<Role> {
    memberships
        .iter()
        .filter(|m| m.target.covers(project.id, project.namespace_path()))
        .map(|m| m.role)
        .max()
}

/// May `principal` (with `memberships`, for users) do `action` on `project`?
pub fn decide(
    principal: &Principal,
    action: Action,
    project: &Project,
    memberships: &[Membership],
) -> Result<(), Denied> {
    let public = project.visibility == Visibility::Public;
    match principal {
        Principal::Anonymous => {
            if public && action == Action::Read {
                Ok(())
            } else {
                Err(Denied::Unauthorized)
            }
        }
        Principal::User { job_project, .. } => {
            principal.check_scope(action)?;
            let in_scope = job_project.is_none_or(|p| p == project.id);
            let role = if in_scope {
                effective_role(memberships, project)
            } else {
                None
            };
            if !public && role.is_none() {
                return Err(Denied::ProjectNotFound);
            }
            let needed = match action {
                Action::Read => return Ok(()),
                Action::Write => Role::Developer,
                Action::Delete => Role::Maintainer,
            };
            if role.is_some_and(|r| r >= needed) {
                Ok(())
            } else {
                Err(Denied::Forbidden)
            }
        }
        Principal::Deploy { target, scopes, .. } => {
            if !target.covers(project.id, project.namespace_path()) {
                return match (public, action) {
                    (true, Action::Read) => Ok(()),
                    (true, _) => Err(Denied::Forbidden),
                    (false, _) => Err(Denied::ProjectNotFound),
                };
            }
            let write = scopes.contains(&Scope::WritePackageRegistry);
            let ok = match action {
                Action::Read => write || scopes.contains(&Scope::ReadPackageRegistry),
                Action::Write | Action::Delete => write,
            };
            if ok { Ok(()) } else { Err(Denied::Forbidden) }
        }
        Principal::Federated(federated) => federated.decide(action, project),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MembershipTarget, Timestamp};

    fn project(visibility: Visibility) -> Project {
        Project {
            id: 10,
            name: "app".into(),
            path_with_namespace: "grp/sub/app".into(),
            namespace_id: 2,
            visibility,
            created_at: Timestamp::from_millis(0),
        }
    }

    fn member(target: MembershipTarget, role: Role) -> Vec<Membership> {
        vec![Membership {
            user_id: 1,
            target,
            role,
        }]
    }

    fn user(scopes: &[Scope]) -> Principal {
        Principal::User {
            user_id: 1,
            scopes: scopes.to_vec(),
            job_project: None,
            token_id: 1,
        }
    }

    #[test]
    fn role_table_for_users() {
        use Action::*;
        use Denied::*;
        use Visibility::*;
        let g = |role| member(MembershipTarget::Group("grp".into()), role);
        let none: Vec<Membership> = vec![];
        let api = user(&[Scope::Api]);
        #[rustfmt::skip]
        type Row = (Visibility, Vec<Membership>, Action, Result<(), Denied>);
        let table: Vec<Row> = vec![
            (Public, none.clone(), Read, Ok(())),
            (Public, none.clone(), Write, Err(Forbidden)),
            (Private, none.clone(), Read, Err(ProjectNotFound)),
            (Private, none.clone(), Write, Err(ProjectNotFound)),
            (Private, g(Role::Guest), Read, Ok(())),
            (Private, g(Role::Guest), Write, Err(Forbidden)),
            (Private, g(Role::Reporter), Write, Err(Forbidden)),
            (Private, g(Role::Developer), Write, Ok(())),
            (Private, g(Role::Developer), Delete, Err(Forbidden)),
            (Private, g(Role::Maintainer), Delete, Ok(())),
            (Private, g(Role::Owner), Delete, Ok(())),
            (
                Private,
                member(MembershipTarget::Project(10), Role::Developer),
                Write,
                Ok(()),
            ),
            (
                Private,
                member(MembershipTarget::Project(11), Role::Owner),
                Read,
                Err(ProjectNotFound),
            ),
            (
                Private,
                member(MembershipTarget::Group("grp/sub".into()), Role::Developer),
                Write,
                Ok(()),
            ),
            (
                Private,
                member(MembershipTarget::Group("other".into()), Role::Owner),
                Read,
                Err(ProjectNotFound),
            ),
        ];
        for (vis, memberships, action, expected) in table {
            assert_eq!(
                decide(&api, action, &project(vis), &memberships),
                expected,
                "{vis:?} {memberships:?} {action:?}"
            );
        }
    }

    #[test]
    fn highest_role_wins() {
        let ms = vec![
            Membership {
                user_id: 1,
                target: MembershipTarget::Group("grp".into()),
                role: Role::Guest,
            },
            Membership {
                user_id: 1,
                target: MembershipTarget::Project(10),
                role: Role::Maintainer,
            },
        ];
        assert_eq!(
            effective_role(&ms, &project(Visibility::Private)),
            Some(Role::Maintainer)
        );
    }

    #[test]
    fn anonymous_and_scopes() {
        let p = project(Visibility::Public);
        assert_eq!(decide(&Principal::Anonymous, Action::Read, &p, &[]), Ok(()));
        assert_eq!(
            decide(&Principal::Anonymous, Action::Write, &p, &[]),
            Err(Denied::Unauthorized)
        );
        let private = project(Visibility::Private);
        assert_eq!(
            decide(&Principal::Anonymous, Action::Read, &private, &[]),
            Err(Denied::Unauthorized)
        );
        let read_api = user(&[Scope::ReadApi]);
        let dev = member(MembershipTarget::Project(10), Role::Developer);
        assert_eq!(decide(&read_api, Action::Read, &private, &dev), Ok(()));
        assert_eq!(
            decide(&read_api, Action::Write, &private, &dev),
            Err(Denied::InsufficientScope)
        );
    }

    #[test]
    fn job_tokens_only_act_in_their_project() {
        let dev = member(MembershipTarget::Group("grp".into()), Role::Developer);
        let job = |p| Principal::User {
            user_id: 1,
            scopes: vec![Scope::Api],
            job_project: Some(p),
            token_id: 1,
        };
        let private = project(Visibility::Private);
        assert_eq!(decide(&job(10), Action::Write, &private, &dev), Ok(()));
        assert_eq!(
            decide(&job(11), Action::Read, &private, &dev),
            Err(Denied::ProjectNotFound)
        );
        assert_eq!(
            decide(&job(11), Action::Read, &project(Visibility::Public), &dev),
            Ok(())
        );
    }

    #[test]
    fn deploy_tokens() {
        use Action::*;
        let dt = |target, scopes: &[Scope]| Principal::Deploy {
            target,
            scopes: scopes.to_vec(),
            token_id: 1,
        };
        let read = &[Scope::ReadPackageRegistry][..];
        let write = &[Scope::WritePackageRegistry][..];
        let private = project(Visibility::Private);
        let public = project(Visibility::Public);
        let own = MembershipTarget::Project(10);
        let grp = MembershipTarget::Group("grp".into());
        let other = MembershipTarget::Project(99);
        #[rustfmt::skip]
        let table = vec![
            (dt(own.clone(), read), Read, &private, Ok(())),
            (dt(own.clone(), read), Write, &private, Err(Denied::Forbidden)),
            (dt(own.clone(), write), Write, &private, Ok(())),
            (dt(own.clone(), write), Read, &private, Ok(())),
            (dt(own.clone(), write), Delete, &private, Ok(())),
            (dt(grp.clone(), write), Write, &private, Ok(())),
            (dt(other.clone(), write), Read, &private, Err(Denied::ProjectNotFound)),
            (dt(other.clone(), write), Read, &public, Ok(())),
            (dt(other.clone(), write), Write, &public, Err(Denied::Forbidden)),
        ];
        for (principal, action, project, expected) in table {
            assert_eq!(
                decide(&principal, action, project, &[]),
                expected,
                "{principal:?} {action:?}"
            );
        }
    }
}
