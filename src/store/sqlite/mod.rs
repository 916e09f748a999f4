//! `MetaStore` on an embedded SQLite file (WAL, busy timeout), safe to share with
//! `depot admin` running in another process on the same data directory. This module owns the
//! connection: opening (pragmas, then the schema's migrations), running queries on or off the
//! async threads, and turning SQLite's errors into `StoreError`s. One file per kind of record
//! holds the trait implementations; `rows` decodes rows; `migrations` owns the schema.

mod cleanup;
mod events;
mod group;
mod hooks;
mod identity;
mod migrations;
mod packages;
mod protection;
mod purge;
mod rows;
mod settings;
mod trust;
mod uploads;
mod web;

#[cfg(test)]
mod upgrade_tests;

use super::{Record, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Params, Row};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct SqliteMetaStore {
    /// The connection that writes (and that migrated the schema).
    conn: Arc<Mutex<Connection>>,
    /// Connections that only read, one per core or so: a WAL database serves readers side by
    /// side, each seeing the last commit. With one connection for everything, concurrent
    /// downloads found it taken and hopped to the blocking pool to wait for it (`perf`, GET at
    /// 8 clients: most samples in the scheduler).
    readers: Arc<[Mutex<Connection>]>,
    /// Calls made on the connection so far: what a use case costs this store, as request
    /// counts are what it costs DynamoDB (the purge's test keeps it per pass, not per file).
    round_trips: Arc<AtomicU64>,
    /// Publishes waiting to be committed together (`group`).
    publishes: group::Queue,
}

impl SqliteMetaStore {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    /// `Misconfigured` if it was written by a newer depot.
    pub fn open(path: &Path) -> StoreResult<Self> {
        // Created 0600 before SQLite opens it: its WAL and shared-memory files take the
        // database file's permissions.
        crate::store::private::create_file(path).map_err(StoreError::backend)?;
        let mut conn = Connection::open(path).map_err(StoreError::backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(StoreError::backend)?;
        // FULL: each commit syncs the WAL before it returns, so a 201 survives a power cut
        // (NORMAL would lose the last commits; tests/it/durability.rs checks the order).
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .map_err(StoreError::backend)?;
        migrations::migrate(&mut conn).map_err(|e| match e {
            StoreError::Misconfigured(why) => {
                StoreError::Misconfigured(format!("{}: {why}", path.display()))
            }
            other => other,
        })?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let readers = (0..cores.clamp(2, MAX_READERS))
            .map(|_| open_reader(path).map(Mutex::new))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers: readers.into(),
            round_trips: Arc::default(),
            publishes: group::Queue::default(),
        })
    }

    /// How many calls have been made on the connection since it was opened.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Run the read-only query `f` right here on a reading connection that is free: an
    /// indexed read of a local WAL database takes microseconds (readers never wait for writers
    /// or checkpoints), less than handing it to a blocking thread and back. When every reader
    /// is busy, wait for one off the async threads.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let out = self.read_now(f).await;
        crate::telemetry::store_call(started.elapsed());
        out
    }

    /// [`Self::read`], untimed.
    async fn read_now<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        for reader in self.readers.iter() {
            match reader.try_lock() {
                Ok(mut guard) => return f(&mut guard),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                    return f(&mut poisoned.into_inner());
                }
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = readers[0]
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(StoreError::backend)?
    }

    /// The row the query `sql` (with the one parameter `key`) returns, decoded by `row`; `None`
    /// if there is none.
    async fn read_one<T, K>(
        &self,
        sql: String,
        key: K,
        row: fn(&Row) -> rusqlite::Result<T>,
    ) -> StoreResult<Option<T>>
    where
        T: Send + 'static,
        K: rusqlite::ToSql + Send + 'static,
    {
        self.read(move |c| {
            c.query_row_cached(&sql, [key], row)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    /// Every row the query `sql` (with the parameters `args`) returns, decoded by `row`.
    async fn read_all<T, P>(
        &self,
        sql: String,
        args: P,
        row: fn(&Row) -> rusqlite::Result<T>,
    ) -> StoreResult<Vec<T>>
    where
        T: Send + 'static,
        P: Params + Send + 'static,
    {
        self.read(move |c| c.query_all_cached(&sql, args, row).map_err(db_err))
            .await
    }

    /// Run `f` on the connection off the async threads.
    async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let out = self.on_blocking_thread(f).await;
        crate::telemetry::store_call(started.elapsed());
        out
    }

    async fn on_blocking_thread<T, F>(&self, f: F) -> StoreResult<T>
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
const STATEMENT_CACHE: usize = 96;

/// The most reading connections a store opens (one per core up to this).
const MAX_READERS: usize = 8;

/// A connection for reads only (`query_only`: a write through it is an error), opened on the
/// database the writer has just brought up to date.
fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(StoreError::backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(StoreError::backend)?;
    conn.execute_batch("PRAGMA query_only=ON;")
        .map_err(StoreError::backend)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

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
    /// Every row `sql` returns, decoded by `f`.
    fn query_all_cached<T, P: Params, F: FnMut(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<Vec<T>>;
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

    fn query_all_cached<T, P: Params, F: FnMut(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<Vec<T>> {
        self.prepare_cached(sql)?.query_map(params, f)?.collect()
    }
}

/// SQLite's error as a `StoreError`: a unique key taken is `AlreadyExists` (callers that know
/// the key name it with [`exists_as`]), another broken constraint a caller error, a full disk
/// `Full`, and a row that does not decode `Corrupt`.
fn db_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::Error::{FromSqlConversionFailure, IntegralValueOutOfRange, InvalidColumnType};
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
        FromSqlConversionFailure(_, _, inner) => match inner.downcast_ref::<rows::CorruptRow>() {
            Some(row) => StoreError::corrupt(&row.key, &row.detail),
            None => StoreError::corrupt(format!("column {}", column_of(&e)), inner),
        },
        InvalidColumnType(..) | IntegralValueOutOfRange(..) => {
            StoreError::corrupt(format!("column {}", column_of(&e)), &e)
        }
        _ => StoreError::backend(e),
    }
}

/// The column a decoding error is about, by name where rusqlite gives it.
fn column_of(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::InvalidColumnType(_, name, _) => name.clone(),
        rusqlite::Error::FromSqlConversionFailure(i, _, _)
        | rusqlite::Error::IntegralValueOutOfRange(i, _) => i.to_string(),
        _ => "?".into(),
    }
}

/// `db_err`, with a taken unique key reported as `what` `key`: what the caller tried to save.
fn exists_as(
    what: Record,
    key: impl std::fmt::Display,
) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match db_err(e) {
        StoreError::AlreadyExists { .. } => StoreError::already_exists(what, key),
        other => other,
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
        "group_settings" => Record::Settings,
        "packages" => Record::Package,
        "package_files" => Record::File,
        _ => Record::UploadSession,
    }
}
