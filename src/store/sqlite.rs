//! `MetaStore` on an embedded SQLite file (WAL, busy timeout), safe to share with
//! `depot admin` running in another process on the same data directory.

use super::{
    IdentityStore, PackageStore, PurgeStore, Record, SettingsStore, StoreError, StoreResult,
    UploadSessionStore,
};
use crate::domain::{
    COUNT_LIMIT, FileName, Group, GroupSettings, Listed, Membership, MembershipTarget, NewFile,
    NewGroup, NewToken, Package, PackageFile, PackageName, PackageOrder, PackageQuery,
    PackageStatus, PackageVersion, Project, Role, Scope, SessionState, StateParts, Timestamp,
    Token, TokenKind, UploadSession, User, Visibility,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Params, Row, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

const SCHEMA: &str = r#"
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

pub struct SqliteMetaStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteMetaStore {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path).map_err(StoreError::backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(StoreError::backend)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        )
        .map_err(StoreError::backend)?;
        conn.execute_batch(SCHEMA).map_err(StoreError::backend)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Mark row `id` of `table` (`packages` or `package_files`) pending destruction;
    /// `NotFound` unless it was live.
    async fn mark_doomed(&self, table: &'static str, id: i64, now: Timestamp) -> StoreResult<()> {
        self.call(move |c| {
            let changed = c
                .execute_cached(
                    &format!(
                        "UPDATE {table} SET status = 'pending_destruction', updated_at = ?2 \
                         WHERE id = ?1 AND status != 'pending_destruction'"
                    ),
                    params![id, now.millis()],
                )
                .map_err(db_err)?;
            if changed == 0 {
                let what = if table == "packages" {
                    Record::Package
                } else {
                    Record::File
                };
                return Err(StoreError::not_found(what, id));
            }
            Ok(())
        })
        .await
    }

    /// Run the read-only query `f` right here when the connection is free: an indexed read of a
    /// local WAL database takes microseconds (readers never wait for writers or checkpoints),
    /// less than handing it to a blocking thread and back. When a write holds the connection,
    /// wait for it off the async threads, as [`Self::call`] does.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let f = match self.conn.try_lock() {
            Ok(mut guard) => return f(&mut guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                return f(&mut poisoned.into_inner());
            }
            Err(std::sync::TryLockError::WouldBlock) => f,
        };
        self.call(f).await
    }

    /// Run `f` on the connection off the async threads.
    async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(StoreError::backend)?
    }
}

/// Prepared statements kept per connection: every fixed statement of this store fits.
const STATEMENT_CACHE: usize = 64;

/// Queries through the connection's statement cache: each statement is parsed once per
/// connection (parsing SQL was a visible share of a small request's CPU time).
trait Cached {
    fn query_row_cached<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl Cached for Connection {
    fn query_row_cached<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(code, _)
            if code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            let msg = e.to_string();
            StoreError::already_exists(record_of_constraint(&msg), msg)
        }
        rusqlite::Error::SqliteFailure(code, msg)
            if code.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Rejected(format!(
                "constraint violated: {}",
                msg.as_deref().unwrap_or("?")
            ))
        }
        rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::DiskFull => {
            StoreError::Full(Box::new(e))
        }
        _ => StoreError::backend(e),
    }
}

/// The kind of record a constraint message (`UNIQUE constraint failed: groups.path`) is about.
fn record_of_constraint(message: &str) -> Record {
    let table = message
        .rsplit(": ")
        .next()
        .and_then(|cols| cols.split('.').next())
        .unwrap_or_default();
    match table {
        "groups" => Record::Group,
        "projects" => Record::Project,
        "users" => Record::User,
        "memberships" => Record::Membership,
        "tokens" => Record::Token,
        "packages" => Record::Package,
        "package_files" => Record::File,
        _ => Record::UploadSession,
    }
}

fn target_from_columns(kind: Option<String>, value: Option<String>) -> Option<MembershipTarget> {
    MembershipTarget::from_parts(&kind?, &value?)
}

fn bad_row(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_string(), rusqlite::types::Type::Text)
}

const GROUP_COLS: &str = "id, path, parent_id, created_at";
fn group_row(r: &Row) -> rusqlite::Result<Group> {
    Ok(Group {
        id: r.get(0)?,
        path: r.get(1)?,
        parent_id: r.get(2)?,
        created_at: Timestamp::from_millis(r.get(3)?),
    })
}

