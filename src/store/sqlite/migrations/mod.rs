//! The schema and its history: an ordered list of migrations, each applied once, in its own
//! transaction together with the bump of `PRAGMA user_version` that records it. A database's
//! `user_version` is the number of migrations it has; 0 is a new file, or one written before
//! migrations existed (it has migration 1's tables already, which migration 1 then keeps). A
//! database newer than this code is refused rather than guessed at. Migrations are never
//! edited once released: a change to the schema is a new migration at the end of the list.

use crate::domain::Refusal;
use crate::store::{StoreError, StoreResult};
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior, params};

/// One step of the schema's history.
pub(super) struct Migration {
    /// What it does, for errors and logs.
    pub name: &'static str,
    pub apply: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// Every migration, oldest first: a database at version `n` has the first `n` applied.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "the schema before versioning",
        apply: v1_schema,
    },
    Migration {
        name: "group settings in their own table",
        apply: v2_group_settings,
    },
    Migration {
        name: "upload sessions keep a refusal reason, not an HTTP status",
        apply: v3_refusal_reasons,
    },
    Migration {
        name: "package and file ids are never given twice",
        apply: v4_ids_never_given_twice,
    },
    Migration {
        name: "small files keep their bytes in their row",
        apply: v5_inline_content,
    },
    Migration {
        name: "a publish writes no status or inline-key index entry",
        apply: v6_partial_indexes,
    },
    Migration {
        name: "administrators, token names and last use, trust rules",
        apply: v7_identity,
    },
    Migration {
        name: "upload sessions remember who vouched for their opener",
        apply: v8_session_delegation,
    },
    Migration {
        name: "signed-in sessions of the web UI",
        apply: v9_web_sessions,
    },
    Migration {
        name: "package protection rules",
        apply: v10_protection_rules,
    },
    Migration {
        name: "download counts of packages and files",
        apply: v11_download_counts,
    },
    Migration {
        name: "cleanup policies of projects",
        apply: v12_cleanup_policies,
    },
    Migration {
        name: "events (the outbox and audit log) and webhooks",
        apply: v13_events_and_hooks,
    },
];

/// The version this code writes and reads.
pub(super) const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

