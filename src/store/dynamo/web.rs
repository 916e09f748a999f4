//! `WebSessionStore` on DynamoDB: one item per signed-in session, read strongly (a signed-out
//! session must not work a moment longer), which the table's TTL deletes after it expires.

use super::DynamoMetaStore;
use super::items::TTL_ATTRIBUTE;
use super::keys::Key;
use super::schema::{Fields, ItemWriter};
use crate::domain::{Timestamp, WebSession};
use crate::store::aws::sdk_failure;
use crate::store::{StoreResult, WebSessionStore};
use async_trait::async_trait;

#[async_trait]
impl WebSessionStore for DynamoMetaStore {
    async fn create_web_session(&self, s: &WebSession) -> StoreResult<()> {
        let item = ItemWriter::new(&Key::web_session(&s.sha256))
            .n("user_id", s.user_id)
            .n("token_id", s.token_id)
            .s("csrf", &s.csrf)
            .n("created_at", s.created_at.millis())
            .n("expires_at", s.expires_at.millis())
            .n(TTL_ATTRIBUTE, s.expires_at.millis() / 1000)
            .build();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(())
    }

    async fn web_session(&self, sha256: &[u8; 32]) -> StoreResult<Option<WebSession>> {
        let Some(item) = self.get(&Key::web_session(sha256)).await? else {
            return Ok(None);
        };
        let f = Fields::of(&item)?;
        Ok(Some(WebSession {
            sha256: *sha256,
            user_id: f.n("user_id")?,
            token_id: f.n("token_id")?,
            csrf: f.s("csrf")?,
            created_at: Timestamp::from_millis(f.n("created_at")?),
            expires_at: Timestamp::from_millis(f.n("expires_at")?),
        }))
    }

    async fn delete_web_session(&self, sha256: &[u8; 32]) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Key::web_session(sha256).item()))
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(())
    }
}
