//! The keys that find people's records the other way round: every group and project (the
//! directory), a project's or group's members, an owner's tokens, and trust rules by target,
//! issuer and id. Each is written beside the record it mirrors, in the same transaction.

use super::{Key, Partition, padded};
use crate::domain::{MembershipTarget, TokenOwner};

/// What the directory lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directory {
    Groups,
    Projects,
    Users,
}

impl Directory {
    fn pk(self) -> &'static str {
        match self {
            Directory::Groups => "DIR#GROUP",
            Directory::Projects => "DIR#PROJECT",
            Directory::Users => "DIR#USER",
        }
    }
}

fn target_pk(prefix: &str, target: &MembershipTarget) -> String {
    let (kind, value) = target.to_parts();
    format!("{prefix}#{kind}#{value}")
}

fn owner_pk(owner: &TokenOwner) -> String {
    match owner {
        TokenOwner::User(id) => format!("TOKENS#USER#{id}"),
        TokenOwner::Target(target) => target_pk("TOKENS", target),
    }
}

const RULE: &str = "RULE#";

impl Key {
    /// The directory's copy of a group or project.
    pub fn listed(kind: Directory, id: i64) -> Self {
        Key::new(kind.pk(), padded(id))
    }

    /// A member of `target`, mirroring the membership under the user.
    pub fn member(target: &MembershipTarget, user_id: i64) -> Self {
        Key::new(
            target_pk("MEMBERS", target),
            format!("USER#{}", padded(user_id)),
        )
    }

    /// A token as its owner's list names it.
    pub fn owned_token(owner: &TokenOwner, token_id: i64) -> Self {
        Key::new(owner_pk(owner), format!("TOKEN#{}", padded(token_id)))
    }

    pub fn trust_rule(target: &MembershipTarget, id: i64) -> Self {
        Key::new(target_pk("TRUST", target), format!("{RULE}{}", padded(id)))
    }

    pub fn issuer_rule(issuer: &str, id: i64) -> Self {
        Key::new(format!("ISSUER#{issuer}"), format!("{RULE}{}", padded(id)))
    }

    pub fn trust_rule_id(id: i64) -> Self {
        Key::new(format!("TRUSTID#{id}"), "RULE")
    }
}

impl Partition {
    pub fn directory(kind: Directory) -> Self {
        Partition::new(kind.pk(), None)
    }

    pub fn members(target: &MembershipTarget) -> Self {
        Partition::new(target_pk("MEMBERS", target), Some("USER#".into()))
    }

    pub fn owned_tokens(owner: &TokenOwner) -> Self {
        Partition::new(owner_pk(owner), Some("TOKEN#".into()))
    }

    pub fn trust_rules(target: &MembershipTarget) -> Self {
        Partition::new(target_pk("TRUST", target), Some(RULE.into()))
    }

    pub fn issuer_rules(issuer: &str) -> Self {
        Partition::new(format!("ISSUER#{issuer}"), Some(RULE.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_keys_are_pinned() {
        let g = MembershipTarget::Group("a/b".into());
        let p = MembershipTarget::Project(7);
        let key = |k: Key| k.to_string();
        assert_eq!(
            key(Key::listed(Directory::Groups, 3)),
            "DIR#GROUP/00000000000000000003"
        );
        assert_eq!(
            key(Key::listed(Directory::Projects, 3)),
            "DIR#PROJECT/00000000000000000003"
        );
        assert_eq!(
            key(Key::member(&g, 5)),
            "MEMBERS#group#a/b/USER#00000000000000000005"
        );
        assert_eq!(
            key(Key::owned_token(&TokenOwner::User(5), 9)),
            "TOKENS#USER#5/TOKEN#00000000000000000009"
        );
        assert_eq!(
            key(Key::owned_token(&TokenOwner::Target(p.clone()), 9)),
            "TOKENS#project#7/TOKEN#00000000000000000009"
        );
        assert_eq!(
            key(Key::trust_rule(&p, 2)),
            "TRUST#project#7/RULE#00000000000000000002"
        );
        assert_eq!(
            key(Key::issuer_rule("https://x", 2)),
            "ISSUER#https://x/RULE#00000000000000000002"
        );
        assert_eq!(key(Key::trust_rule_id(2)), "TRUSTID#2/RULE");
        assert_eq!(Partition::members(&p).pk, "MEMBERS#project#7");
        assert_eq!(Partition::issuer_rules("https://x").pk, "ISSUER#https://x");
    }
}