/// Migration 1, exactly the schema depot created before it kept a version (`IF NOT EXISTS`
/// throughout: such a database has all of it already).
const V1_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    parent_id INTEGER REFERENCES groups(id),
    created_at INTEGER NOT NULL,
    generic_duplicates_allowed INTEGER NOT NULL DEFAULT 1,
    generic_duplicate_exception_regex TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY,
    namespace_id INTEGER NOT NULL REFERENCES groups(id),
    name TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    visibility TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    user_id INTEGER NOT NULL REFERENCES users(id),
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    access_level INTEGER NOT NULL,
    PRIMARY KEY (user_id, target_kind, target)
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    sha256 BLOB NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id),
    target_kind TEXT,
    target TEXT,
    expires_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS packages (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_downloaded_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS packages_live
    ON packages (project_id, name, version) WHERE status != 'pending_destruction';
CREATE TABLE IF NOT EXISTS package_files (
    id INTEGER PRIMARY KEY,
    package_id INTEGER NOT NULL REFERENCES packages(id),
    file_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'default',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS package_files_by_name ON package_files (package_id, file_name, id);
CREATE INDEX IF NOT EXISTS packages_by_created ON packages (project_id, status, created_at, id);
CREATE INDEX IF NOT EXISTS packages_by_name ON packages (project_id, status, name, version, id);
CREATE INDEX IF NOT EXISTS packages_by_version ON packages (project_id, status, version, id);
CREATE INDEX IF NOT EXISTS projects_by_namespace ON projects (namespace_id);
CREATE INDEX IF NOT EXISTS package_files_by_blob ON package_files (blob_key);
CREATE TABLE IF NOT EXISTS upload_sessions (
    id TEXT PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    file_name TEXT NOT NULL,
    package_status TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT,
    staged_key TEXT NOT NULL,
    multipart_id TEXT,
    part_size INTEGER NOT NULL,
    token_id INTEGER,
    state TEXT NOT NULL,
    package_id INTEGER,
    file_id INTEGER,
    refused_status INTEGER,
    refused_message TEXT,
    claim_until INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS package_files_by_status ON package_files (status);
CREATE INDEX IF NOT EXISTS packages_by_status ON packages (status);
"#;

fn v1_schema(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(V1_SCHEMA)
}

/// Settings move out of `groups` so that "never set" is a missing row (the registry then
/// applies the defaults, as it does for DynamoDB). Every group had settings columns, so every
/// group keeps a settings row with its values: nothing read changes.
fn v2_group_settings(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE group_settings (
            group_id INTEGER PRIMARY KEY REFERENCES groups(id),
            generic_duplicates_allowed INTEGER NOT NULL,
            generic_duplicate_exception_regex TEXT NOT NULL
        );
        INSERT INTO group_settings
            SELECT id, generic_duplicates_allowed, generic_duplicate_exception_regex FROM groups;
        ALTER TABLE groups DROP COLUMN generic_duplicates_allowed;
        ALTER TABLE groups DROP COLUMN generic_duplicate_exception_regex;",
    )
}

/// Sessions refused before reasons were stored kept GitLab's status and message; they become
/// the reason's code, and the status column goes. A refusal that names no known reason (none
/// was ever written) keeps its message and stays unreadable, as it was.
fn v3_refusal_reasons(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let legacy = tx
        .prepare(
            "SELECT id, refused_status, refused_message FROM upload_sessions \
             WHERE refused_status IS NOT NULL",
        )?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (id, status, message) in legacy {
        if let Some(reason) = Refusal::from_legacy(status, message.as_deref().unwrap_or("")) {
            tx.execute(
                "UPDATE upload_sessions SET refused_message = ?2 WHERE id = ?1",
                params![id, reason.code()],
            )?;
        }
    }
    tx.execute_batch(
        "ALTER TABLE upload_sessions DROP COLUMN refused_status;
        ALTER TABLE upload_sessions RENAME COLUMN refused_message TO refusal;",
    )
}

/// Packages and files get ids never given before (SQLite's `AUTOINCREMENT`), as GitLab's:
/// without it a new row took the largest id in its table plus one, so once the purge had
/// forgotten the newest package or file, its id was given again and a stale one (a retried
/// DELETE, a cached link) reached another package or file. Each table is rebuilt as SQLite
/// prescribes: created anew from its own definition, copied, dropped, renamed, its indexes
/// made again, foreign keys off meanwhile (`migrate_to`) and checked before the commit. Ids
/// forgotten before this migration are not known: above the largest one kept, they may come
/// once more.
fn v4_ids_never_given_twice(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for table in ["packages", "package_files"] {
        rebuild_with_autoincrement(tx, table)?;
    }
    let broken: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if broken > 0 {
        return Err(refused(
            rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
            format!("{broken} rows name a missing package or project"),
        ));
    }
    Ok(())
}

/// Small files keep their bytes in their row (`content`, NULL for a file in the blob store):
/// one transaction, whose WAL sync concurrent publishes share, makes bytes and record durable,
/// where a blob of its own cost a file, its sync and its directory's sync.
fn v5_inline_content(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE package_files ADD COLUMN content BLOB")
}

/// The indexes a publish used to write for nothing: by status (only the purge asks, and only
/// for doomed rows) and by blob key (only the purge's "shared blob" question asks, never of an
/// inline file's key, which no other record can name). Partial, they hold only what is asked
/// for, so a publish writes one or two index pages less in the commit it syncs.
fn v6_partial_indexes(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "DROP INDEX IF EXISTS package_files_by_status;
        DROP INDEX IF EXISTS packages_by_status;
        DROP INDEX IF EXISTS package_files_by_blob;
        CREATE INDEX package_files_doomed ON package_files (id)
            WHERE status = 'pending_destruction';
        CREATE INDEX packages_doomed ON packages (id) WHERE status = 'pending_destruction';
        CREATE INDEX package_files_by_blob ON package_files (blob_key)
            WHERE blob_key NOT LIKE 'inline/%';",
    )
}

/// Users may be administrators; tokens get a name and a last use; trust rules of trusted
/// publishing get their table, found by target (listing) and by issuer (authenticating).
fn v7_identity(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
        ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
        CREATE INDEX tokens_by_user ON tokens (user_id) WHERE user_id IS NOT NULL;
        CREATE INDEX tokens_by_target ON tokens (target_kind, target) WHERE target IS NOT NULL;
        CREATE INDEX memberships_by_target ON memberships (target_kind, target);
        CREATE TABLE trust_rules (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            target_kind TEXT NOT NULL,
            target TEXT NOT NULL,
            issuer TEXT NOT NULL,
            audience TEXT NOT NULL,
            conditions TEXT NOT NULL,
            access_level INTEGER NOT NULL,
            scopes TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX trust_rules_by_target ON trust_rules (target_kind, target);
        CREATE INDEX trust_rules_by_issuer ON trust_rules (issuer);",
    )
}

/// A session opened by a federated principal (no token of depot's) keeps who vouched for it.
fn v8_session_delegation(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE upload_sessions ADD COLUMN delegation TEXT;")
}

/// Web UI sessions, by the hash of their id; the expiry index lets a sweep find old ones.
fn v9_web_sessions(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE web_sessions (
            sha256 BLOB PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            token_id INTEGER NOT NULL,
            csrf TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);",
    )
}