const PROJECT_COLS: &str = "id, name, path, namespace_id, visibility, created_at";
fn project_row(r: &Row) -> rusqlite::Result<Project> {
    let visibility: String = r.get(4)?;
    Ok(Project {
        id: r.get(0)?,
        name: r.get(1)?,
        path_with_namespace: r.get(2)?,
        namespace_id: r.get(3)?,
        visibility: visibility.parse().map_err(|_| bad_row("visibility"))?,
        created_at: Timestamp::from_millis(r.get(5)?),
    })
}

const USER_COLS: &str = "id, username, created_at";
fn user_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        created_at: Timestamp::from_millis(r.get(2)?),
    })
}

const TOKEN_COLS: &str =
    "id, kind, sha256, scopes, user_id, target_kind, target, expires_at, revoked, created_at";
fn token_row(r: &Row) -> rusqlite::Result<Token> {
    let kind: String = r.get(1)?;
    let sha: Vec<u8> = r.get(2)?;
    let scopes: String = r.get(3)?;
    Ok(Token {
        id: r.get(0)?,
        kind: kind.parse::<TokenKind>().map_err(|_| bad_row("kind"))?,
        sha256: sha.try_into().map_err(|_| bad_row("sha256"))?,
        scopes: Scope::parse_list(&scopes).map_err(|_| bad_row("scopes"))?,
        user_id: r.get(4)?,
        target: target_from_columns(r.get(5)?, r.get(6)?),
        expires_at: r.get::<_, Option<i64>>(7)?.map(Timestamp::from_millis),
        revoked: r.get(8)?,
        created_at: Timestamp::from_millis(r.get(9)?),
    })
}

const PACKAGE_COLS: &str =
    "id, project_id, name, version, status, created_at, updated_at, last_downloaded_at";
fn package_row(r: &Row) -> rusqlite::Result<Package> {
    let name: String = r.get(2)?;
    let version: String = r.get(3)?;
    let status: String = r.get(4)?;
    Ok(Package {
        id: r.get(0)?,
        project_id: r.get(1)?,
        name: PackageName::parse(&name).map_err(|_| bad_row("name"))?,
        version: PackageVersion::parse(&version).map_err(|_| bad_row("version"))?,
        status: status.parse().map_err(|_| bad_row("status"))?,
        created_at: Timestamp::from_millis(r.get(5)?),
        updated_at: Timestamp::from_millis(r.get(6)?),
        last_downloaded_at: r.get::<_, Option<i64>>(7)?.map(Timestamp::from_millis),
    })
}

const SESSION_COLS: &str = "id, project_id, name, version, file_name, package_status, size, \
    sha256, staged_key, multipart_id, part_size, token_id, state, package_id, file_id, \
    refused_status, refused_message, claim_until, created_at, expires_at";
fn session_row(r: &Row) -> rusqlite::Result<UploadSession> {
    let text = |i: usize| r.get::<_, String>(i);
    let status: Option<String> = r.get(5)?;
    let state = SessionState::from_parts(StateParts {
        kind: text(12)?,
        package_id: r.get(13)?,
        file_id: r.get(14)?,
        legacy_status: r.get(15)?,
        reason: r.get(16)?,
        until: r.get(17)?,
    })
    .ok_or_else(|| bad_row("state"))?;
    Ok(UploadSession {
        id: text(0)?,
        project_id: r.get(1)?,
        name: PackageName::parse(&text(2)?).map_err(|_| bad_row("name"))?,
        version: PackageVersion::parse(&text(3)?).map_err(|_| bad_row("version"))?,
        file_name: FileName::from_stored(text(4)?),
        package_status: status
            .map(|s| s.parse::<PackageStatus>())
            .transpose()
            .map_err(|_| bad_row("package_status"))?,
        size: r.get::<_, i64>(6)? as u64,
        sha256: r.get(7)?,
        staged_key: text(8)?,
        multipart_id: r.get(9)?,
        part_size: r.get::<_, i64>(10)? as u64,
        token_id: r.get(11)?,
        state,
        created_at: Timestamp::from_millis(r.get(18)?),
        expires_at: Timestamp::from_millis(r.get(19)?),
    })
}

