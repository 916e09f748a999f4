//! `HookStore` on SQLite: webhooks, the fan-out of new events into deliveries (a cursor over
//! the event log, moved in the same transaction), and the deliveries' states.

use super::events::decode;
use super::rows::corrupt_key;
use super::{Cached, SqliteMetaStore, db_err};
use crate::domain::{
    Attempt, Delivery, DeliveryState, EventType, Hook, HookLog, MembershipTarget, Timestamp,
    new_event_id,
};
use crate::store::{HookStore, Record, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

const HOOK_COLS: &str = "id, target_kind, target, url, secret, name, description, event_types, \
     enable_ssl_verification, created_at";

fn hook_row(r: &Row) -> rusqlite::Result<Hook> {
    let id: i64 = r.get(0)?;
    let (kind, value): (String, String) = (r.get(1)?, r.get(2)?);
    let target = MembershipTarget::from_parts(&kind, &value)
        .ok_or_else(|| corrupt_key(format!("hook {id}"), format!("target {kind:?} {value:?}")))?;
    let types: String = r.get(7)?;
    let event_types = types
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            EventType::parse(t)
                .ok_or_else(|| corrupt_key(format!("hook {id}"), format!("event type {t:?}")))
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Hook {
        id,
        target,
        url: r.get(3)?,
        secret: r.get(4)?,
        name: r.get(5)?,
        description: r.get(6)?,
        event_types,
        enable_ssl_verification: r.get(8)?,
        created_at: Timestamp::from_millis(r.get(9)?),
    })
}

fn all_hooks(c: &Connection) -> StoreResult<Vec<Hook>> {
    c.query_all_cached(
        &format!("SELECT {HOOK_COLS} FROM hooks ORDER BY id"),
        [],
        hook_row,
    )
    .map_err(db_err)
}

