//! Every key of the DynamoDB table, built here and nowhere else: the `PK`/`SK` of each item,
//! the partitions (and sort-key prefixes) that queries read, and the keys of the list and
//! namespace indexes. The tests pin the exact strings: existing tables hold them, so a change
//! here is a change of the stored layout.
//!
//! | item | PK | SK |
//! |---|---|---|
//! | id counter | `COUNTER` | `<entity>` (atomic `ADD`) |
//! | id slot lease | `IDSLOT#<0..1023>` | `SLOT` (owner, `until_ms`) |
//! | group | `GROUP#<id>` | `META` (with its package settings) |
//! | group path alias | `GROUPPATH#<path>` | `GROUP` |
//! | project | `PROJECT#<id>` | `META` |
//! | project path alias | `PATH#<full_path>` | `PROJECT` |
//! | user / username alias | `USER#<id>` / `USERNAME#<name>` | `META` / `USER` |
//! | membership | `USER#<id>` | `MEMBER#<group|project>#<target>` |
//! | token / id alias | `TOKEN#<sha256>` / `TOKENID#<id>` | `TOKEN` |
//! | directory of groups / projects / users | `DIR#GROUP` / `DIR#PROJECT` / `DIR#USER` | `<zero-padded id>` (a copy) |
//! | member (reverse of membership) | `MEMBERS#<group|project>#<target>` | `USER#<zero-padded id>` |
//! | token of an owner | `TOKENS#USER#<id>` / `TOKENS#<group|project>#<target>` | `TOKEN#<zero-padded id>` |
//! | trust rule, by target / issuer / id | `TRUST#<group|project>#<target>` / `ISSUER#<iss>` / `TRUSTID#<id>` | `RULE#<zero-padded id>` / same / `RULE` |
//! | package | `PROJECT#<id>` | `PKG#<name>#<version>` |
//! | package id alias | `PACKAGE#<id>` | `PACKAGE` (project id + package SK) |
//! | file | `PKG#<package_id>` | `FILE#<file_name>#<zero-padded file id>` (newest: one descending query) |
//! | file-name guard | `PKG#<package_id>` | `NAME#<file_name>` (exists while a live file has that name) |
//! | deleted package | `PROJECT#<id>` | `DELETED#<package id>` (moved out of its name/version slot) |
//! | blob reference | `BLOB#<blob key>` | `REF#<file id>` (one per file record naming the blob) |
//! | purge queue | `PURGE` | `PKG#<package id>` / `FILE#<file id>` (pending destruction) |
//! | upload session | `UPLOAD#<session id>` | `SESSION` |
//! | web session | `WEBSESSION#<sha256 of its id>` | `SESSION` (TTL: gone soon after it expires) |
//! | event carrier (a delete's event) | `EVENT#<event id>` | `EVENT` (TTL: a day) |
//! | audit entry | `AUDIT#<project id>` / `AUDIT#ALL` | `<zero-padded ms>#<event id>` (TTL: retention) |
//!
//! Package items also carry the list index keys: `LIST_PK` = `LIST#<project id>#<status>` and
//! one sort key per order, `BY_CREATED` = `<created_at ms, 13 digits>#<id, 20 digits>`,
//! `BY_NAME` = `<name>#<version>#<id>` (deleted packages only: live ones are listed by name
//! from their own `PKG#` range), `BY_VERSION` = `<version>#<id>`. Every character allowed
//! in a name or version sorts after `#`, so these sort exactly like the (name, version, id)
//! tuples the SQL store orders by. Project items carry `NS_PK` = `NS#<top-level group>` and
//! `NS_SK` = their full path, so a group's projects (with subgroups) are one Query.
//!
//! Names, versions and file names cannot contain `#`, so the keys are unambiguous.

use super::schema::{Item, s};
use crate::domain::{
    FileName, MembershipTarget, PackageName, PackageStatus, PackageVersion, Timestamp,
};
use crate::store::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::fmt;

mod events;
mod lifecycle;
mod people;

pub use events::{audit_sk_from, audit_sk_to};
pub use people::Directory;

/// The table's partition and sort key attributes.
pub const PK: &str = "PK";
pub const SK: &str = "SK";
/// The attributes the list indexes are keyed by (on package items).
pub const LIST_PK: &str = "LIST_PK";
pub const BY_CREATED: &str = "BY_CREATED";
pub const BY_NAME: &str = "BY_NAME";
pub const BY_VERSION: &str = "BY_VERSION";
/// The attributes the namespace index is keyed by (on project items).
pub const NS_PK: &str = "NS_PK";
pub const NS_SK: &str = "NS_SK";

