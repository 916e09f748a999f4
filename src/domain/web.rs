//! Signed-in browser sessions of the web UI: stored by the SHA-256 of their id (the cookie
//! holds the id, the store only its hash), with the form token that guards their writes.

use super::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// SHA-256 of the session id the cookie carries.
    pub sha256: [u8; 32],
    pub user_id: i64,
    /// The personal token it was signed in with: revoked or expired, the session ends too.
    pub token_id: i64,
    /// The token every form of the session carries (CSRF): random, compared in constant time.
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl WebSession {
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }
}
