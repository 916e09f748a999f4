//! Items of who is who: groups (with their package settings), projects, users, memberships,
//! tokens, and the alias items that find them by path, name or id.

use crate::domain::{
    Group, GroupSettings, Membership, MembershipTarget, Project, Role, Scope, Timestamp, Token,
    TokenGrant, TokenParts, User,
};
use crate::store::StoreResult;
use crate::store::dynamo::keys::{self, Key, NS_PK, NS_SK};
use crate::store::dynamo::schema::{Fields, Item, ItemWriter, s};
use aws_sdk_dynamodb::types::AttributeValue;

/// The attribute an alias item keeps the id of what it names in.
const ALIAS_ID: &str = "id";

pub fn group_item(g: &Group) -> Item {
    ItemWriter::new(&Key::group(g.id))
        .n("id", g.id)
        .s("path", &g.path)
        .opt_n("parent_id", g.parent_id)
        .n("created_at", g.created_at.millis())
        .build()
}

pub fn group_from(item: &Item) -> StoreResult<Group> {
    let f = Fields::of(item)?;
    Ok(Group {
        id: f.n("id")?,
        path: f.s("path")?,
        parent_id: f.opt_n("parent_id"),
        created_at: Timestamp::from_millis(f.n("created_at")?),
    })
}

/// The group item's settings attributes (written as a whole, so both or neither are there).
pub const DUPLICATES_ALLOWED: &str = "generic_duplicates_allowed";
pub const DUPLICATE_EXCEPTION_REGEX: &str = "generic_duplicate_exception_regex";