/// The key of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

/// The entities that draw ids from a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Group,
    Project,
    User,
    Token,
    Package,
    File,
    TrustRule,
    ProtectionRule,
}

impl Counter {
    fn name(self) -> &'static str {
        match self {
            Counter::Group => "group",
            Counter::Project => "project",
            Counter::User => "user",
            Counter::Token => "token",
            Counter::Package => "package",
            Counter::File => "package_file",
            Counter::TrustRule => "trust_rule",
            Counter::ProtectionRule => "protection_rule",
        }
    }
}

/// Zero-padded so that ids sort as numbers within a sort key.
fn padded(id: i64) -> String {
    format!("{id:020}")
}

const COUNTER: &str = "COUNTER";
const PURGE: &str = "PURGE";
const MEMBER: &str = "MEMBER#";
const FILE: &str = "FILE#";
const FILE_DOWNLOADS: &str = "DOWNLOADS#";
const PURGE_PACKAGE: &str = "PKG#";
/// The sort-key prefixes of live and deleted package items in a project's partition.
const PACKAGE_SLOT: &str = "PKG#";
const DELETED_SLOT: &str = "DELETED#";

impl Key {
    fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// A key as an item or an attribute recorded it (index rows, purge entries).
    pub fn stored(pk: String, sk: String) -> Self {
        Key { pk, sk }
    }

    /// The key of `item`; `Corrupt` if it has none.
    pub fn of(item: &Item) -> Result<Self, StoreError> {
        match (item.get(PK), item.get(SK)) {
            (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
                Ok(Key::stored(pk.clone(), sk.clone()))
            }
            _ => Err(StoreError::corrupt("?/?", "an item without PK and SK")),
        }
    }

    /// The key as the attributes of a request (`GetItem`, `DeleteItem`, `BatchGetItem`).
    pub fn item(&self) -> Item {
        Item::from([(PK.to_string(), s(&self.pk)), (SK.to_string(), s(&self.sk))])
    }

    pub fn counter(entity: Counter) -> Self {
        Key::new(COUNTER, entity.name())
    }

    /// An id slot's lease (`ids`).
    pub fn id_slot(slot: u64) -> Self {
        Key::new(format!("IDSLOT#{slot}"), "SLOT")
    }

    pub fn group(id: i64) -> Self {
        Key::new(format!("GROUP#{id}"), "META")
    }

    pub fn group_path(path: &str) -> Self {
        Key::new(format!("GROUPPATH#{path}"), "GROUP")
    }

    pub fn project(id: i64) -> Self {
        Key::new(format!("PROJECT#{id}"), "META")
    }

    pub fn project_path(full_path: &str) -> Self {
        Key::new(format!("PATH#{full_path}"), "PROJECT")
    }

    pub fn user(id: i64) -> Self {
        Key::new(format!("USER#{id}"), "META")
    }

    pub fn username(name: &str) -> Self {
        Key::new(format!("USERNAME#{name}"), "USER")
    }

    pub fn membership(user_id: i64, target: &MembershipTarget) -> Self {
        let (kind, value) = target.to_parts();
        Key::new(format!("USER#{user_id}"), format!("{MEMBER}{kind}#{value}"))
    }

    /// The user and target a membership key names; `None` if it is not one.
    pub fn parse_membership(&self) -> Option<(i64, MembershipTarget)> {
        let user_id = self.pk.strip_prefix("USER#")?.parse().ok()?;
        let (kind, value) = self.sk.strip_prefix(MEMBER)?.split_once('#')?;
        Some((user_id, MembershipTarget::from_parts(kind, value)?))
    }

    pub fn token(sha256: &[u8; 32]) -> Self {
        Key::new(format!("TOKEN#{}", hex::encode(sha256)), "TOKEN")
    }

    pub fn token_id(id: i64) -> Self {
        Key::new(format!("TOKENID#{id}"), "TOKEN")
    }

    /// The name/version slot of a live package.
    pub fn package(project_id: i64, name: &PackageName, version: &PackageVersion) -> Self {
        Key::new(
            format!("PROJECT#{project_id}"),
            format!("{PACKAGE_SLOT}{}#{}", name.as_str(), version.as_str()),
        )
    }

