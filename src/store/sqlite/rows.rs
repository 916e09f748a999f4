//! Rows and records: the column list each query selects and the decoder that turns such a row
//! into a domain record. A value that does not decode is a corrupt row (`CorruptRow`, which
//! `db_err` reports as `StoreError::Corrupt` naming the table and row), never a caller error.

use crate::domain::{
    FileName, Group, GroupSettings, Membership, MembershipTarget, Package, PackageFile,
    PackageName, PackageStatus, PackageVersion, Project, Role, Scope, SessionState, StateParts,
    Timestamp, Token, TokenGrant, TokenKind, TokenParts, TrustRule, UploadSession, User,
};
use bytes::Bytes;
use rusqlite::Row;
use rusqlite::types::{Type, ValueRef};
use std::fmt::Display;

/// The stored status of deleted packages and files, written into SQL as a literal (not a
/// parameter) so the planner can use the partial index `packages_live`, whose condition names it.
pub(super) const DOOMED: &str = "pending_destruction";

/// A stored row whose values do not make a record.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {detail}")]
pub(super) struct CorruptRow {
    /// `<table> row <id>`.
    pub key: String,
    pub detail: String,
}

/// The error for row `r` of `table` (whose first column is its id) not decoding.
pub(super) fn corrupt(r: &Row, table: &str, detail: impl Display) -> rusqlite::Error {
    let id = match r.get_ref(0) {
        Ok(ValueRef::Integer(id)) => id.to_string(),
        Ok(ValueRef::Text(id)) => String::from_utf8_lossy(id).into_owned(),
        _ => "?".into(),
    };
    corrupt_key(format!("{table} row {id}"), detail)
}

/// The error for the stored item `key` not decoding.
pub(super) fn corrupt_key(key: String, detail: impl Display) -> rusqlite::Error {
    let detail = detail.to_string();
    rusqlite::Error::FromSqlConversionFailure(0, Type::Null, Box::new(CorruptRow { key, detail }))
}

/// Column `i` of `r`, parsed by `parse`; corrupt (naming `column` and the value) if it fails.
fn parsed<T, E: Display>(
    r: &Row,
    table: &str,
    (i, column): (usize, &str),
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    parse(&text).map_err(|e| corrupt(r, table, format!("{column} {text:?}: {e}")))
}

/// Column `i` of `r` as a size in bytes.
fn size(r: &Row, table: &str, i: usize) -> rusqlite::Result<u64> {
    let n: i64 = r.get(i)?;
    u64::try_from(n).map_err(|_| corrupt(r, table, format!("negative size {n}")))
}

/// Column `i` of `r` as a count.
fn count(r: &Row, table: &str, i: usize) -> rusqlite::Result<u64> {
    let n: i64 = r.get(i)?;
    u64::try_from(n).map_err(|_| corrupt(r, table, format!("negative count {n}")))
}

fn time(r: &Row, i: usize) -> rusqlite::Result<Timestamp> {
    Ok(Timestamp::from_millis(r.get(i)?))
}

fn optional_time(r: &Row, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(r.get::<_, Option<i64>>(i)?.map(Timestamp::from_millis))
}

pub(super) const GROUP_COLS: &str = "id, path, parent_id, created_at";
pub(super) fn group_row(r: &Row) -> rusqlite::Result<Group> {
    Ok(Group {
        id: r.get(0)?,
        path: r.get(1)?,
        parent_id: r.get(2)?,
        created_at: time(r, 3)?,
    })
}

/// A group's id and its settings (`NULL`s when never set), as `LEFT JOIN group_settings`
/// gives them.
pub(super) const SETTINGS_COLS: &str =
    "g.id, s.generic_duplicates_allowed, s.generic_duplicate_exception_regex";
pub(super) fn settings_row(r: &Row) -> rusqlite::Result<Option<GroupSettings>> {
    Ok(match (r.get(1)?, r.get(2)?) {
        (Some(allowed), Some(regex)) => Some(GroupSettings {
            generic_duplicates_allowed: allowed,
            generic_duplicate_exception_regex: regex,
        }),
        _ => None,
    })
}

pub(super) const PROJECT_COLS: &str = "id, name, path, namespace_id, visibility, created_at";
pub(super) fn project_row(r: &Row) -> rusqlite::Result<Project> {
    Ok(Project {
        id: r.get(0)?,
        name: r.get(1)?,
        path_with_namespace: r.get(2)?,
        namespace_id: r.get(3)?,
        visibility: parsed(r, "projects", (4, "visibility"), str::parse)?,
        created_at: time(r, 5)?,
    })
}

