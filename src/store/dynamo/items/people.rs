//! Items that find people's records the other way round: the directory's copies of groups and
//! projects, a target's members, an owner's tokens, and trust rules (one item per way they are
//! found: by target, by issuer, by id; rules never change, so the copies cannot drift).

use super::identity::sha256_from_hex;
use crate::domain::{Membership, MembershipTarget, Role, Scope, Timestamp, TrustRule};
use crate::store::StoreResult;
use crate::store::dynamo::keys::{Key, NS_PK, NS_SK, PK, SK};
use crate::store::dynamo::schema::{Fields, Item, ItemWriter, s};

/// The directory's copy of a group's or project's item, under `key`: the same attributes
/// without the namespace index keys (the original is the one the index lists).
pub fn directory_item(entity: &Item, key: &Key) -> Item {
    let mut item = entity.clone();
    item.remove(NS_PK);
    item.remove(NS_SK);
    item.insert(PK.into(), s(&key.pk));
    item.insert(SK.into(), s(&key.sk));
    item
}

/// A member of a target (the mirror of the membership under its user).
pub fn member_item(m: &Membership) -> Item {
    ItemWriter::new(&Key::member(&m.target, m.user_id))
        .n("user_id", m.user_id)
        .n("access_level", m.role.access_level())
        .build()
}

pub fn member_from(target: &MembershipTarget, item: &Item) -> StoreResult<Membership> {
    let f = Fields::of(item)?;
    let level = f.n("access_level")?;
    Ok(Membership {
        user_id: f.n("user_id")?,
        target: target.clone(),
        role: Role::from_access_level(level)
            .ok_or_else(|| f.corrupt(format!("access_level {level} is no role")))?,
    })
}

/// An owner's entry for a token: the hash the token is stored under.
pub fn owned_token_item(key: &Key, sha256: &[u8; 32]) -> Item {
    ItemWriter::new(key)
        .s("sha256", hex::encode(sha256))
        .build()
}

pub fn owned_token_sha256(item: &Item) -> StoreResult<[u8; 32]> {
    Fields::of(item)?.checked("sha256", sha256_from_hex)
}

/// A trust rule, whole, under `key` (one of its three).
pub fn trust_rule_item(key: &Key, rule: &TrustRule) -> Item {
    let (kind, value) = rule.target.to_parts();
    ItemWriter::new(key)
        .n("id", rule.id)
        .s("target_kind", kind)
        .s("target", value)
        .s("issuer", &rule.issuer)
        .s("audience", &rule.audience)
        .s("conditions", TrustRule::conditions_json(&rule.conditions))
        .n("access_level", rule.role.access_level())
        .s("scopes", Scope::join(&rule.scopes))
        .n("created_at", rule.created_at.millis())
        .build()
}

pub fn trust_rule_from(item: &Item) -> StoreResult<TrustRule> {
    let f = Fields::of(item)?;
    let (kind, value) = (f.s("target_kind")?, f.s("target")?);
    let level = f.n("access_level")?;
    Ok(TrustRule {
        id: f.n("id")?,
        target: MembershipTarget::from_parts(&kind, &value)
            .ok_or_else(|| f.corrupt(format!("target {kind} {value:?}")))?,
        issuer: f.s("issuer")?,
        audience: f.s("audience")?,
        conditions: f.checked("conditions", TrustRule::conditions_from_json)?,
        role: Role::from_access_level(level)
            .ok_or_else(|| f.corrupt(format!("access_level {level} is no role")))?,
        scopes: f.checked("scopes", Scope::parse_list)?,
        created_at: Timestamp::from_millis(f.n("created_at")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ClaimCondition;

    #[test]
    fn people_items_round_trip() {
        let m = Membership {
            user_id: 4,
            target: MembershipTarget::Group("a".into()),
            role: Role::Owner,
        };
        assert_eq!(member_from(&m.target, &member_item(&m)).unwrap(), m);
        let key = Key::owned_token(&crate::domain::TokenOwner::User(4), 2);
        assert_eq!(
            owned_token_sha256(&owned_token_item(&key, &[9; 32])).unwrap(),
            [9; 32]
        );
        let rule = TrustRule {
            id: 2,
            target: MembershipTarget::Project(7),
            issuer: "https://gitlab.example.com".into(),
            audience: "depot".into(),
            conditions: vec![ClaimCondition::parse("ref=refs/tags/v*").unwrap()],
            role: Role::Developer,
            scopes: vec![Scope::Api],
            created_at: Timestamp::from_millis(1_700_000_000_000),
        };
        for key in [
            Key::trust_rule(&rule.target, 2),
            Key::issuer_rule(&rule.issuer, 2),
            Key::trust_rule_id(2),
        ] {
            assert_eq!(
                trust_rule_from(&trust_rule_item(&key, &rule)).unwrap(),
                rule
            );
        }
    }

    #[test]
    fn directory_copies_leave_the_namespace_index() {
        let mut entity = ItemWriter::new(&Key::project(3)).s("name", "x").build();
        entity.insert(NS_PK.into(), s("NS#a"));
        entity.insert(NS_SK.into(), s("a/x"));
        let key = Key::listed(crate::store::dynamo::keys::Directory::Projects, 3);
        let copy = directory_item(&entity, &key);
        assert_eq!(Key::of(&copy).unwrap(), key);
        assert!(!copy.contains_key(NS_PK) && !copy.contains_key(NS_SK));
        assert_eq!(copy.get("name"), Some(&s("x")));
    }
}