/// Package protection rules: one pattern per project and package type; levels as GitLab's
/// numbers (40, 50, 60), NULL for none.
fn v10_protection_rules(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE package_protection_rules (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            project_id INTEGER NOT NULL REFERENCES projects(id),
            package_name_pattern TEXT NOT NULL,
            package_type TEXT NOT NULL,
            push_level INTEGER,
            delete_level INTEGER,
            UNIQUE (project_id, package_type, package_name_pattern)
        );",
    )
}

/// Downloads counted per package and per file.
fn v11_download_counts(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE packages ADD COLUMN download_count INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE package_files ADD COLUMN download_count INTEGER NOT NULL DEFAULT 0;",
    )
}

/// A project's cleanup policy: NULL where a rule is off.
fn v12_cleanup_policies(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE cleanup_policies (
            project_id INTEGER PRIMARY KEY REFERENCES projects(id),
            keep_n_duplicated_package_files INTEGER,
            keep_n_latest_versions INTEGER,
            delete_versions_older_than_days INTEGER,
            delete_versions_not_downloaded_for_days INTEGER,
            package_name_regex TEXT,
            next_run_at INTEGER NOT NULL
        );",
    )
}

/// Events written with the changes they describe (in order: `seq`), the webhooks that deliver
/// them, and each hook's deliveries (one per event it takes, kept until the event is).
fn v13_events_and_hooks(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            at INTEGER NOT NULL,
            type TEXT NOT NULL,
            project_id INTEGER,
            body TEXT NOT NULL
        );
        CREATE INDEX events_by_project ON events (project_id, seq);
        CREATE INDEX events_by_time ON events (at);
        CREATE TABLE hooks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            target_kind TEXT NOT NULL,
            target TEXT NOT NULL,
            url TEXT NOT NULL,
            secret TEXT,
            name TEXT,
            description TEXT,
            event_types TEXT NOT NULL,
            enable_ssl_verification INTEGER NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE hook_deliveries (
            hook_id INTEGER NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
            event_seq INTEGER NOT NULL,
            delivery_id TEXT NOT NULL,
            order_key TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at INTEGER NOT NULL,
            last_status INTEGER,
            last_error TEXT,
            last_at INTEGER,
            PRIMARY KEY (hook_id, event_seq)
        );
        CREATE INDEX hook_deliveries_due ON hook_deliveries (state, next_at);
        CREATE INDEX hook_deliveries_order ON hook_deliveries (hook_id, order_key, event_seq);
        CREATE TABLE hook_cursor (
            one INTEGER PRIMARY KEY CHECK (one = 1),
            seq INTEGER NOT NULL
        );",
    )
}

