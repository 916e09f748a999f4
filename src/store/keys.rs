//! The one place object keys are decided: fresh blob keys, and where upload sessions stage their
//! bytes.

/// The one place object keys are decided: a fresh blob key never reused or rewritten.
pub fn new_blob_key() -> String {
    format!("blobs/{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// The key of a file whose bytes the metadata store keeps in the file's record (small files):
/// no blob store ever holds it, so nothing is put, fetched or purged there.
pub fn new_inline_key() -> String {
    format!("{INLINE_PREFIX}{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// The prefix of every inline file's key.
pub const INLINE_PREFIX: &str = "inline/";

/// Are the bytes of the file with blob key `key` kept in its record?
pub fn is_inline_key(key: &str) -> bool {
    key.starts_with(INLINE_PREFIX)
}

/// The blob key upload session `session_id` commits its bytes to: derived from the session, so
/// a committer that takes over a crashed one finds the bytes it already copied.
pub fn session_blob_key(session_id: &str) -> String {
    format!("blobs/{session_id}")
}

/// Where the bytes of upload session `session_id` are staged (expired by the bucket's
/// lifecycle rule and by the session's own expiry).
pub fn staging_key(session_id: &str) -> String {
    format!("{STAGING_PREFIX}{session_id}")
}

/// The prefix of every staged upload.
pub const STAGING_PREFIX: &str = "uploads/";

/// The session whose bytes are staged at `key`, if it is one.
pub fn session_of_staging_key(key: &str) -> Option<&str> {
    session_id(key.strip_prefix(STAGING_PREFIX)?)
}

/// Where a session sends its bytes in one PUT that object storage checks against the declared
/// SHA-256 as they arrive: the key is both the staging key and the final blob key (written
/// once, by the client's URL; sealed if the session ends without it).
pub fn checked_key(session_id: &str) -> String {
    format!("{CHECKED_PREFIX}{session_id}")
}

/// The prefix of every checked upload (S3 tells the finalizer of objects under it too).
pub const CHECKED_PREFIX: &str = "checked/";

/// The session an upload event for `key` is about (as an S3 event names it): a staged upload
/// or a checked one.
pub fn session_of_upload_key(key: &str) -> Option<&str> {
    session_of_staging_key(key).or_else(|| session_id(key.strip_prefix(CHECKED_PREFIX)?))
}

/// The blob key a session's bytes are committed under: the staged key itself where that is
/// final already (a checked upload, or parts joined at the blob key), else the session's own
/// blob key, which its bytes are copied to.
pub fn committed_key(session_id: &str, staged_key: &str) -> String {
    match session_of_staging_key(staged_key) {
        Some(_) => session_blob_key(session_id),
        None => staged_key.to_string(),
    }
}

fn session_id(id: &str) -> Option<&str> {
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_are_unique_and_safe() {
        let a = new_blob_key();
        assert_ne!(a, new_blob_key());
        assert!(a.starts_with("blobs/") && a.len() == 6 + 32);
        assert!(a[6..].bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn inline_keys_are_unique_and_never_blob_keys() {
        let a = new_inline_key();
        assert_ne!(a, new_inline_key());
        assert!(is_inline_key(&a) && !is_inline_key(&new_blob_key()));
    }

    #[test]
    fn staging_keys_name_their_session() {
        let key = staging_key("00ff");
        assert_eq!(session_of_staging_key(&key), Some("00ff"));
        assert_eq!(session_of_staging_key("uploads/"), None);
        assert_eq!(session_of_staging_key("uploads/../x"), None);
        assert_eq!(session_of_staging_key("blobs/00ff"), None);
        assert_eq!(session_of_staging_key(&checked_key("00ff")), None);
    }

    #[test]
    fn upload_events_name_staged_and_checked_sessions_only() {
        assert_eq!(session_of_upload_key(&staging_key("0a")), Some("0a"));
        assert_eq!(session_of_upload_key(&checked_key("0b")), Some("0b"));
        assert_eq!(session_of_upload_key("checked/"), None);
        assert_eq!(session_of_upload_key("checked/x/../y"), None);
        assert_eq!(session_of_upload_key(&session_blob_key("0c")), None);
    }

    #[test]
    fn only_staged_bytes_move_at_commit() {
        assert_eq!(
            committed_key("0a", &staging_key("0a")),
            session_blob_key("0a")
        );
        assert_eq!(committed_key("0b", &checked_key("0b")), checked_key("0b"));
        assert_eq!(
            committed_key("0c", &session_blob_key("0c")),
            session_blob_key("0c")
        );
    }
}
