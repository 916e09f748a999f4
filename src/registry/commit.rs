//! Committing an upload session, whoever asks (the client's `complete`, or the store's upload
//! event through the finalizer): claim it with a lease, check it again as a direct PUT would be
//! checked, measure and hash the bytes really staged, publish them, settle the session. A
//! session commits at most once; refusals are final states, store failures are errors (the
//! lease then lapses and a later call retries).

use super::lost_answers::Landed;
use super::uploads::{COMMIT_LEASE_SECONDS, SessionView, Staged};
use super::{Error, Registry, duplicates_allowed};
use crate::auth::{self, Action, Denied, Principal};
use crate::domain::{
    NewFile, Project, ProjectRef, Refusal, SessionClaim, SessionState, Timestamp, UploadSession,
};
use crate::store::{BodyMeter, ReceivedPart, StoreError, StoredBlob, new_blob_key};
use futures::StreamExt;

impl Registry {
    /// Join a multipart upload's `parts` into the staged object. Two callers may race here
    /// (no claim is held when `complete` leaves the commit to the finalizer): the loser finds
    /// the upload gone and the object in place, which is success.
    async fn join_parts(
        &self,
        session: &UploadSession,
        parts: &[ReceivedPart],
    ) -> Result<(), Error> {
        let upload_id = session.multipart_id.as_deref().unwrap_or_default();
        match self
            .multipart()?
            .complete_multipart(&session.staged_key, upload_id, parts)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match self.blobs.head(&session.staged_key).await {
                Ok(_) => Ok(()),
                Err(_) => Err(e.into()),
            },
        }
    }

    /// Remove whatever is staged for `session`: the object, and an unfinished multipart
    /// upload's parts.
    pub(super) async fn drop_staged(&self, session: &UploadSession) -> Result<(), Error> {
        if let Some(upload_id) = &session.multipart_id {
            self.multipart()?
                .abort_multipart(&session.staged_key, upload_id)
                .await?;
        }
        self.blobs.delete(&session.staged_key).await?;
        Ok(())
    }

    /// Commit session `id` (idempotent): the client's `complete` (with its `principal`, who
    /// must be allowed to write) or the store's upload event (`None`). Returns the session as
    /// it stands afterwards: committed, refused, or still pending/committing (the bytes have
    /// not arrived, or another committer is at work).
    pub async fn complete_upload(
        &self,
        caller: Option<(&Principal, &ProjectRef)>,
        id: &str,
    ) -> Result<SessionView, Error> {
        let session = match caller {
            Some((principal, project)) => self.session_of(principal, project, id).await?,
            None => self.session_by_id(id).await?,
        };
        if session.state.is_final() {
            return self.view(session).await;
        }
        let now = Timestamp::now();
        let staged = self.staged(&session).await?;
        // Not everything has arrived and there is still time: the client has more to do.
        if matches!(staged, Staged::Waiting(_)) && now <= session.expires_at {
            return self.view(session).await;
        }
        // Too large to hash within the client's request: join the parts (the store's
        // upload event follows) and leave the commit to the finalizer.
        let inline_max = self.uploads.commit_inline_max.filter(|_| caller.is_some());
        if let Some(max) = inline_max
            && session.size > max
            && now <= session.expires_at
        {
            if let Staged::Parts(parts) = &staged {
                self.join_parts(&session, parts).await?;
            }
            return self.view(session).await;
        }
        let lease = now.plus_seconds(COMMIT_LEASE_SECONDS);
        let Some(claimed) = self.meta.claim_upload_session(id, lease, now).await? else {
            // Another committer holds it, or settled it just now.
            let session = self.session_by_id(id).await?;
            return self.view(session).await;
        };
        let session = match self.settle_claimed(&claimed, staged, now).await {
            Ok(session) => session,
            Err(e) => {
                // Let the next call (the client's retry, or the finalizer) commit at once
                // rather than after the lease; the staged bytes are where they were.
                if let Err(release) = self
                    .meta
                    .settle_upload_session(id, &SessionState::Pending)
                    .await
                {
                    tracing::warn!(session = id, error = %release, "could not release a failed commit's claim; it lapses with its lease");
                }
                return Err(e);
            }
        };
        self.view(session).await
    }

    /// Commit (or refuse) the `claimed` session whose bytes are `staged`, and settle it; the
    /// session as it stands afterwards.
    async fn settle_claimed(
        &self,
        claimed: &UploadSession,
        staged: Staged,
        now: Timestamp,
    ) -> Result<UploadSession, Error> {
        let size = match staged {
            Staged::Object(size) => Some(size),
            Staged::Parts(parts) => {
                self.join_parts(claimed, &parts).await?;
                Some(self.blobs.head(&claimed.staged_key).await?)
            }
            Staged::Waiting(_) => None,
        };
        let outcome = self.commit_claimed(claimed, size, now).await?;
        // A commit's publish settled the session with its file; a refusal is settled here.
        let settled = match outcome {
            SessionState::Committed { .. } => None,
            refused => {
                self.drop_staged(claimed).await?;
                self.meta
                    .settle_upload_session(&claimed.id, &refused)
                    .await?
            }
        };
        match settled {
            Some(settled) => Ok(settled),
            None => self.session_by_id(&claimed.id).await,
        }
    }

    /// Check and publish a claimed session whose staged object has `staged` bytes (`None`:
    /// they never all arrived); the state to settle it in.
    async fn commit_claimed(
        &self,
        session: &UploadSession,
        staged: Option<u64>,
        now: Timestamp,
    ) -> Result<SessionState, Error> {
        let refused = |reason| Ok(SessionState::Refused { reason });
        let Some(size) = staged else {
            return refused(Refusal::Expired);
        };
        if now > session.expires_at.plus_seconds(COMMIT_LEASE_SECONDS) {
            return refused(Refusal::Expired);
        }
        let project = match self.opener_may_write(session, now).await? {
            Ok(project) => project,
            Err(reason) => return refused(reason),
        };
        if size != session.size {
            return refused(Refusal::SizeMismatch);
        }
        let max = self.limits.max_file_size;
        if max > 0 && size >= max {
            return refused(Refusal::TooLarge);
        }
        let stored = self.measure_staged(session).await?;
        if session.sha256.as_ref().is_some_and(|d| *d != stored.sha256) {
            return refused(Refusal::DigestMismatch);
        }
        self.publish_staged(session, &project, stored, now).await
    }

    /// The project the session's opener may still write to (the token may have been revoked,
    /// or the opener's role lowered, since the session opened), or why not.
    async fn opener_may_write(
        &self,
        session: &UploadSession,
        now: Timestamp,
    ) -> Result<Result<Project, Refusal>, Error> {
        let opener = match session.token_id {
            Some(id) => self.meta.token_by_id(id).await?,
            None => None,
        };
        let principal = match opener.map(|t| auth::principal_of_token(t, now)) {
            Some(Ok(p)) => p,
            Some(Err(denied)) => return Ok(Err(refusal(denied.into())?)),
            None => return Ok(Err(Refusal::Unauthorized)),
        };
        let project = ProjectRef::Id(session.project_id);
        match self
            .authorized_project(&principal, &project, Action::Write)
            .await
        {
            Ok(p) => Ok(Ok(p)),
            Err(e) => Ok(Err(refusal(e)?)),
        }
    }

    /// Size and SHA-256 of what is really staged: the store checked a declared SHA-256
    /// already, but the record must hold the digest of these very bytes.
    async fn measure_staged(&self, session: &UploadSession) -> Result<StoredBlob, Error> {
        let mut meter = BodyMeter::new(None);
        let mut body = self.blobs.get(&session.staged_key, None).await?.stream;
        while let Some(chunk) = body.next().await {
            meter.feed(&chunk.map_err(StoreError::backend)?)?;
        }
        Ok(meter.finish())
    }

    /// Move the staged bytes to a blob key of their own and publish them, under the duplicate
    /// rule as it is now (the group setting may have changed since the session opened).
    async fn publish_staged(
        &self,
        session: &UploadSession,
        project: &Project,
        stored: StoredBlob,
        now: Timestamp,
    ) -> Result<SessionState, Error> {
        let settings = self.settings_of(project.namespace_id).await?;
        let refuse_duplicate = !duplicates_allowed(&settings, &session.name, &session.version);
        let SessionState::Committing { until } = session.state else {
            return Err(StoreError::claim_lost(&session.id).into());
        };
        let key = new_blob_key();
        self.blobs.promote(&session.staged_key, &key).await?;
        let file = NewFile {
            project_id: project.id,
            name: session.name.clone(),
            version: session.version.clone(),
            status: session.package_status,
            file_name: session.file_name.clone(),
            size: stored.size,
            sha256: stored.sha256,
            blob_key: key.clone(),
            refuse_duplicate,
            now,
            commits: Some(SessionClaim {
                session_id: session.id.clone(),
                until,
            }),
        };
        match self.meta.publish(file).await {
            Ok((package, file)) => Ok(SessionState::Committed {
                package_id: package.id,
                file_id: file.id,
            }),
            Err(StoreError::AlreadyExists { .. }) => {
                self.blobs.delete(&key).await?;
                Ok(SessionState::Refused {
                    reason: Refusal::Duplicate,
                })
            }
            Err(e) => {
                // The answer may have been lost after the publish (which settles the session)
                // took effect; if it did not, the bytes go back where they were staged, for
                // the next commit. Unknown, they stay where they are.
                let landed = match e.is_transient() {
                    true => self.session_committed(&session.id).await,
                    false => Landed::No,
                };
                match landed {
                    Landed::Yes(committed) => return Ok(committed),
                    Landed::No => self.blobs.promote(&key, &session.staged_key).await?,
                    Landed::Unknown => {}
                }
                Err(e.into())
            }
        }
    }
}

/// The reason a commit refuses a session for, when `e` is a refusal rather than a failure.
fn refusal(e: Error) -> Result<Refusal, Error> {
    Ok(match e {
        Error::TooLarge => Refusal::TooLarge,
        Error::Duplicate => Refusal::Duplicate,
        Error::Denied(Denied::Unauthorized) => Refusal::Unauthorized,
        Error::Denied(Denied::Expired) => Refusal::TokenExpired,
        Error::Denied(Denied::Revoked) => Refusal::TokenRevoked,
        Error::Denied(Denied::InsufficientScope) => Refusal::InsufficientScope,
        Error::Denied(Denied::Forbidden) => Refusal::Forbidden,
        Error::Denied(Denied::ProjectNotFound) => Refusal::ProjectNotFound,
        other => return Err(other),
    })
}
