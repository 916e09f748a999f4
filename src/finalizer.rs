//! The store's side of the upload handoff: S3 `ObjectCreated` events on `uploads/` and
//! `checked/` commit the session whose bytes just arrived, through the same
//! `Registry::complete_upload` as the client's `POST …/complete` (one code path; a session
//! commits at most once, whoever asks first). The `lambda-finalize` binary feeds its events
//! here.

use crate::Registry;
use crate::store::session_of_upload_key;
use serde::Deserialize;
use serde_json::{Value, json};

/// The part of an S3 event notification this reads.
#[derive(Debug, Deserialize)]
pub struct S3Event {
    #[serde(rename = "Records", default)]
    pub records: Vec<S3Record>,
}

#[derive(Debug, Deserialize)]
pub struct S3Record {
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    pub s3: S3Entity,
}

#[derive(Debug, Deserialize)]
pub struct S3Entity {
    pub object: S3Object,
}

#[derive(Debug, Deserialize)]
pub struct S3Object {
    /// URL-encoded, as S3 sends it (staging keys are plain hex, so never encoded).
    pub key: String,
}

/// Commit the sessions whose staged objects `event` announces; one summary per record:
/// `{"key", "session", "state"}`, or `{"key", "skipped"}` for objects that are not staged
/// uploads. A store failure is returned as an error so that Lambda retries the event.
pub async fn on_s3_event(
    registry: &Registry,
    event: &S3Event,
) -> Result<Vec<Value>, crate::registry::Error> {
    let mut out = Vec::new();
    for record in &event.records {
        let key = record.s3.object.key.as_str();
        let created =
            record.event_name.is_empty() || record.event_name.starts_with("ObjectCreated");
        let Some(id) = session_of_upload_key(key).filter(|_| created) else {
            out.push(json!({"key": key, "skipped": true}));
            continue;
        };
        match registry.complete_upload(None, id, &[]).await {
            Ok(view) => {
                tracing::info!(
                    session = id,
                    state = view.session.state.kind(),
                    "upload event"
                );
                out.push(json!({"key": key, "session": id, "state": view.session.state.kind()}));
            }
            // An object with no session (expired records, stray writes): nothing to commit.
            Err(crate::registry::Error::NotFound(_)) => {
                tracing::warn!(key, "an upload event for no known session");
                out.push(json!({"key": key, "skipped": true}));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