/// Turn the events after the cursor into deliveries, moving the cursor: one transaction.
fn fan_out_events(c: &mut Connection, now: Timestamp) -> StoreResult<usize> {
    let tx = c
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let cursor: i64 = tx
        .query_row_cached("SELECT seq FROM hook_cursor WHERE one = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_err)?
        .unwrap_or(0);
    let new: Vec<(i64, String)> = tx
        .query_all_cached(
            "SELECT seq, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT 1000",
            [cursor],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db_err)?;
    let Some(last) = new.last().map(|(seq, _)| *seq) else {
        return Ok(0);
    };
    let hooks = all_hooks(&tx)?;
    let mut made = 0;
    for (seq, body) in &new {
        let event = decode(*seq, body)?;
        for hook in hooks.iter().filter(|h| h.takes(&event)) {
            tx.execute_cached(
                "INSERT OR IGNORE INTO hook_deliveries (hook_id, event_seq, delivery_id, \
                 order_key, state, next_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
                params![
                    hook.id,
                    seq,
                    new_event_id(),
                    event.order_key(),
                    now.millis()
                ],
            )
            .map_err(db_err)?;
            made += 1;
        }
    }
    tx.execute_cached(
        "INSERT INTO hook_cursor (one, seq) VALUES (1, ?1) \
         ON CONFLICT (one) DO UPDATE SET seq = excluded.seq",
        [last],
    )
    .map_err(db_err)?;
    tx.commit().map_err(db_err)?;
    Ok(made)
}

#[async_trait]
impl HookStore for SqliteMetaStore {
    async fn create_hook(&self, hook: Hook) -> StoreResult<Hook> {
        self.call(move |c| {
            let (kind, target) = hook.target.to_parts();
            let types: Vec<&str> = hook.event_types.iter().map(|t| t.as_str()).collect();
            c.execute_cached(
                "INSERT INTO hooks (target_kind, target, url, secret, name, description, \
                 event_types, enable_ssl_verification, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    kind,
                    target,
                    hook.url,
                    hook.secret,
                    hook.name,
                    hook.description,
                    types.join(","),
                    hook.enable_ssl_verification,
                    hook.created_at.millis()
                ],
            )
            .map_err(db_err)?;
            Ok(Hook {
                id: c.last_insert_rowid(),
                ..hook
            })
        })
        .await
    }

    async fn hooks_of(&self, target: &MembershipTarget) -> StoreResult<Vec<Hook>> {
        let (kind, value) = target.to_parts();
        let sql = format!(
            "SELECT {HOOK_COLS} FROM hooks WHERE target_kind = ?1 AND target = ?2 ORDER BY id"
        );
        self.read_all(sql, (kind, value), hook_row).await
    }

    async fn hook(&self, id: i64) -> StoreResult<Option<Hook>> {
        let sql = format!("SELECT {HOOK_COLS} FROM hooks WHERE id = ?1");
        self.read_one(sql, id, hook_row).await
    }

    async fn delete_hook(&self, id: i64) -> StoreResult<()> {
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            tx.execute_cached("DELETE FROM hook_deliveries WHERE hook_id = ?1", [id])
                .map_err(db_err)?;
            let gone = tx
                .execute_cached("DELETE FROM hooks WHERE id = ?1", [id])
                .map_err(db_err)?;
            if gone == 0 {
                return Err(StoreError::not_found(Record::Hook, id));
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn hook_log(&self, id: i64) -> StoreResult<HookLog> {
        self.read(move |c| {
            let mut log = c
                .query_row_cached(
                    "SELECT last_status, last_error, last_at FROM hook_deliveries \
                     WHERE hook_id = ?1 AND last_at IS NOT NULL \
                     ORDER BY last_at DESC, event_seq DESC LIMIT 1",
                    [id],
                    |r| {
                        Ok(HookLog {
                            last_status: r.get(0)?,
                            last_error: r.get(1)?,
                            last_at: r.get::<_, Option<i64>>(2)?.map(Timestamp::from_millis),
                            ..HookLog::default()
                        })
                    },
                )
                .optional()
                .map_err(db_err)?
                .unwrap_or_default();
            let counts: Vec<(String, i64)> = c
                .query_all_cached(
                    "SELECT state, COUNT(*) FROM hook_deliveries WHERE hook_id = ?1 \
                     GROUP BY state",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db_err)?;
            for (state, n) in counts {
                let n = n as u64;
                match DeliveryState::parse(&state) {
                    Some(DeliveryState::Pending) => log.pending = n,
                    Some(DeliveryState::Delivered) => log.delivered = n,
                    Some(DeliveryState::Failed) => log.failed = n,
                    None => {}
                }
            }
            Ok(log)
        })
        .await
    }

    async fn fan_out(&self, now: Timestamp) -> StoreResult<usize> {
        self.call(move |c| fan_out_events(c, now)).await
    }

    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.read(move |c| {
            // The oldest pending delivery of each hook and package, if it is due.
            let rows: Vec<(i64, i64, String, i64, String)> = c
                .query_all_cached(
                    "SELECT d.hook_id, d.event_seq, d.delivery_id, d.attempts, e.body \
                     FROM hook_deliveries d JOIN events e ON e.seq = d.event_seq \
                     WHERE d.state = 'pending' AND d.next_at <= ?1 AND NOT EXISTS \
                     (SELECT 1 FROM hook_deliveries o WHERE o.hook_id = d.hook_id \
                     AND o.order_key = d.order_key AND o.state = 'pending' \
                     AND o.event_seq < d.event_seq) \
                     ORDER BY d.event_seq LIMIT ?2",
                    params![now.millis(), limit as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .map_err(db_err)?;
            let hooks = all_hooks(c)?;
            let mut due = Vec::with_capacity(rows.len());
            for (hook_id, seq, delivery_id, attempts, body) in rows {
                let Some(hook) = hooks.iter().find(|h| h.id == hook_id) else {
                    continue;
                };
                due.push(Delivery {
                    hook: hook.clone(),
                    seq,
                    event: decode(seq, &body)?,
                    delivery_id,
                    attempts: attempts as u32,
                });
            }
            Ok(due)
        })
        .await
    }

    async fn record_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> StoreResult<()> {
        let (hook, seq) = (delivery.hook.id, delivery.seq);
        let attempt = attempt.clone();
        self.call(move |c| {
            c.execute_cached(
                "UPDATE hook_deliveries SET state = ?3, attempts = attempts + 1, next_at = ?4, \
                 last_status = ?5, last_error = ?6, last_at = ?7 \
                 WHERE hook_id = ?1 AND event_seq = ?2 AND state = 'pending'",
                params![
                    hook,
                    seq,
                    attempt.state.as_str(),
                    attempt.next_at.millis(),
                    attempt.status,
                    attempt.error,
                    attempt.at.millis()
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}