pub(super) const USER_COLS: &str = "id, username, admin, created_at";
pub(super) fn user_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        admin: r.get(2)?,
        created_at: time(r, 3)?,
    })
}

/// The memberships of one user: what the user is a member of, and as what.
pub(super) const MEMBERSHIP_COLS: &str = "target_kind, target, access_level";
pub(super) fn membership_row(user_id: i64, r: &Row) -> rusqlite::Result<Membership> {
    let key = || format!("memberships row of user {user_id}");
    let (kind, value): (String, String) = (r.get(0)?, r.get(1)?);
    let target = MembershipTarget::from_parts(&kind, &value)
        .ok_or_else(|| corrupt_key(key(), format!("target {kind:?} {value:?}")))?;
    let level: i64 = r.get(2)?;
    let role = Role::from_access_level(level)
        .ok_or_else(|| corrupt_key(key(), format!("access level {level}")))?;
    Ok(Membership {
        user_id,
        target,
        role,
    })
}

/// A membership target as its two columns (kind, value); `NULL`s for none.
pub(super) fn target_columns(target: Option<&MembershipTarget>) -> (Option<&str>, Option<String>) {
    match target.map(MembershipTarget::to_parts) {
        Some((kind, value)) => (Some(kind), Some(value)),
        None => (None, None),
    }
}

pub(super) const TOKEN_COLS: &str = "id, kind, sha256, scopes, user_id, target_kind, target, \
     expires_at, revoked, created_at, name, last_used_at";
pub(super) fn token_row(r: &Row) -> rusqlite::Result<Token> {
    let sha: Vec<u8> = r.get(2)?;
    let target = match (
        r.get::<_, Option<String>>(5)?,
        r.get::<_, Option<String>>(6)?,
    ) {
        (Some(kind), Some(value)) => Some(
            MembershipTarget::from_parts(&kind, &value)
                .ok_or_else(|| corrupt(r, "tokens", format!("target {kind:?} {value:?}")))?,
        ),
        _ => None,
    };
    let parts = TokenParts {
        kind: parsed(r, "tokens", (1, "kind"), str::parse::<TokenKind>)?,
        scopes: parsed(r, "tokens", (3, "scopes"), Scope::parse_list)?,
        user_id: r.get(4)?,
        target,
    };
    let kind = parts.kind;
    Ok(Token {
        id: r.get(0)?,
        sha256: sha
            .try_into()
            .map_err(|sha: Vec<u8>| corrupt(r, "tokens", format!("{}-byte sha256", sha.len())))?,
        grant: TokenGrant::from_parts(parts).ok_or_else(|| {
            corrupt(
                r,
                "tokens",
                format!("a {} token lacks its owner", kind.as_str()),
            )
        })?,
        expires_at: optional_time(r, 7)?,
        revoked: r.get(8)?,
        created_at: time(r, 9)?,
        name: r.get(10)?,
        last_used_at: optional_time(r, 11)?,
    })
}

pub(super) const TRUST_COLS: &str =
    "id, target_kind, target, issuer, audience, conditions, access_level, scopes, created_at";
pub(super) fn trust_row(r: &Row) -> rusqlite::Result<TrustRule> {
    let (kind, value): (String, String) = (r.get(1)?, r.get(2)?);
    let target = MembershipTarget::from_parts(&kind, &value)
        .ok_or_else(|| corrupt(r, "trust_rules", format!("target {kind:?} {value:?}")))?;
    let level: i64 = r.get(6)?;
    Ok(TrustRule {
        id: r.get(0)?,
        target,
        issuer: r.get(3)?,
        audience: r.get(4)?,
        conditions: parsed(
            r,
            "trust_rules",
            (5, "conditions"),
            TrustRule::conditions_from_json,
        )?,
        role: Role::from_access_level(level)
            .ok_or_else(|| corrupt(r, "trust_rules", format!("access level {level}")))?,
        scopes: parsed(r, "trust_rules", (7, "scopes"), Scope::parse_list)?,
        created_at: time(r, 8)?,
    })
}

pub(super) const PACKAGE_COLS: &str = "id, project_id, name, version, status, created_at, updated_at, last_downloaded_at, \
     download_count";
pub(super) fn package_row(r: &Row) -> rusqlite::Result<Package> {
    Ok(Package {
        id: r.get(0)?,
        project_id: r.get(1)?,
        name: parsed(r, "packages", (2, "name"), PackageName::parse)?,
        version: parsed(r, "packages", (3, "version"), PackageVersion::parse)?,
        status: parsed(r, "packages", (4, "status"), str::parse::<PackageStatus>)?,
        created_at: time(r, 5)?,
        updated_at: time(r, 6)?,
        last_downloaded_at: optional_time(r, 7)?,
        download_count: count(r, "packages", 8)?,
    })
}