/// Set a session's state columns from `state`, where `condition` (SQL over the row) holds;
/// the session after, or `None` if the condition did not hold.
fn set_session_state(
    c: &mut Connection,
    id: &str,
    state: &SessionState,
    condition: &str,
) -> StoreResult<Option<UploadSession>> {
    let p = state.to_parts();
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let changed = tx
        .execute_cached(
            &format!(
                "UPDATE upload_sessions SET state = ?2, package_id = ?3, file_id = ?4, \
                 refused_status = ?5, refused_message = ?6, claim_until = ?7 \
                 WHERE id = ?1 AND ({condition})"
            ),
            params![
                id,
                p.kind,
                p.package_id,
                p.file_id,
                p.legacy_status,
                p.reason,
                p.until
            ],
        )
        .map_err(db_err)?;
    let session = if changed == 0 {
        None
    } else {
        tx.query_row_cached(
            &format!("SELECT {SESSION_COLS} FROM upload_sessions WHERE id = ?1"),
            [id],
            session_row,
        )
        .optional()
        .map_err(db_err)?
    };
    tx.commit().map_err(db_err)?;
    Ok(session)
}

const FILE_COLS: &str = "id, package_id, file_name, size, sha256, blob_key, created_at, updated_at";
fn file_row(r: &Row) -> rusqlite::Result<PackageFile> {
    Ok(PackageFile {
        id: r.get(0)?,
        package_id: r.get(1)?,
        file_name: FileName::from_stored(r.get(2)?),
        size: r.get::<_, i64>(3)? as u64,
        sha256: r.get(4)?,
        blob_key: r.get(5)?,
        created_at: Timestamp::from_millis(r.get(6)?),
        updated_at: Timestamp::from_millis(r.get(7)?),
    })
}

fn live_package(
    conn: &Connection,
    project_id: i64,
    name: &str,
    version: &str,
) -> rusqlite::Result<Option<Package>> {
    conn.query_row_cached(
        &format!(
            "SELECT {PACKAGE_COLS} FROM packages WHERE project_id = ?1 AND name = ?2 \
             AND version = ?3 AND status != 'pending_destruction'"
        ),
        params![project_id, name, version],
        package_row,
    )
    .optional()
}

fn newest_live_file(
    conn: &Connection,
    package_id: i64,
    file_name: &str,
) -> rusqlite::Result<Option<PackageFile>> {
    conn.query_row_cached(
        &format!(
            "SELECT {FILE_COLS} FROM package_files WHERE package_id = ?1 AND file_name = ?2 \
             AND status != 'pending_destruction' ORDER BY id DESC LIMIT 1"
        ),
        params![package_id, file_name],
        file_row,
    )
    .optional()
}

