//! The access vocabulary: roles, token scopes and kinds, visibility, membership targets.

use std::fmt;
use std::str::FromStr;

/// A member's role, ordered from least to most powerful (GitLab's access levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Guest,
    Reporter,
    Developer,
    Maintainer,
    Owner,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Guest,
        Role::Reporter,
        Role::Developer,
        Role::Maintainer,
        Role::Owner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Reporter => "reporter",
            Role::Developer => "developer",
            Role::Maintainer => "maintainer",
            Role::Owner => "owner",
        }
    }

    /// GitLab's numeric access level (10, 20, 30, 40, 50).
    pub fn access_level(self) -> i64 {
        match self {
            Role::Guest => 10,
            Role::Reporter => 20,
            Role::Developer => 30,
            Role::Maintainer => 40,
            Role::Owner => 50,
        }
    }

    pub fn from_access_level(level: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.access_level() == level)
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?} (guest|reporter|developer|maintainer|owner)")
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Api,
    ReadApi,
    ReadPackageRegistry,
    WritePackageRegistry,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Api => "api",
            Scope::ReadApi => "read_api",
            Scope::ReadPackageRegistry => "read_package_registry",
            Scope::WritePackageRegistry => "write_package_registry",
        }
    }

    /// Scopes a token of `kind` may carry.
    pub fn allowed_for(kind: TokenKind) -> &'static [Scope] {
        match kind {
            TokenKind::Personal => &[Scope::Api, Scope::ReadApi],
            TokenKind::Deploy => &[Scope::ReadPackageRegistry, Scope::WritePackageRegistry],
            TokenKind::Job => &[Scope::Api],
        }
    }

    /// `api,read_api` → scopes; the empty list and unknown names are refused.
    pub fn parse_list(list: &str) -> Result<Vec<Scope>, String> {
        let mut out = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let scope: Scope = part.parse()?;
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        if out.is_empty() {
            return Err("at least one scope is required".into());
        }
        Ok(out)
    }

    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api" => Ok(Scope::Api),
            "read_api" => Ok(Scope::ReadApi),
            "read_package_registry" => Ok(Scope::ReadPackageRegistry),
            "write_package_registry" => Ok(Scope::WritePackageRegistry),
            other => Err(format!("unknown scope {other:?}")),
        }
    }
}

/// The three kinds of token GitLab clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Personal,
    Deploy,
    Job,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Personal => "personal",
            TokenKind::Deploy => "deploy",
            TokenKind::Job => "job",
        }
    }

    /// Prefix of every secret of this kind, so a leaked token is easy to recognise.
    pub fn secret_prefix(self) -> &'static str {
        match self {
            TokenKind::Personal => "dpat-",
            TokenKind::Deploy => "ddt-",
            TokenKind::Job => "djt-",
        }
    }
}

impl FromStr for TokenKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "personal" => Ok(TokenKind::Personal),
            "deploy" => Ok(TokenKind::Deploy),
            "job" => Ok(TokenKind::Job),
            other => Err(format!("unknown token kind {other:?}")),
        }
    }
}

/// Who may read a project without being a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }
}

impl FromStr for Visibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "private" => Ok(Visibility::Private),
            "public" => Ok(Visibility::Public),
            other => Err(format!("unknown visibility {other:?}")),
        }
    }
}

/// What a membership (or a deploy token) is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MembershipTarget {
    /// A group by full path; applies to every project and subgroup under it.
    Group(String),
    /// One project by id.
    Project(i64),
}

impl MembershipTarget {
    /// The stored form, shared by every store: `("group", path)` or `("project", id)`.
    pub fn to_parts(&self) -> (&'static str, String) {
        match self {
            MembershipTarget::Group(path) => ("group", path.clone()),
            MembershipTarget::Project(id) => ("project", id.to_string()),
        }
    }

    /// Back from [`to_parts`](Self::to_parts); `None` for anything else.
    pub fn from_parts(kind: &str, value: &str) -> Option<Self> {
        match kind {
            "group" => Some(MembershipTarget::Group(value.to_string())),
            "project" => value.parse().ok().map(MembershipTarget::Project),
            _ => None,
        }
    }

    /// Does this target cover the project `project_id` living in namespace `namespace_path`?
    pub fn covers(&self, project_id: i64, namespace_path: &str) -> bool {
        match self {
            MembershipTarget::Project(id) => *id == project_id,
            MembershipTarget::Group(path) => {
                namespace_path == path
                    || namespace_path
                        .strip_prefix(path.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }

    /// Does this target cover the group at `group_path` (itself or an ancestor of it)?
    pub fn covers_group(&self, group_path: &str) -> bool {
        match self {
            MembershipTarget::Project(_) => false,
            MembershipTarget::Group(_) => self.covers(i64::MIN, group_path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_round_trip() {
        assert!(Role::Guest < Role::Reporter && Role::Developer < Role::Maintainer);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(Role::from_access_level(role.access_level()), Some(role));
        }
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn scope_lists() {
        assert_eq!(
            Scope::parse_list("api,read_api").unwrap(),
            vec![Scope::Api, Scope::ReadApi]
        );
        assert_eq!(Scope::parse_list("api,api").unwrap(), vec![Scope::Api]);
        assert!(Scope::parse_list("").is_err());
        assert!(Scope::parse_list("sudo").is_err());
        assert_eq!(Scope::join(&[Scope::Api, Scope::ReadApi]), "api,read_api");
    }

    #[test]
    fn group_targets_cover_subgroups_but_not_siblings() {
        let g = MembershipTarget::Group("demo".into());
        assert!(g.covers(1, "demo"));
        assert!(g.covers(1, "demo/sub"));
        assert!(!g.covers(1, "demo2"));
        assert!(!g.covers(1, "other/demo"));
        assert!(MembershipTarget::Project(7).covers(7, "x"));
        assert!(!MembershipTarget::Project(7).covers(8, "x"));
    }

    #[test]
    fn targets_round_trip_through_their_stored_parts() {
        for t in [
            MembershipTarget::Group("a/b".into()),
            MembershipTarget::Project(42),
        ] {
            let (kind, value) = t.to_parts();
            assert_eq!(MembershipTarget::from_parts(kind, &value), Some(t));
        }
        assert_eq!(MembershipTarget::from_parts("project", "x"), None);
        assert_eq!(MembershipTarget::from_parts("user", "1"), None);
    }
}
