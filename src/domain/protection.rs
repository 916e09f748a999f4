//! Package protection rules, GitLab's (`Packages::Protection::Rule`): a project's rule names a
//! package type and a name pattern (`*` matches any run of characters, the whole name,
//! case-insensitively) and the least role that may push and that may delete such packages.
//! A push or delete is protected when a rule matches and the caller's level is below the
//! rule's for that action; a deploy token is held back by any matching rule.

use super::{PackageName, Role};

/// The package types a rule may name (GitLab's list); depot's packages are all `generic`, so
/// rules of the other types are kept for GitLab's clients but protect nothing here.
pub const PACKAGE_TYPES: [&str; 9] = [
    "cargo",
    "conan",
    "generic",
    "helm",
    "maven",
    "npm",
    "nuget",
    "pypi",
    "terraform_module",
];

/// A pattern's longest form (GitLab's column limit).
pub const PATTERN_MAX_CHARS: usize = 255;

/// The least level a rule asks for: GitLab's `maintainer` (40), `owner` (50), `admin` (60).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProtectLevel {
    Maintainer,
    Owner,
    Admin,
}

impl ProtectLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectLevel::Maintainer => "maintainer",
            ProtectLevel::Owner => "owner",
            ProtectLevel::Admin => "admin",
        }
    }

    /// GitLab's number for it (40, 50, 60).
    pub fn access_level(self) -> i64 {
        match self {
            ProtectLevel::Maintainer => 40,
            ProtectLevel::Owner => 50,
            ProtectLevel::Admin => 60,
        }
    }

    pub fn from_access_level(level: i64) -> Option<Self> {
        [Self::Maintainer, Self::Owner, Self::Admin]
            .into_iter()
            .find(|l| l.access_level() == level)
    }

    /// The level for pushes: `maintainer`, `owner` or `admin`.
    pub fn for_push(s: &str) -> Option<Self> {
        [Self::Maintainer, Self::Owner, Self::Admin]
            .into_iter()
            .find(|l| l.as_str() == s)
    }

    /// The level for deletes: `owner` or `admin` (a Maintainer may delete anyway).
    pub fn for_delete(s: &str) -> Option<Self> {
        Self::for_push(s).filter(|l| *l != Self::Maintainer)
    }

    /// Does `level` reach this one? Roles reach up to `owner`; only an administrator reaches
    /// `admin`.
    fn reached_by(self, level: Level) -> bool {
        let needed = match self {
            ProtectLevel::Maintainer => Level::Role(Role::Maintainer),
            ProtectLevel::Owner => Level::Role(Role::Owner),
            ProtectLevel::Admin => Level::Admin,
        };
        level >= needed
    }
}

/// Who is asking, as a rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A deploy token (or anyone without a role): any matching rule holds it back.
    None,
    Role(Role),
    Admin,
}

/// What a rule may protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protected {
    Push,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectionRule {
    pub id: i64,
    pub project_id: i64,
    pub package_name_pattern: String,
    pub package_type: String,
    pub minimum_access_level_for_push: Option<ProtectLevel>,
    pub minimum_access_level_for_delete: Option<ProtectLevel>,
}

impl ProtectionRule {
    /// Does this rule cover a generic package named `name`?
    pub fn covers(&self, name: &PackageName) -> bool {
        self.package_type == "generic"
            && name_pattern_matches(&self.package_name_pattern, name.as_str())
    }

    /// Does it hold back `action` by someone at `level`? A deploy token (no level) is held
    /// back whatever the rule's levels, as in GitLab.
    pub fn protects(&self, action: Protected, level: Level) -> bool {
        if level == Level::None {
            return true;
        }
        let needed = match action {
            Protected::Push => self.minimum_access_level_for_push,
            Protected::Delete => self.minimum_access_level_for_delete,
        };
        needed.is_some_and(|needed| !needed.reached_by(level))
    }
}

/// `pattern` against `name` as GitLab's `ILIKE` with `*` as `%`: the whole name, ignoring
/// ASCII case, `*` for any run of characters (none too); everything else literal.
fn name_pattern_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let name: Vec<char> = name.to_ascii_lowercase().chars().collect();
    // Greedy with backtracking to the last star: linear in practice, bounded by the product.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_names_ignoring_case() {
        let cases = [
            ("tool", "tool", true),
            ("tool", "TOOL", true),
            ("tool", "tools", false),
            ("tool-*", "tool-prod", true),
            ("tool-*", "tool-", true),
            ("*tool", "my.tool", true),
            ("*", "anything", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a%b", "aXb", false),
            ("a_b", "aXb", false),
            ("a_b", "a_b", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(
                name_pattern_matches(pattern, name),
                expected,
                "{pattern} ~ {name}"
            );
        }
    }

    #[test]
    fn levels_hold_back_those_below() {
        let rule = ProtectionRule {
            id: 1,
            project_id: 1,
            package_name_pattern: "p*".into(),
            package_type: "generic".into(),
            minimum_access_level_for_push: Some(ProtectLevel::Owner),
            minimum_access_level_for_delete: None,
        };
        let maintainer = Level::Role(Role::Maintainer);
        assert!(rule.protects(Protected::Push, maintainer));
        assert!(!rule.protects(Protected::Push, Level::Role(Role::Owner)));
        assert!(!rule.protects(Protected::Push, Level::Admin));
        // No delete level: deletes are not held back, except a deploy token's.
        assert!(!rule.protects(Protected::Delete, maintainer));
        assert!(rule.protects(Protected::Delete, Level::None));
        assert!(rule.covers(&PackageName::parse("pkg").unwrap()));
        let npm = ProtectionRule {
            package_type: "npm".into(),
            ..rule
        };
        assert!(!npm.covers(&PackageName::parse("pkg").unwrap()));
        assert_eq!(ProtectLevel::for_delete("maintainer"), None);
        assert_eq!(ProtectLevel::for_push("developer"), None);
    }
}
