//! `UploadSessionStore` on SQLite: sessions of the large-file handoff, claimed and settled by
//! conditional updates so that a session commits at most once.

use super::rows::{SESSION_COLS, session_row};
use super::{Cached, SqliteMetaStore, db_err, exists_as};
use crate::domain::{SessionState, Timestamp, UploadSession};
use crate::store::{Record, StoreResult, UploadSessionStore};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

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
                 refusal = ?5, claim_until = ?6 WHERE id = ?1 AND ({condition})"
            ),
            params![id, p.kind, p.package_id, p.file_id, p.reason, p.until],
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

#[async_trait]
impl UploadSessionStore for SqliteMetaStore {
    async fn create_upload_session(&self, session: &UploadSession) -> StoreResult<()> {
        let u = session.clone();
        self.call(move |c| {
            let p = u.state.to_parts();
            c.execute_cached(
                &format!(
                    "INSERT INTO upload_sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, \
                     ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
                ),
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
                    p.reason,
                    p.until,
                    u.created_at.millis(),
                    u.expires_at.millis(),
                    u.delegation,
                ],
            )
            .map_err(exists_as(Record::UploadSession, &u.id))?;
            Ok(())
        })
        .await
    }

    async fn upload_session(&self, id: &str) -> StoreResult<Option<UploadSession>> {
        let sql = format!("SELECT {SESSION_COLS} FROM upload_sessions WHERE id = ?1");
        self.read_one(sql, id.to_string(), session_row).await
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