    /// Where a deleted package is kept until it is purged.
    pub fn deleted_package(project_id: i64, package_id: i64) -> Self {
        Key::new(
            format!("PROJECT#{project_id}"),
            format!("{DELETED_SLOT}{}", padded(package_id)),
        )
    }

    /// A package item under the sort key its id alias recorded (live or deleted).
    pub fn package_slot(project_id: i64, sk: String) -> Self {
        Key::new(format!("PROJECT#{project_id}"), sk)
    }

    pub fn package_id(id: i64) -> Self {
        Key::new(format!("PACKAGE#{id}"), "PACKAGE")
    }

    pub fn file(package_id: i64, file_name: &FileName, file_id: i64) -> Self {
        Key::new(
            format!("PKG#{package_id}"),
            format!("{FILE}{}#{}", file_name.as_str(), padded(file_id)),
        )
    }

    /// Exists while a live file of the package has that name (the duplicate rule's guard).
    /// The downloads counted of a file, beside its item in its package's partition (a small
    /// item: counting rewrites it, not the file's, which may hold the file's bytes).
    pub fn file_downloads(package_id: i64, file_id: i64) -> Self {
        Key::new(
            format!("PKG#{package_id}"),
            format!("{FILE_DOWNLOADS}{}", padded(file_id)),
        )
    }

    pub fn file_name_guard(package_id: i64, file_name: &FileName) -> Self {
        Key::new(
            format!("PKG#{package_id}"),
            format!("NAME#{}", file_name.as_str()),
        )
    }

    /// One per file record naming the blob, so a blob is kept while any record names it.
    pub fn blob_ref(blob_key: &str, file_id: i64) -> Self {
        Key::new(
            format!("BLOB#{blob_key}"),
            format!("REF#{}", padded(file_id)),
        )
    }

    pub fn purge_package(package_id: i64) -> Self {
        Key::new(PURGE, format!("{PURGE_PACKAGE}{}", padded(package_id)))
    }

    pub fn purge_file(file_id: i64) -> Self {
        Key::new(PURGE, format!("{FILE}{}", padded(file_id)))
    }

    pub fn session(id: &str) -> Self {
        Key::new(format!("UPLOAD#{id}"), "SESSION")
    }

    /// A signed-in web session, by the hash of its id.
    pub fn web_session(sha256: &[u8; 32]) -> Self {
        Key::new(format!("WEBSESSION#{}", hex::encode(sha256)), "SESSION")
    }
}

/// `PK/SK`, as a corrupt item is named in errors.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.pk, self.sk)
    }
}

/// What one Query on the table reads: a partition, or the part of it whose sort keys start
/// with `sk_prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Partition {
    pub pk: String,
    pub sk_prefix: Option<String>,
}

impl Partition {
    fn new(pk: impl Into<String>, sk_prefix: Option<String>) -> Self {
        Partition {
            pk: pk.into(),
            sk_prefix,
        }
    }

    /// Every id counter (any of them means something was provisioned).
    pub fn counters() -> Self {
        Partition::new(COUNTER, None)
    }

    pub fn memberships(user_id: i64) -> Self {
        Partition::new(format!("USER#{user_id}"), Some(MEMBER.into()))
    }

    /// A package's files (only those named `name`, if given), in id order within a name.
    pub fn files(package_id: i64, name: Option<&FileName>) -> Self {
        let prefix = match name {
            Some(name) => format!("{FILE}{}#", name.as_str()),
            None => FILE.to_string(),
        };
        Partition::new(format!("PKG#{package_id}"), Some(prefix))
    }

    /// Everything under a package: its files and file-name guards.
    pub fn package_contents(package_id: i64) -> Self {
        Partition::new(format!("PKG#{package_id}"), None)
    }

    /// The range of a project's partition that holds the package item at `key` and its
    /// siblings: every live package (`PKG#`) or every deleted one (`DELETED#`). `None` if
    /// `key` is not a package item's.
    pub fn package_range_of(key: &Key) -> Option<Self> {
        if !key.pk.starts_with("PROJECT#") {
            return None;
        }
        [PACKAGE_SLOT, DELETED_SLOT]
            .into_iter()
            .find(|prefix| key.sk.starts_with(prefix))
            .map(|prefix| Partition::new(key.pk.clone(), Some(prefix.into())))
    }

    /// A project's live packages, in name and version order.
    pub fn live_packages(project_id: i64) -> Self {
        Partition::new(format!("PROJECT#{project_id}"), Some(PACKAGE_SLOT.into()))
    }