/// The settings as the group item's attributes (set by an update of the group item).
pub fn settings_attributes(settings: &GroupSettings) -> [(&'static str, AttributeValue); 2] {
    [
        (
            DUPLICATES_ALLOWED,
            AttributeValue::Bool(settings.generic_duplicates_allowed),
        ),
        (
            DUPLICATE_EXCEPTION_REGEX,
            s(&settings.generic_duplicate_exception_regex),
        ),
    ]
}

/// The settings a group item holds; `None` when they were never set.
pub fn settings_from(group: &Item) -> StoreResult<Option<GroupSettings>> {
    let f = Fields::of(group)?;
    let Some(allowed) = f.opt_bool(DUPLICATES_ALLOWED) else {
        return Ok(None);
    };
    Ok(Some(GroupSettings {
        generic_duplicates_allowed: allowed,
        generic_duplicate_exception_regex: f.opt_s(DUPLICATE_EXCEPTION_REGEX).unwrap_or_default(),
    }))
}

/// An alias (`key`: a group path, project path or username) of the entity with `id`.
pub fn alias_item(key: &Key, id: i64) -> Item {
    ItemWriter::new(key).n(ALIAS_ID, id).build()
}

pub fn alias_id(alias: &Item) -> StoreResult<i64> {
    Fields::of(alias)?.n(ALIAS_ID)
}

pub fn project_item(p: &Project) -> Item {
    ItemWriter::new(&Key::project(p.id))
        .n("id", p.id)
        .s("name", &p.name)
        .s("path", &p.path_with_namespace)
        .n("namespace_id", p.namespace_id)
        .s("visibility", p.visibility.as_str())
        .n("created_at", p.created_at.millis())
        .s(NS_PK, keys::namespace_pk(&p.path_with_namespace))
        .s(NS_SK, &p.path_with_namespace)
        .build()
}

pub fn project_from(item: &Item) -> StoreResult<Project> {
    let f = Fields::of(item)?;
    Ok(Project {
        id: f.n("id")?,
        name: f.s("name")?,
        path_with_namespace: f.s("path")?,
        namespace_id: f.n("namespace_id")?,
        visibility: f.parse("visibility")?,
        created_at: Timestamp::from_millis(f.n("created_at")?),
    })
}

pub fn user_item(u: &User) -> Item {
    ItemWriter::new(&Key::user(u.id))
        .n("id", u.id)
        .s("username", &u.username)
        .bool("admin", u.admin)
        .n("created_at", u.created_at.millis())
        .build()
}

pub fn user_from(item: &Item) -> StoreResult<User> {
    let f = Fields::of(item)?;
    Ok(User {
        id: f.n("id")?,
        username: f.s("username")?,
        admin: f.bool("admin"),
        created_at: Timestamp::from_millis(f.n("created_at")?),
    })
}

/// A membership is its key (user and target) plus the role.
pub fn membership_item(m: &Membership) -> Item {
    ItemWriter::new(&Key::membership(m.user_id, &m.target))
        .n("access_level", m.role.access_level())
        .build()
}

pub fn membership_from(item: &Item) -> StoreResult<Membership> {
    let f = Fields::of(item)?;
    let (user_id, target) = Key::of(item)?
        .parse_membership()
        .ok_or_else(|| f.corrupt("not a membership key"))?;
    let level = f.n("access_level")?;
    let role = Role::from_access_level(level)
        .ok_or_else(|| f.corrupt(format!("access_level {level} is no role")))?;
    Ok(Membership {
        user_id,
        target,
        role,
    })
}

pub fn token_item(t: &Token) -> Item {
    let parts = t.grant.to_parts();
    let target = parts.target.as_ref().map(MembershipTarget::to_parts);
    ItemWriter::new(&Key::token(&t.sha256))
        .n("id", t.id)
        .s("kind", parts.kind.as_str())
        .s("sha256", hex::encode(t.sha256))
        .s("scopes", Scope::join(&parts.scopes))
        .bool("revoked", t.revoked)
        .n("created_at", t.created_at.millis())
        .opt_n("user_id", parts.user_id)
        .opt_s("name", (!t.name.is_empty()).then_some(t.name.as_str()))
        .opt_n("last_used_at", t.last_used_at.map(Timestamp::millis))
        .opt_n("expires_at", t.expires_at.map(Timestamp::millis))
        .opt_s("target_kind", target.as_ref().map(|(kind, _)| *kind))
        .opt_s("target", target.map(|(_, value)| value))
        .build()
}

pub fn token_from(item: &Item) -> StoreResult<Token> {
    let f = Fields::of(item)?;
    let target = match (f.opt_s("target_kind"), f.opt_s("target")) {
        (Some(kind), Some(value)) => Some(
            MembershipTarget::from_parts(&kind, &value)
                .ok_or_else(|| f.corrupt(format!("token target {kind} {value:?}")))?,
        ),
        _ => None,
    };
    let parts = TokenParts {
        kind: f.parse("kind")?,
        scopes: f.checked("scopes", Scope::parse_list)?,
        user_id: f.opt_n("user_id"),
        target,
    };
    let kind = parts.kind;
    Ok(Token {
        id: f.n("id")?,
        sha256: f.checked("sha256", sha256_from_hex)?,
        grant: TokenGrant::from_parts(parts)
            .ok_or_else(|| f.corrupt(format!("a {} token lacks its owner", kind.as_str())))?,
        expires_at: f.opt_n("expires_at").map(Timestamp::from_millis),
        revoked: f.bool("revoked"),
        created_at: Timestamp::from_millis(f.n("created_at")?),
        name: f.opt_s("name").unwrap_or_default(),
        last_used_at: f.opt_n("last_used_at").map(Timestamp::from_millis),
    })
}

pub(super) fn sha256_from_hex(hex: &str) -> Result<[u8; 32], ()> {
    hex::decode(hex).map_err(|_| ())?.try_into().map_err(|_| ())
}

/// The token id alias: the id names the hash the token is stored under.
pub fn token_alias_item(id: i64, sha256: &[u8; 32]) -> Item {
    ItemWriter::new(&Key::token_id(id))
        .s("sha256", hex::encode(sha256))
        .build()
}

pub fn token_alias_sha256(alias: &Item) -> StoreResult<[u8; 32]> {
    Fields::of(alias)?.checked("sha256", sha256_from_hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Visibility;
    use crate::store::StoreError;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + ms)
    }

    #[test]
    fn groups_and_their_settings_round_trip() {
        for parent_id in [None, Some(1)] {
            let g = Group {
                id: 2,
                path: "a/b".into(),
                parent_id,
                created_at: at(1),
            };
            let mut item = group_item(&g);
            assert_eq!(group_from(&item).unwrap(), g);
            // A group never given settings has none (the registry applies the defaults).
            assert_eq!(settings_from(&item).unwrap(), None);
            let settings = GroupSettings {
                generic_duplicates_allowed: false,
                generic_duplicate_exception_regex: "-SNAPSHOT$".into(),
            };
            for (name, value) in settings_attributes(&settings) {
                item.insert(name.into(), value);
            }
            assert_eq!(settings_from(&item).unwrap(), Some(settings));
            assert_eq!(group_from(&item).unwrap(), g);
        }
    }

    #[test]
    fn aliases_round_trip() {
        let item = alias_item(&Key::group_path("a/b"), 2);
        assert_eq!(Key::of(&item).unwrap(), Key::group_path("a/b"));
        assert_eq!(alias_id(&item).unwrap(), 2);
        let item = token_alias_item(5, &[7; 32]);
        assert_eq!(Key::of(&item).unwrap(), Key::token_id(5));
        assert_eq!(token_alias_sha256(&item).unwrap(), [7; 32]);
    }

    #[test]
    fn projects_and_users_round_trip() {
        let p = Project {
            id: 9,
            name: "tool".into(),
            path_with_namespace: "a/b/tool".into(),
            namespace_id: 2,
            visibility: Visibility::Public,
            created_at: at(2),
        };
        let item = project_item(&p);
        assert_eq!(project_from(&item).unwrap(), p);
        assert_eq!(item.get(NS_PK), Some(&s("NS#a")));
        for admin in [false, true] {
            let u = User {
                id: 3,
                username: "ann".into(),
                admin,
                created_at: at(3),
            };
            assert_eq!(user_from(&user_item(&u)).unwrap(), u);
        }
    }

    #[test]
    fn memberships_round_trip() {
        for target in [
            MembershipTarget::Group("a/b".into()),
            MembershipTarget::Project(9),
        ] {
            let m = Membership {
                user_id: 3,
                target,
                role: Role::Maintainer,
            };
            assert_eq!(membership_from(&membership_item(&m)).unwrap(), m);
        }
    }

    #[test]
    fn tokens_round_trip() {
        let full = Token {
            id: 5,
            sha256: [0xab; 32],
            grant: TokenGrant::Deploy {
                target: MembershipTarget::Group("a".into()),
                scopes: vec![Scope::ReadPackageRegistry, Scope::WritePackageRegistry],
            },
            expires_at: Some(at(9)),
            revoked: true,
            created_at: at(4),
            name: "ci".into(),
            last_used_at: Some(at(5)),
        };
        assert_eq!(token_from(&token_item(&full)).unwrap(), full);
        let job = Token {
            grant: TokenGrant::Job {
                user_id: 3,
                project_id: 8,
            },
            expires_at: None,
            revoked: false,
            ..full.clone()
        };
        assert_eq!(token_from(&token_item(&job)).unwrap(), job);
        let bare = Token {
            grant: TokenGrant::Personal {
                user_id: 3,
                scopes: vec![Scope::Api],
            },
            expires_at: None,
            revoked: false,
            name: String::new(),
            last_used_at: None,
            ..full
        };
        assert_eq!(token_from(&token_item(&bare)).unwrap(), bare);
    }

    #[test]
    fn a_corrupt_token_names_its_item() {
        let mut item = token_item(&Token {
            id: 5,
            sha256: [1; 32],
            grant: TokenGrant::Personal {
                user_id: 3,
                scopes: vec![Scope::Api],
            },
            expires_at: None,
            revoked: false,
            created_at: at(0),
            name: String::new(),
            last_used_at: None,
        });
        item.insert("scopes".into(), s("fly"));
        let Err(StoreError::Corrupt { key, .. }) = token_from(&item) else {
            panic!("corrupt scopes decoded");
        };
        assert_eq!(key, format!("TOKEN#{}/TOKEN", "01".repeat(32)));
    }
}
