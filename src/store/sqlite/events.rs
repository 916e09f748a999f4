//! Events on SQLite: each written in the transaction of the change it describes (`record`),
//! read back newest first as the audit log, and forgotten after the retention time once no
//! hook still has to deliver them.

use super::{Cached, SqliteMetaStore, db_err};
use crate::domain::{Event, EventQuery, Timestamp};
use crate::store::{EventStore, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, params};

/// Save `event` in the transaction `tx` is in (the change's own).
pub(super) fn record(tx: &Connection, event: &Event) -> StoreResult<()> {
    tx.execute_cached(
        "INSERT INTO events (id, at, type, project_id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            event.id,
            event.time.millis(),
            event.kind.as_str(),
            event.project.as_ref().map(|p| p.id),
            event.to_json()
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

/// An event's stored body, decoded.
pub(super) fn decode(seq: i64, body: &str) -> StoreResult<Event> {
    Event::from_json(body)
        .ok_or_else(|| StoreError::corrupt(format!("event {seq}"), "its body is not an event"))
}

#[async_trait]
impl EventStore for SqliteMetaStore {
    async fn events(&self, query: &EventQuery) -> StoreResult<(Vec<Event>, bool)> {
        let mut sql = "SELECT seq, body FROM events WHERE 1 = 1".to_string();
        let mut args: Vec<Value> = Vec::new();
        let mut arg = |clause: &str, value: Value, sql: &mut String| {
            args.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(id) = query.project_id {
            arg("project_id =", Value::Integer(id), &mut sql);
        }
        if let Some(after) = query.after {
            arg("at >=", Value::Integer(after.millis()), &mut sql);
        }
        if let Some(before) = query.before {
            arg("at <=", Value::Integer(before.millis()), &mut sql);
        }
        if let Some(kind) = query.kind {
            arg("type =", Value::Text(kind.as_str().into()), &mut sql);
        }
        let per_page = query.per_page.max(1);
        let offset = query.page.saturating_sub(1) * per_page;
        // One more than the page: whether another follows.
        sql.push_str(&format!(
            " ORDER BY seq DESC LIMIT {} OFFSET {offset}",
            per_page + 1
        ));
        let rows = self
            .read_all(sql, rusqlite::params_from_iter(args), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .await?;
        let more = rows.len() > per_page;
        let events = rows
            .iter()
            .take(per_page)
            .map(|(seq, body)| decode(*seq, body))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((events, more))
    }

    async fn forget_events(&self, before: Timestamp) -> StoreResult<u64> {
        self.call(move |c| {
            let gone = c
                .execute_cached(
                    "DELETE FROM events WHERE at < ?1 AND seq <= \
                     (SELECT COALESCE(MAX(seq), 0) FROM hook_cursor) AND NOT EXISTS \
                     (SELECT 1 FROM hook_deliveries d WHERE d.event_seq = events.seq \
                     AND d.state = 'pending')",
                    params![before.millis()],
                )
                .map_err(db_err)?;
            Ok(gone as u64)
        })
        .await
    }
}

/// Make `change` and save `event` in one transaction: both or neither.
pub(super) fn with_event<T>(
    c: &mut Connection,
    event: &Event,
    change: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let tx = c.transaction().map_err(db_err)?;
    let out = change(&tx)?;
    record(&tx, event)?;
    tx.commit().map_err(db_err)?;
    Ok(out)
}