    /// The references to a blob.
    pub fn blob_refs(blob_key: &str) -> Self {
        Partition::new(format!("BLOB#{blob_key}"), None)
    }

    /// Packages pending destruction.
    pub fn purge_packages() -> Self {
        Partition::new(PURGE, Some(PURGE_PACKAGE.into()))
    }

    /// Files pending destruction.
    pub fn purge_files() -> Self {
        Partition::new(PURGE, Some(FILE.into()))
    }
}

/// `LIST_PK`: the list index partition of a project's packages of one status.
pub fn list_pk(project_id: i64, status: PackageStatus) -> String {
    format!("LIST#{project_id}#{}", status.as_str())
}

/// `BY_CREATED`: 13 digits of milliseconds cover every date until the year 2286.
pub fn by_created(created_at: Timestamp, package_id: i64) -> String {
    format!("{:013}#{}", created_at.millis(), padded(package_id))
}

pub fn by_name(name: &PackageName, version: &PackageVersion, package_id: i64) -> String {
    format!(
        "{}#{}#{}",
        name.as_str(),
        version.as_str(),
        padded(package_id)
    )
}

pub fn by_version(version: &PackageVersion, package_id: i64) -> String {
    format!("{}#{}", version.as_str(), padded(package_id))
}

/// `NS_PK`: the namespace index partition holding every project under the top-level group of
/// `path` (a group's or a project's full path).
pub fn namespace_pk(path: &str) -> String {
    let top = path.split('/').next().unwrap_or_default();
    format!("NS#{top}")
}