#[async_trait]
impl IdentityStore for SqliteMetaStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        self.read(|c| {
            let n: i64 = c
                .query_row_cached(
                    "SELECT (SELECT COUNT(*) FROM groups) + (SELECT COUNT(*) FROM users) \
                     + (SELECT COUNT(*) FROM tokens)",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(n == 0)
        })
        .await
    }

    async fn create_group(&self, group: NewGroup) -> StoreResult<Group> {
        self.call(move |c| {
            let NewGroup {
                path,
                parent_id,
                created_at: now,
            } = group;
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            tx.execute_cached(
                "INSERT INTO groups (path, parent_id, created_at) VALUES (?1, ?2, ?3)",
                params![path, parent_id, now.millis()],
            )
            .map_err(db_err)?;
            let group = Group {
                id: tx.last_insert_rowid(),
                path,
                parent_id,
                created_at: now,
            };
            tx.commit().map_err(db_err)?;
            Ok(group)
        })
        .await
    }

    async fn group_by_path(&self, path: &str) -> StoreResult<Option<Group>> {
        let path = path.to_string();
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {GROUP_COLS} FROM groups WHERE path = ?1"),
                [path],
                group_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn group_by_id(&self, id: i64) -> StoreResult<Option<Group>> {
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {GROUP_COLS} FROM groups WHERE id = ?1"),
                [id],
                group_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn create_project(
        &self,
        group: &Group,
        name: &str,
        visibility: Visibility,
        now: Timestamp,
    ) -> StoreResult<Project> {
        let (group_id, full_path, name) = (
            group.id,
            format!("{}/{}", group.path, name),
            name.to_string(),
        );
        self.call(move |c| {
            c.execute_cached(
                "INSERT INTO projects (namespace_id, name, path, visibility, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![group_id, name, full_path, visibility.as_str(), now.millis()],
            )
            .map_err(db_err)?;
            Ok(Project {
                id: c.last_insert_rowid(),
                name,
                path_with_namespace: full_path,
                namespace_id: group_id,
                visibility,
                created_at: now,
            })
        })
        .await
    }

    async fn project_by_id(&self, id: i64) -> StoreResult<Option<Project>> {
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {PROJECT_COLS} FROM projects WHERE id = ?1"),
                [id],
                project_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn project_by_path(&self, path: &str) -> StoreResult<Option<Project>> {
        let path = path.to_string();
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {PROJECT_COLS} FROM projects WHERE path = ?1"),
                [path],
                project_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn projects_in_group(&self, group: &Group, subgroups: bool) -> StoreResult<Vec<Project>> {
        let (group_id, prefix) = (group.id, format!("{}/", group.path));
        // One bound parameter either way: the group id, or the path prefix.
        self.read(move |c| {
            // Paths of projects below the group start with `<group path>/`; compared with
            // substr rather than LIKE, whose wildcards `_` and `%` could occur in a path.
            let sql = if subgroups {
                format!(
                    "SELECT {PROJECT_COLS} FROM projects \
                     WHERE substr(path, 1, length(?1)) = ?1 ORDER BY id"
                )
            } else {
                format!("SELECT {PROJECT_COLS} FROM projects WHERE namespace_id = ?1 ORDER BY id")
            };
            let mut stmt = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = if subgroups {
                stmt.query_map([prefix], project_row)
            } else {
                stmt.query_map([group_id], project_row)
            };
            rows.map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)
        })
        .await
    }

    async fn create_user(&self, username: &str, now: Timestamp) -> StoreResult<User> {
        let username = username.to_string();
        self.call(move |c| {
            c.execute_cached(
                "INSERT INTO users (username, created_at) VALUES (?1, ?2)",
                params![username, now.millis()],
            )
            .map_err(db_err)?;
            Ok(User {
                id: c.last_insert_rowid(),
                username,
                created_at: now,
            })
        })
        .await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let username = username.to_string();
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {USER_COLS} FROM users WHERE username = ?1"),
                [username],
                user_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn set_membership(
        &self,
        user_id: i64,
        target: &MembershipTarget,
        role: Role,
    ) -> StoreResult<Membership> {
        let target = target.clone();
        self.call(move |c| {
            let (kind, value) = target.to_parts();
            c.execute_cached(
                "INSERT INTO memberships (user_id, target_kind, target, access_level) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id, target_kind, target) \
                 DO UPDATE SET access_level = excluded.access_level",
                params![user_id, kind, value, role.access_level()],
            )
            .map_err(db_err)?;
            Ok(Membership {
                user_id,
                target,
                role,
            })
        })
        .await
    }

    async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<Membership>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT target_kind, target, access_level FROM memberships WHERE user_id = ?1",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([user_id], |r| {
                    let target = target_from_columns(r.get(0)?, r.get(1)?)
                        .ok_or_else(|| bad_row("target"))?;
                    let role = Role::from_access_level(r.get(2)?).ok_or_else(|| bad_row("role"))?;
                    Ok(Membership {
                        user_id,
                        target,
                        role,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
        .await
    }

    async fn create_token(&self, token: NewToken, now: Timestamp) -> StoreResult<Token> {
        self.call(move |c| {
            let (kind, value) = match &token.target {
                Some(t) => {
                    let (k, v) = t.to_parts();
                    (Some(k), Some(v))
                }
                None => (None, None),
            };
            c.execute_cached(
                "INSERT INTO tokens (kind, sha256, scopes, user_id, target_kind, target, \
                 expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    token.kind.as_str(),
                    token.sha256.as_slice(),
                    Scope::join(&token.scopes),
                    token.user_id,
                    kind,
                    value,
                    token.expires_at.map(Timestamp::millis),
                    now.millis()
                ],
            )
            .map_err(db_err)?;
            Ok(token.into_token(c.last_insert_rowid(), now))
        })
        .await
    }

    async fn token_by_sha256(&self, sha256: &[u8; 32]) -> StoreResult<Option<Token>> {
        let sha = *sha256;
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM tokens WHERE sha256 = ?1"
            ))
            .map_err(db_err)?
            .query_row([sha.as_slice()], token_row)
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn token_by_id(&self, id: i64) -> StoreResult<Option<Token>> {
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = ?1"),
                [id],
                token_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<Token> {
        self.call(move |c| {
            let n = c
                .execute_cached("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::not_found(Record::Token, id));
            }
            c.query_row_cached(
                &format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = ?1"),
                [id],
                token_row,
            )
            .map_err(db_err)
        })
        .await
    }
}

#[async_trait]
impl SettingsStore for SqliteMetaStore {
    async fn group_settings(&self, group_id: i64) -> StoreResult<Option<GroupSettings>> {
        self.read(move |c| {
            c.query_row_cached(
                "SELECT generic_duplicates_allowed, generic_duplicate_exception_regex \
                 FROM groups WHERE id = ?1",
                [group_id],
                |r| {
                    Ok(GroupSettings {
                        generic_duplicates_allowed: r.get(0)?,
                        generic_duplicate_exception_regex: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(db_err)?
            .map(Some)
            .ok_or_else(|| StoreError::not_found(Record::Group, group_id))
        })
        .await
    }

    async fn set_group_settings(
        &self,
        group_id: i64,
        settings: &GroupSettings,
    ) -> StoreResult<GroupSettings> {
        let settings = settings.clone();
        self.call(move |c| {
            let n = c
                .execute_cached(
                    "UPDATE groups SET generic_duplicates_allowed = ?2, \
                     generic_duplicate_exception_regex = ?3 WHERE id = ?1",
                    params![
                        group_id,
                        settings.generic_duplicates_allowed,
                        settings.generic_duplicate_exception_regex
                    ],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::not_found(Record::Group, group_id));
            }
            Ok(settings)
        })
        .await
    }
}

#[async_trait]
impl PackageStore for SqliteMetaStore {
    async fn live_file_exists(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<bool> {
        Ok(self
            .newest_file(project_id, name, version, file_name)
            .await?
            .is_some())
    }

    async fn publish(&self, f: NewFile) -> StoreResult<(Package, PackageFile)> {
        self.call(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let now = f.now.millis();
            let package = match live_package(&tx, f.project_id, f.name.as_str(), f.version.as_str())
                .map_err(db_err)?
            {
                Some(mut p) => {
                    if f.refuse_duplicate
                        && newest_live_file(&tx, p.id, f.file_name.as_str())
                            .map_err(db_err)?
                            .is_some()
                    {
                        return Err(StoreError::already_exists(
                            Record::File,
                            format!("{}/{}", p.id, f.file_name.as_str()),
                        ));
                    }
                    let status = f.status.unwrap_or(p.status);
                    tx.execute_cached(
                        "UPDATE packages SET status = ?2, updated_at = ?3 WHERE id = ?1",
                        params![p.id, status.as_str(), now],
                    )
                    .map_err(db_err)?;
                    p.status = status;
                    p.updated_at = f.now;
                    p
                }
                None => {
                    let status = f.status.unwrap_or(PackageStatus::Default);
                    tx.execute_cached(
                        "INSERT INTO packages (project_id, name, version, status, created_at, \
                         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                        params![
                            f.project_id,
                            f.name.as_str(),
                            f.version.as_str(),
                            status.as_str(),
                            now
                        ],
                    )
                    .map_err(db_err)?;
                    Package {
                        id: tx.last_insert_rowid(),
                        project_id: f.project_id,
                        name: f.name.clone(),
                        version: f.version.clone(),
                        status,
                        created_at: f.now,
                        updated_at: f.now,
                        last_downloaded_at: None,
                    }
                }
            };
            tx.execute_cached(
                "INSERT INTO package_files (package_id, file_name, size, sha256, blob_key, \
                 created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    package.id,
                    f.file_name.as_str(),
                    f.size as i64,
                    f.sha256,
                    f.blob_key,
                    now
                ],
            )
            .map_err(db_err)?;
            let file = PackageFile {
                id: tx.last_insert_rowid(),
                package_id: package.id,
                file_name: f.file_name,
                size: f.size,
                sha256: f.sha256,
                blob_key: f.blob_key,
                created_at: f.now,
                updated_at: f.now,
            };
            tx.commit().map_err(db_err)?;
            Ok((package, file))
        })
        .await
    }

    async fn newest_file(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<Option<(Package, PackageFile)>> {
        let (name, version, file_name) = (
            name.as_str().to_string(),
            version.as_str().to_string(),
            file_name.as_str().to_string(),
        );
        self.read(move |c| {
            let Some(package) = live_package(c, project_id, &name, &version).map_err(db_err)?
            else {
                return Ok(None);
            };
            Ok(newest_live_file(c, package.id, &file_name)
                .map_err(db_err)?
                .map(|f| (package, f)))
        })
        .await
    }

    async fn mark_downloaded(&self, package: &Package, at: Timestamp) -> StoreResult<()> {
        let package_id = package.id;
        self.call(move |c| {
            c.execute_cached(
                "UPDATE packages SET last_downloaded_at = ?2 WHERE id = ?1",
                params![package_id, at.millis()],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn package_by_id(&self, id: i64) -> StoreResult<Option<Package>> {
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {PACKAGE_COLS} FROM packages WHERE id = ?1"),
                [id],
                package_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn list_packages(
        &self,
        projects: &[Project],
        query: &PackageQuery,
    ) -> StoreResult<Listed<Package>> {
        if projects.is_empty() || !query.satisfiable {
            return Ok(Listed::empty());
        }
        let project_ids: Vec<i64> = projects.iter().map(|p| p.id).collect();
        let query = query.clone();
        self.call(move |c| {
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let mut arg = |v: rusqlite::types::Value| {
                args.push(v);
                format!("?{}", args.len())
            };
            let ids = project_ids
                .into_iter()
                .map(|id| arg(id.into()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut conditions = vec![
                format!("p.project_id IN ({ids})"),
                format!(
                    "p.status = {}",
                    arg(query.status.as_str().to_string().into())
                ),
            ];
            for word in &query.name_words {
                conditions.push(format!(
                    "instr(lower(p.name), {}) > 0",
                    arg(word.clone().into())
                ));
            }
            if let Some(version) = &query.version {
                conditions.push(format!("p.version = {}", arg(version.clone().into())));
            }
            let filter = conditions.join(" AND ");
            let dir = if query.descending { "DESC" } else { "ASC" };
            let order = match query.order {
                PackageOrder::CreatedAt | PackageOrder::Type => {
                    format!("p.created_at {dir}, p.id {dir}")
                }
                PackageOrder::Name => format!("p.name {dir}, p.version {dir}, p.id {dir}"),
                PackageOrder::Version => format!("p.version {dir}, p.id {dir}"),
                PackageOrder::ProjectPath => {
                    format!("pr.path {dir}, p.created_at {dir}, p.id {dir}")
                }
            };
            let cols = PACKAGE_COLS
                .split(", ")
                .map(|col| format!("p.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let from =
                format!("FROM packages p JOIN projects pr ON pr.id = p.project_id WHERE {filter}");
            // One row past the page says whether a next page exists.
            let sql = format!(
                "SELECT {cols} {from} ORDER BY {order} LIMIT {} OFFSET {}",
                query.page.per_page + 1,
                query.page.offset()
            );
            let mut stmt = c.prepare(&sql).map_err(db_err)?;
            let mut items = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), package_row)
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            let has_next = items.len() as u64 > query.page.per_page;
            items.truncate(query.page.per_page as usize);
            let counted: u64 = c
                .query_row(
                    &format!(
                        "SELECT COUNT(*) FROM (SELECT 1 {from} LIMIT {})",
                        COUNT_LIMIT + 1
                    ),
                    rusqlite::params_from_iter(args.iter()),
                    |r| r.get::<_, i64>(0),
                )
                .map_err(db_err)? as u64;
            Ok(Listed {
                items,
                total: (counted <= COUNT_LIMIT).then_some(counted),
                has_next,
            })
        })
        .await
    }

    async fn files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {FILE_COLS} FROM package_files WHERE package_id = ?1 \
                     AND status != 'pending_destruction'"
                ))
                .map_err(db_err)?;
            stmt.query_map([package_id], file_row)
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)
        })
        .await
    }

    async fn delete_package(&self, package: &Package, now: Timestamp) -> StoreResult<()> {
        self.mark_doomed("packages", package.id, now).await
    }

    async fn delete_file(&self, file: &PackageFile, now: Timestamp) -> StoreResult<()> {
        self.mark_doomed("package_files", file.id, now).await
    }
}

#[async_trait]
impl PurgeStore for SqliteMetaStore {
    async fn doomed(&self, limit: usize) -> StoreResult<(Vec<Package>, Vec<PackageFile>)> {
        self.call(move |c| {
            let packages = c
                .prepare_cached(&format!(
                    "SELECT {PACKAGE_COLS} FROM packages WHERE status = 'pending_destruction' \
                     ORDER BY id LIMIT ?1"
                ))
                .map_err(db_err)?
                .query_map([limit as i64], package_row)
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            let files = c
                .prepare_cached(&format!(
                    "SELECT {FILE_COLS} FROM package_files \
                     WHERE status = 'pending_destruction' ORDER BY id LIMIT ?1"
                ))
                .map_err(db_err)?
                .query_map([limit as i64], file_row)
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            Ok((packages, files))
        })
        .await
    }

    async fn all_files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {FILE_COLS} FROM package_files WHERE package_id = ?1 ORDER BY id"
            ))
            .map_err(db_err)?
            .query_map([package_id], file_row)
            .map_err(db_err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err)
        })
        .await
    }

    async fn blob_shared(&self, file: &PackageFile) -> StoreResult<bool> {
        let (id, key) = (file.id, file.blob_key.clone());
        self.read(move |c| {
            c.query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM package_files WHERE blob_key = ?1 AND id != ?2)",
                params![key, id],
                |r| r.get::<_, bool>(0),
            )
            .map_err(db_err)
        })
        .await
    }

    async fn forget_file(&self, file: &PackageFile) -> StoreResult<()> {
        let id = file.id;
        self.call(move |c| {
            c.execute_cached("DELETE FROM package_files WHERE id = ?1", [id])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn forget_package(&self, package: &Package) -> StoreResult<()> {
        let id = package.id;
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            tx.execute_cached("DELETE FROM package_files WHERE package_id = ?1", [id])
                .map_err(db_err)?;
            tx.execute_cached("DELETE FROM packages WHERE id = ?1", [id])
                .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }
}

#[async_trait]
impl UploadSessionStore for SqliteMetaStore {
    async fn create_upload_session(&self, session: &UploadSession) -> StoreResult<()> {
        let u = session.clone();
        self.call(move |c| {
            let p = u.state.to_parts();
            c.execute_cached(
                "INSERT INTO upload_sessions (id, project_id, name, version, file_name, \
                 package_status, size, sha256, staged_key, multipart_id, part_size, token_id, \
                 state, package_id, file_id, refused_status, refused_message, claim_until, \
                 created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
                 ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
                params![
                    u.id,
                    u.project_id,
                    u.name.as_str(),
                    u.version.as_str(),
                    u.file_name.as_str(),
                    u.package_status.map(|s| s.as_str()),
                    u.size as i64,
                    u.sha256,
                    u.staged_key,
                    u.multipart_id,
                    u.part_size as i64,
                    u.token_id,
                    p.kind,
                    p.package_id,
                    p.file_id,
                    p.legacy_status,
                    p.reason,
                    p.until,
                    u.created_at.millis(),
                    u.expires_at.millis()
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn upload_session(&self, id: &str) -> StoreResult<Option<UploadSession>> {
        let id = id.to_string();
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {SESSION_COLS} FROM upload_sessions WHERE id = ?1"),
                [id],
                session_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn claim_upload_session(
        &self,
        id: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<UploadSession>> {
        let id = id.to_string();
        self.call(move |c| {
            // `now` is an integer, safe to write into the statement.
            let lapsed = format!(
                "state = 'pending' OR (state = 'committing' AND claim_until < {})",
                now.millis()
            );
            set_session_state(c, &id, &SessionState::Committing { until }, &lapsed)
        })
        .await
    }

    async fn settle_upload_session(
        &self,
        id: &str,
        state: &SessionState,
    ) -> StoreResult<Option<UploadSession>> {
        let (id, state) = (id.to_string(), state.clone());
        self.call(move |c| set_session_state(c, &id, &state, "state IN ('pending', 'committing')"))
            .await
    }
}