pub(super) const FILE_COLS: &str =
    "id, package_id, file_name, size, sha256, blob_key, created_at, updated_at, download_count";
pub(super) fn file_row(r: &Row) -> rusqlite::Result<PackageFile> {
    file_row_at(r, 0)
}

/// A package and one of its files with the file's bytes when its row keeps them, selected as
/// [`PACKAGE_COLS`], [`FILE_COLS`], then `content`.
pub(super) fn package_and_file_row(r: &Row) -> rusqlite::Result<(Package, PackageFile)> {
    const FILE_AT: usize = column_count(PACKAGE_COLS);
    const CONTENT_AT: usize = FILE_AT + column_count(FILE_COLS);
    let file = PackageFile {
        content: r.get::<_, Option<Vec<u8>>>(CONTENT_AT)?.map(Bytes::from),
        ..file_row_at(r, FILE_AT)?
    };
    Ok((package_row(r)?, file))
}

/// How many columns a `*_COLS` list names (at compile time).
const fn column_count(cols: &str) -> usize {
    let bytes = cols.as_bytes();
    let (mut count, mut i) = (1, 0);
    while i < bytes.len() {
        if bytes[i] == b',' {
            count += 1;
        }
        i += 1;
    }
    count
}

/// A file whose [`FILE_COLS`] start at column `at` (after a joined package's).
fn file_row_at(r: &Row, at: usize) -> rusqlite::Result<PackageFile> {
    Ok(PackageFile {
        id: r.get(at)?,
        package_id: r.get(at + 1)?,
        file_name: FileName::from_stored(r.get(at + 2)?),
        size: size(r, "package_files", at + 3)?,
        sha256: r.get(at + 4)?,
        blob_key: r.get(at + 5)?,
        created_at: time(r, at + 6)?,
        updated_at: time(r, at + 7)?,
        content: None,
        download_count: count(r, "package_files", at + 8)?,
    })
}

/// `cols` (a `*_COLS` list), each qualified by the table alias `alias`.
pub(super) fn qualified(alias: &str, cols: &str) -> String {
    cols.split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) const SESSION_COLS: &str = "id, project_id, name, version, file_name, \
    package_status, size, sha256, staged_key, multipart_id, part_size, token_id, state, \
    package_id, file_id, refusal, claim_until, created_at, expires_at, delegation";
pub(super) fn session_row(r: &Row) -> rusqlite::Result<UploadSession> {
    const TABLE: &str = "upload_sessions";
    let parts = StateParts {
        kind: r.get(12)?,
        package_id: r.get(13)?,
        file_id: r.get(14)?,
        reason: r.get(15)?,
        legacy_status: None,
        until: r.get(16)?,
    };
    let state = SessionState::from_parts(parts).ok_or_else(|| {
        let kind: Option<String> = r.get(12).unwrap_or_default();
        let reason: Option<String> = r.get(15).unwrap_or_default();
        corrupt(r, TABLE, format!("state {kind:?} (refusal {reason:?})"))
    })?;
    let package_status = match r.get::<_, Option<String>>(5)? {
        Some(_) => Some(parsed(r, TABLE, (5, "package_status"), str::parse)?),
        None => None,
    };
    Ok(UploadSession {
        id: r.get(0)?,
        project_id: r.get(1)?,
        name: parsed(r, TABLE, (2, "name"), PackageName::parse)?,
        version: parsed(r, TABLE, (3, "version"), PackageVersion::parse)?,
        file_name: FileName::from_stored(r.get(4)?),
        package_status,
        size: size(r, TABLE, 6)?,
        sha256: r.get(7)?,
        staged_key: r.get(8)?,
        multipart_id: r.get(9)?,
        part_size: size(r, TABLE, 10)?,
        token_id: r.get(11)?,
        delegation: r.get(19)?,
        state,
        created_at: time(r, 17)?,
        expires_at: time(r, 18)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_doomed_literal_is_the_status_it_stands_for() {
        assert_eq!(DOOMED, PackageStatus::PendingDestruction.as_str());
    }

    #[test]
    fn column_lists_are_counted_as_they_are_selected() {
        for cols in [PACKAGE_COLS, FILE_COLS, SESSION_COLS] {
            assert_eq!(column_count(cols), cols.split(", ").count(), "{cols}");
        }
        assert_eq!(column_count(PACKAGE_COLS), 9);
    }
}
