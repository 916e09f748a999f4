//! The migrations' tests: each step on a database as the step before left it.

use super::*;
use crate::domain::SessionState;
use crate::store::sqlite::SqliteMetaStore;
use crate::store::{SettingsStore, UploadSessionStore};

fn columns(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn user_version(conn: &Connection) -> i64 {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn a_new_database_gets_every_migration() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("new.sqlite3")).unwrap();
    assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len());
    assert_eq!(user_version(&conn), i64::from(LATEST_VERSION));
    assert_eq!(
        columns(&conn, "groups"),
        ["id", "path", "parent_id", "created_at"]
    );
    assert_eq!(
        columns(&conn, "group_settings"),
        [
            "group_id",
            "generic_duplicates_allowed",
            "generic_duplicate_exception_regex"
        ]
    );
    let sessions = columns(&conn, "upload_sessions");
    assert!(sessions.contains(&"refusal".to_string()), "{sessions:?}");
    assert!(!sessions.iter().any(|c| c.starts_with("refused_")));
}

#[test]
fn opening_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("twice.sqlite3");
    drop(SqliteMetaStore::open(&db).unwrap());
    let schema = |conn: &Connection| -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let before = schema(&Connection::open(&db).unwrap());
    drop(SqliteMetaStore::open(&db).unwrap());
    let mut conn = Connection::open(&db).unwrap();
    assert_eq!(migrate(&mut conn).unwrap(), 0);
    assert_eq!(user_version(&conn), i64::from(LATEST_VERSION));
    assert_eq!(schema(&conn), before);
}

#[test]
fn a_database_from_a_newer_depot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("newer.sqlite3");
    let newer = LATEST_VERSION + 1;
    Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let Err(StoreError::Misconfigured(why)) = SqliteMetaStore::open(&db) else {
        panic!("a newer schema opened");
    };
    assert!(why.contains(&db.display().to_string()), "{why}");
    assert!(why.contains(&format!("version {newer}")), "{why}");
    // Nothing was written into it.
    let conn = Connection::open(&db).unwrap();
    assert_eq!(user_version(&conn), i64::from(newer));
    assert!(columns(&conn, "groups").is_empty());
}

#[test]
fn a_migration_that_fails_keeps_nothing_of_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("failing.sqlite3")).unwrap();
    migrate_to(&mut conn, 1).unwrap();
    // Migration 2 creates this table; finding it there already makes it fail.
    conn.execute_batch("CREATE TABLE group_settings (x)")
        .unwrap();
    let err = migrate(&mut conn).unwrap_err();
    assert!(
        err.to_string().contains("version 2 (group settings"),
        "{err}"
    );
    assert_eq!(user_version(&conn), 1);
    assert_eq!(columns(&conn, "groups").len(), 6);
}

/// Packages and files keep their rows across migration 4, and from then on an id
/// forgotten at the top is not given again; foreign keys are as they were before.
#[test]
fn ids_once_forgotten_are_not_given_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("v3.sqlite3")).unwrap();
    conn.execute_batch("PRAGMA foreign_keys=ON").unwrap();
    migrate_to(&mut conn, 3).unwrap();
    conn.execute_batch(
        "INSERT INTO groups VALUES (1, 'acme', NULL, 0);
        INSERT INTO projects VALUES (1, 1, 'app', 'acme/app', 'private', 0);
        INSERT INTO packages VALUES (7, 1, 'p', '1.0', 'default', 0, 0, NULL);
        INSERT INTO package_files VALUES (9, 7, 'f', 3, 'ab', 'blobs/x', 'default', 0, 0);",
    )
    .unwrap();
    migrate(&mut conn).unwrap();
    let foreign_keys: bool = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert!(foreign_keys);
    let ids = |conn: &Connection, table: &str| -> Vec<i64> {
        let mut stmt = conn.prepare(&format!("SELECT id FROM {table}")).unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(
        (ids(&conn, "packages"), ids(&conn, "package_files")),
        (vec![7], vec![9])
    );
    conn.execute_batch(
        "DELETE FROM package_files; DELETE FROM packages;
        INSERT INTO packages (project_id, name, version, status, created_at, updated_at)
            VALUES (1, 'q', '1.0', 'default', 0, 0);
        INSERT INTO package_files (package_id, file_name, size, sha256, blob_key,
            created_at, updated_at) VALUES (8, 'g', 3, 'ab', 'blobs/y', 0, 0);",
    )
    .unwrap();
    assert_eq!(
        (ids(&conn, "packages"), ids(&conn, "package_files")),
        (vec![8], vec![10])
    );
}

/// Sessions refused before reasons were stored, and a group's settings, across the upgrade
/// from version 1.
#[tokio::test]
async fn legacy_refusals_become_reasons_and_settings_stay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v1.sqlite3");
    let mut conn = Connection::open(&db).unwrap();
    migrate_to(&mut conn, 1).unwrap();
    conn.execute_batch(
        "INSERT INTO groups VALUES (1, 'acme', NULL, 0, 0, 'x');
        INSERT INTO projects VALUES (1, 1, 'app', 'acme/app', 'private', 0);",
    )
    .unwrap();
    let refused = [
        (
            "a1",
            Some(400),
            "400 Bad request - Duplicate package is not allowed",
        ),
        // Written by the code that stored reasons before the schema had versions.
        ("a2", None, "too_large"),
        // No reason behind it (never written by depot): it stays unreadable.
        ("a3", Some(500), "500 Internal Server Error"),
    ];
    for (id, status, message) in refused {
        conn.execute(
            "INSERT INTO upload_sessions (id, project_id, name, version, file_name, size, \
             staged_key, part_size, state, refused_status, refused_message, created_at, \
             expires_at) VALUES (?1, 1, 'p', '1', 'f', 1, 'uploads/x', 0, 'refused', ?2, \
             ?3, 0, 1)",
            params![id, status, message],
        )
        .unwrap();
    }
    drop(conn);
    let m = SqliteMetaStore::open(&db).unwrap();
    let reason = async |id| match m.upload_session(id).await.unwrap().unwrap().state {
        SessionState::Refused { reason } => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(reason("a1").await, Refusal::Duplicate);
    assert_eq!(reason("a2").await, Refusal::TooLarge);
    let Err(StoreError::Corrupt { key, detail }) = m.upload_session("a3").await else {
        panic!("an unknown refusal read");
    };
    assert!(
        key.contains("a3") && detail.contains("500 Internal"),
        "{detail}"
    );
    let settings = m.group_settings(1).await.unwrap().unwrap();
    assert!(!settings.generic_duplicates_allowed);
    assert_eq!(settings.generic_duplicate_exception_regex, "x");
}
