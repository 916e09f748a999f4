//! `WebSessionStore` on SQLite: one row per signed-in session; creating one also drops the
//! sessions that expired (there are few, and nothing else sweeps them).

use super::{Cached, SqliteMetaStore, db_err};
use crate::domain::{Timestamp, WebSession};
use crate::store::{StoreResult, WebSessionStore};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

#[async_trait]
impl WebSessionStore for SqliteMetaStore {
    async fn create_web_session(&self, session: &WebSession) -> StoreResult<()> {
        let s = session.clone();
        self.call(move |c| {
            c.execute_cached(
                "DELETE FROM web_sessions WHERE expires_at <= ?1",
                [Timestamp::now().millis()],
            )
            .map_err(db_err)?;
            c.execute_cached(
                "INSERT INTO web_sessions (sha256, user_id, token_id, csrf, created_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.sha256.as_slice(),
                    s.user_id,
                    s.token_id,
                    s.csrf,
                    s.created_at.millis(),
                    s.expires_at.millis()
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn web_session(&self, sha256: &[u8; 32]) -> StoreResult<Option<WebSession>> {
        let sha = *sha256;
        self.read(move |c| {
            c.query_row_cached(
                "SELECT user_id, token_id, csrf, created_at, expires_at FROM web_sessions \
                 WHERE sha256 = ?1",
                [sha.as_slice()],
                |r| {
                    Ok(WebSession {
                        sha256: sha,
                        user_id: r.get(0)?,
                        token_id: r.get(1)?,
                        csrf: r.get(2)?,
                        created_at: Timestamp::from_millis(r.get(3)?),
                        expires_at: Timestamp::from_millis(r.get(4)?),
                    })
                },
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn delete_web_session(&self, sha256: &[u8; 32]) -> StoreResult<()> {
        let sha = *sha256;
        self.call(move |c| {
            c.execute_cached(
                "DELETE FROM web_sessions WHERE sha256 = ?1",
                [sha.as_slice()],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}