/// The `NS_SK` prefix of every project in group `group_path` or below it.
pub fn namespace_prefix(group_path: &str) -> String {
    format!("{group_path}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> (PackageName, PackageVersion, FileName) {
        (
            PackageName::parse("tool").unwrap(),
            PackageVersion::parse("1.2.3").unwrap(),
            FileName::parse(None, "tool.tar.gz").unwrap(),
        )
    }

    fn pinned(key: Key) -> String {
        key.to_string()
    }

    #[test]
    fn identity_keys_are_pinned() {
        assert_eq!(pinned(Key::counter(Counter::Group)), "COUNTER/group");
        assert_eq!(pinned(Key::counter(Counter::Project)), "COUNTER/project");
        assert_eq!(pinned(Key::counter(Counter::User)), "COUNTER/user");
        assert_eq!(pinned(Key::counter(Counter::Token)), "COUNTER/token");
        assert_eq!(pinned(Key::counter(Counter::Package)), "COUNTER/package");
        assert_eq!(pinned(Key::counter(Counter::File)), "COUNTER/package_file");
        assert_eq!(pinned(Key::id_slot(1023)), "IDSLOT#1023/SLOT");
        assert_eq!(pinned(Key::group(7)), "GROUP#7/META");
        assert_eq!(pinned(Key::group_path("a/b")), "GROUPPATH#a/b/GROUP");
        assert_eq!(pinned(Key::project(9)), "PROJECT#9/META");
        assert_eq!(pinned(Key::project_path("a/b/p")), "PATH#a/b/p/PROJECT");
        assert_eq!(pinned(Key::user(3)), "USER#3/META");
        assert_eq!(pinned(Key::username("ann")), "USERNAME#ann/USER");
        let group = MembershipTarget::Group("a/b".into());
        assert_eq!(
            pinned(Key::membership(3, &group)),
            "USER#3/MEMBER#group#a/b"
        );
        let project = MembershipTarget::Project(9);
        assert_eq!(
            pinned(Key::membership(3, &project)),
            "USER#3/MEMBER#project#9"
        );
        assert_eq!(
            pinned(Key::token(&[0xab; 32])),
            format!("TOKEN#{}/TOKEN", "ab".repeat(32))
        );
        assert_eq!(pinned(Key::token_id(5)), "TOKENID#5/TOKEN");
    }

    #[test]
    fn package_keys_are_pinned() {
        let (n, v, f) = name();
        assert_eq!(pinned(Key::package(9, &n, &v)), "PROJECT#9/PKG#tool#1.2.3");
        assert_eq!(
            pinned(Key::deleted_package(9, 42)),
            "PROJECT#9/DELETED#00000000000000000042"
        );
        assert_eq!(
            pinned(Key::package_slot(9, "PKG#tool#1.2.3".into())),
            "PROJECT#9/PKG#tool#1.2.3"
        );
        assert_eq!(pinned(Key::package_id(42)), "PACKAGE#42/PACKAGE");
        assert_eq!(
            pinned(Key::file(42, &f, 8)),
            "PKG#42/FILE#tool.tar.gz#00000000000000000008"
        );
        assert_eq!(
            pinned(Key::file_name_guard(42, &f)),
            "PKG#42/NAME#tool.tar.gz"
        );
        assert_eq!(
            pinned(Key::blob_ref("blobs/00ff", 8)),
            "BLOB#blobs/00ff/REF#00000000000000000008"
        );
        assert_eq!(
            pinned(Key::purge_package(42)),
            "PURGE/PKG#00000000000000000042"
        );
        assert_eq!(
            pinned(Key::purge_file(8)),
            "PURGE/FILE#00000000000000000008"
        );
        assert_eq!(pinned(Key::session("00ff")), "UPLOAD#00ff/SESSION");
    }

    #[test]
    fn partitions_are_pinned() {
        let (_, _, f) = name();
        let p = |p: Partition| format!("{}/{}", p.pk, p.sk_prefix.unwrap_or_default());
        assert_eq!(p(Partition::counters()), "COUNTER/");
        assert_eq!(p(Partition::memberships(3)), "USER#3/MEMBER#");
        assert_eq!(p(Partition::files(42, None)), "PKG#42/FILE#");
        assert_eq!(
            p(Partition::files(42, Some(&f))),
            "PKG#42/FILE#tool.tar.gz#"
        );
        assert_eq!(p(Partition::package_contents(42)), "PKG#42/");
        assert_eq!(p(Partition::blob_refs("blobs/00ff")), "BLOB#blobs/00ff/");
        assert_eq!(p(Partition::purge_packages()), "PURGE/PKG#");
        assert_eq!(p(Partition::purge_files()), "PURGE/FILE#");
        // A package item lies in its range, live or deleted; other items lie in none.
        let live = Key::package(9, &name().0, &name().1);
        let deleted = Key::deleted_package(9, 42);
        for key in [&live, &deleted] {
            let range = Partition::package_range_of(key).unwrap();
            assert_eq!(range.pk, key.pk);
            assert!(key.sk.starts_with(range.sk_prefix.as_deref().unwrap()));
        }
        assert_eq!(
            p(Partition::package_range_of(&live).unwrap()),
            "PROJECT#9/PKG#"
        );
        assert_eq!(
            p(Partition::package_range_of(&deleted).unwrap()),
            "PROJECT#9/DELETED#"
        );
        assert_eq!(Partition::package_range_of(&Key::project(9)), None);
        assert_eq!(Partition::package_range_of(&Key::package_id(9)), None);
        // A file's key lies in its package's partition, under the prefix of its name.
        let file = Key::file(42, &f, 8);
        let files = Partition::files(42, Some(&f));
        assert_eq!(file.pk, files.pk);
        assert!(file.sk.starts_with(files.sk_prefix.as_deref().unwrap()));
    }

    #[test]
    fn index_keys_are_pinned() {
        let (n, v, _) = name();
        assert_eq!(list_pk(9, PackageStatus::Hidden), "LIST#9#hidden");
        assert_eq!(
            list_pk(9, PackageStatus::PendingDestruction),
            "LIST#9#pending_destruction"
        );
        assert_eq!(
            by_created(Timestamp::from_millis(1_700_000_000_000), 42),
            "1700000000000#00000000000000000042"
        );
        assert_eq!(by_name(&n, &v, 42), "tool#1.2.3#00000000000000000042");
        assert_eq!(by_version(&v, 42), "1.2.3#00000000000000000042");
        assert_eq!(namespace_pk("a/b/p"), "NS#a");
        assert_eq!(namespace_pk("a"), "NS#a");
        assert_eq!(namespace_prefix("a/b"), "a/b/");
    }

    #[test]
    fn membership_keys_parse_back() {
        for target in [
            MembershipTarget::Group("a/b".into()),
            MembershipTarget::Project(9),
        ] {
            let key = Key::membership(3, &target);
            assert_eq!(key.parse_membership(), Some((3, target)));
        }
        assert_eq!(Key::user(3).parse_membership(), None);
    }

    #[test]
    fn keys_read_back_from_items() {
        let key = Key::project(9);
        assert_eq!(Key::of(&key.item()).unwrap(), key);
        assert!(matches!(
            Key::of(&Item::new()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