/// Rebuild `table` (whose first column is `id INTEGER PRIMARY KEY`) with `AUTOINCREMENT`.
fn rebuild_with_autoincrement(tx: &Transaction<'_>, table: &str) -> rusqlite::Result<()> {
    let schema = |kind: &str| -> rusqlite::Result<Vec<String>> {
        tx.prepare(
            "SELECT sql FROM sqlite_master WHERE type = ?1 AND tbl_name = ?2 AND sql IS NOT NULL",
        )?
        .query_map([kind, table], |r| r.get(0))?
        .collect()
    };
    let definition = schema("table")?.concat();
    let indexes = schema("index")?;
    // SQLite keeps a table's definition as written, `IF NOT EXISTS` left out.
    let (head, id) = (format!("CREATE TABLE {table} ("), "id INTEGER PRIMARY KEY,");
    if !definition.starts_with(&head) || !definition.contains(id) {
        return Err(refused(
            rusqlite::ffi::SQLITE_SCHEMA,
            format!("table {table} is not as migration 1 made it: {definition}"),
        ));
    }
    let rebuilt = definition
        .replacen(&head, &format!("CREATE TABLE {table}_rebuilt ("), 1)
        .replacen(id, "id INTEGER PRIMARY KEY AUTOINCREMENT,", 1);
    tx.execute_batch(&format!(
        "{rebuilt};
        INSERT INTO {table}_rebuilt SELECT * FROM {table};
        DROP TABLE {table};
        ALTER TABLE {table}_rebuilt RENAME TO {table};"
    ))?;
    for index in indexes {
        tx.execute_batch(&index)?;
    }
    Ok(())
}

/// A migration's own refusal, as SQLite's error `code` with `message`.
fn refused(code: std::ffi::c_int, message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(message))
}

/// Apply every migration `conn`'s database lacks; how many were applied.
pub(super) fn migrate(conn: &mut Connection) -> StoreResult<usize> {
    migrate_to(conn, LATEST_VERSION)
}

/// Apply the migrations up to `target` that `conn`'s database lacks; how many were applied.
/// Foreign keys are off while they run (a migration may rebuild a table, which SQLite allows
/// only so; the pragma does nothing inside a transaction) and back as they were afterwards.
pub(super) fn migrate_to(conn: &mut Connection, target: u32) -> StoreResult<usize> {
    // Checked without a write lock first: once up to date, opening takes none.
    let current = known_version(conn)?;
    if current >= target {
        return Ok(0);
    }
    let foreign_keys: bool = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .map_err(StoreError::backend)?;
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(StoreError::backend)?;
    let applied = apply(conn, current, target);
    conn.pragma_update(None, "foreign_keys", foreign_keys)
        .map_err(StoreError::backend)?;
    applied
}

/// The migrations after `current` up to `target`, each in its own transaction.
fn apply(conn: &mut Connection, current: u32, target: u32) -> StoreResult<usize> {
    let mut applied = 0;
    for (version, migration) in (1..=target).zip(MIGRATIONS).skip(current as usize) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| failed(version, migration, e))?;
        // Another process opening the same database may have applied it meanwhile.
        if known_version(&tx)? >= version {
            continue;
        }
        (migration.apply)(&tx)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .and_then(|()| tx.commit())
            .map_err(|e| failed(version, migration, e))?;
        tracing::info!(version, migration = migration.name, "migrated the database");
        applied += 1;
    }
    Ok(applied)
}

/// The database's schema version; `Misconfigured` if this code does not know it.
pub(super) fn known_version(conn: &Connection) -> StoreResult<u32> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(StoreError::backend)?;
    match u32::try_from(version) {
        Ok(v) if v <= LATEST_VERSION => Ok(v),
        _ => Err(StoreError::Misconfigured(format!(
            "the database's schema is version {version}, and this depot knows versions up to \
             {LATEST_VERSION}: it was written by a newer depot, which must be used to open it"
        ))),
    }
}

/// A migration that did not apply (nothing of it was kept).
#[derive(Debug, thiserror::Error)]
#[error("migrating the database to version {version} ({name}) failed: {source}")]
struct MigrationFailed {
    version: u32,
    name: &'static str,
    source: rusqlite::Error,
}

fn failed(version: u32, migration: &Migration, e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(code, _) if code.code == ErrorCode::DiskFull => {
            StoreError::Full(Box::new(e))
        }
        source => StoreError::Backend(Box::new(MigrationFailed {
            version,
            name: migration.name,
            source,
        })),
    }
}

#[cfg(test)]
mod tests;
