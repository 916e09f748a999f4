//! Committing an upload session, whoever asks (the client's `complete`, or the store's upload
//! event through the finalizer): claim it with a lease, check it again as a direct PUT would be
//! checked, copy the staged bytes to the session's blob key and close the staged object to
//! writers (unless the parts were joined at the blob key), measure and hash those immutable
//! bytes, publish them, settle the session. A session commits at most once; refusals are final
//! states, store failures are errors (the lease then lapses and a later call retries).

use super::events::publish_draft;
use super::lost_answers::Landed;
use super::uploads::{COMMIT_LEASE_SECONDS, SessionView, Staged};
use super::{Error, FileCoordinates, Registry, duplicates_allowed};
use crate::auth::{self, Action, Denied, Principal};
use crate::domain::{
    EventDraft, NewFile, Package, PackageFile, Project, ProjectRef, Protected, Refusal,
    SessionClaim, SessionState, Timestamp, UploadSession,
};
use crate::store::{BodyMeter, ReceivedPart, StoreError, StoredBlob, checked_key, committed_key};
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
        let multipart = self.multipart()?;
        let Err(e) = multipart
            .complete_multipart(&session.staged_key, upload_id, parts)
            .await
        else {
            return Ok(());
        };
        if self.blobs.head(&session.staged_key).await.is_ok() {
            return Ok(());
        }
        // The parts as the client told them may not be what storage holds: ask storage.
        match self.staged(session).await? {
            Staged::Parts(held) if held != parts => Ok(multipart
                .complete_multipart(&session.staged_key, upload_id, &held)
                .await?),
            Staged::Waiting(_) => Err(told_wrongly()),
            _ => Err(e.into()),
        }
    }

    /// Remove whatever is staged for a settled `session`, so that nothing more can be
    /// written: an unfinished multipart upload is aborted (its part URLs then fail) and the
    /// joined object deleted; a single upload's object is sealed (its write-once URL fails).
    pub(super) async fn drop_staged(&self, session: &UploadSession) -> Result<(), Error> {
        if let Some(upload_id) = &session.multipart_id {
            self.multipart()?
                .abort_multipart(&session.staged_key, upload_id)
                .await?;
            self.blobs.delete(&session.staged_key).await?;
        } else {
            self.blobs.seal(&session.staged_key).await?;
        }
        Ok(())
    }

    /// Copy the staged bytes to the session's own blob key (unless a committer that crashed
    /// copied them already), then close the staged object to writers. From here on the bytes
    /// are immutable: what is measured next is what is recorded.
    async fn take_staged(&self, session: &UploadSession) -> Result<String, Error> {
        let key = committed_key(&session.id, &session.staged_key);
        if session.staged_key == key {
            // Checked on arrival, or joined at the blob key by depot alone: final already.
            return Ok(key);
        }
        match self.blobs.head(&key).await {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                self.blobs.promote(&session.staged_key, &key).await?
            }
            Err(e) => return Err(e.into()),
        }
        if session.multipart_id.is_some() {
            // Joined already: the upload id (and its part URLs) went with the join.
            self.blobs.delete(&session.staged_key).await?;
        } else {
            self.blobs.seal(&session.staged_key).await?;
        }
        Ok(key)
    }

    /// Commit session `id` (idempotent): the client's `complete` (with its `principal`, who
    /// must be allowed to write, and the parts it `told` of, if any) or the store's upload
    /// event (`None`). Returns the session as it stands afterwards: committed, refused, or
    /// still pending/committing (the bytes have not arrived, or another committer is at work).
    pub async fn complete_upload(
        &self,
        caller: Option<(&Principal, &FileCoordinates)>,
        id: &str,
        told: &[ReceivedPart],
    ) -> Result<SessionView, Error> {
        let session = match caller {
            Some((principal, at)) => self.session_of(principal, at, id).await?,
            None => self.session_by_id(id).await?,
        };
        if session.state.is_final() {
            if caller.is_none() {
                // An upload event (a checked upload's, after the client's `complete`, or a
                // seal's) needs the state only: what was published is not read for it.
                return Ok(SessionView {
                    session,
                    received: Vec::new(),
                    plan: None,
                    published: None,
                });
            }
            return self.view(session).await;
        }
        let now = Timestamp::now();
        // Every part, as the client says storage acknowledged it: no need to ask storage (a
        // part told wrongly fails the join, which then asks).
        let staged = match told_parts(&session, told) {
            Some(parts) => Staged::Parts(parts),
            None => self.staged(&session).await?,
        };
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
        match self.settle_claimed(&claimed, staged, now).await {
            Ok(view) => Ok(view),
            Err(e) => {
                // Let the next call (the client's retry, or the finalizer) commit at once
                // rather than after the lease; the bytes are where it will look for them.
                if let Err(release) = self
                    .meta
                    .settle_upload_session(id, &SessionState::Pending)
                    .await
                {
                    tracing::warn!(session = id, error = %release, "could not release a failed commit's claim; it lapses with its lease");
                }
                Err(e)
            }
        }
    }

    /// Commit (or refuse) the `claimed` session whose bytes are `staged`, and settle it; the
    /// session as it stands afterwards.
    async fn settle_claimed(
        &self,
        claimed: &UploadSession,
        staged: Staged,
        now: Timestamp,
    ) -> Result<SessionView, Error> {
        let size = match staged {
            Staged::Object(size) => Some(size),
            Staged::Parts(parts) => {
                self.join_parts(claimed, &parts).await?;
                Some(parts.iter().map(|p| p.size).sum())
            }
            // A committer that crashed may have taken the bytes already.
            Staged::Waiting(_) => {
                let key = committed_key(&claimed.id, &claimed.staged_key);
                self.blobs.head(&key).await.ok()
            }
        };
        let settled = match self.commit_claimed(claimed, size.is_some(), now).await? {
            // The publish settled the session with its file: no need to read either again.
            Outcome::Published(published) => {
                let (package, file) = *published;
                let session = UploadSession {
                    state: SessionState::Committed {
                        package_id: package.id,
                        file_id: file.id,
                    },
                    ..claimed.clone()
                };
                return Ok(SessionView {
                    session,
                    received: Vec::new(),
                    plan: None,
                    published: Some((package, file)),
                });
            }
            Outcome::Landed => None,
            Outcome::Refused(reason) => {
                let refused = SessionState::Refused { reason };
                self.meta
                    .settle_upload_session(&claimed.id, &refused)
                    .await?
            }
        };
        let session = match settled {
            Some(settled) => settled,
            None => self.session_by_id(&claimed.id).await?,
        };
        self.view(session).await
    }

    /// Check and publish a claimed session whose bytes have all `arrived` (or not); the state
    /// to settle it in. A refused session keeps no bytes and takes no more.
    async fn commit_claimed(
        &self,
        session: &UploadSession,
        arrived: bool,
        now: Timestamp,
    ) -> Result<Outcome, Error> {
        let refused = |reason| Ok(Outcome::Refused(reason));
        let expired = !arrived || now > session.expires_at.plus_seconds(COMMIT_LEASE_SECONDS);
        let project = match expired {
            true => Err(Refusal::Expired),
            false => self.opener_may_write(session, now).await?,
        };
        let (project, opener) = match project {
            Ok(allowed) => allowed,
            Err(reason) => {
                self.drop_staged(session).await?;
                // What a committer that crashed may have copied.
                let key = committed_key(&session.id, &session.staged_key);
                if key != session.staged_key {
                    self.blobs.delete(&key).await?;
                }
                return refused(reason);
            }
        };
        let key = self.take_staged(session).await?;
        let stored = match self.checked_digest(session, &key).await? {
            Some(stored) => stored,
            None => self.measure(&key).await?,
        };
        let max = self.limits.max_file_size;
        let reason = if stored.size != session.size {
            Some(Refusal::SizeMismatch)
        } else if max > 0 && stored.size >= max {
            Some(Refusal::TooLarge)
        } else if session.sha256.as_ref().is_some_and(|d| *d != stored.sha256) {
            Some(Refusal::DigestMismatch)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.discard(session, &key).await?;
            return refused(reason);
        }
        let draft = publish_draft(&opener, &project, now);
        self.publish_staged(session, &project, (key, stored), draft)
            .await
    }

    /// The project the session's opener may still write to (the token may have been revoked,
    /// or the opener's role lowered, since the session opened), with the opener; or why not.
    async fn opener_may_write(
        &self,
        session: &UploadSession,
        now: Timestamp,
    ) -> Result<Result<(Project, Principal), Refusal>, Error> {
        let opener = match session.token_id {
            Some(id) => self.meta.token_by_id(id).await?,
            None => None,
        };
        let principal = match (opener, &session.delegation) {
            (Some(token), _) => auth::principal_of_token(token, now),
            (None, Some(text)) => auth::Federated::from_delegation(self.meta.as_ref(), text).await,
            (None, None) => Err(Denied::Unauthorized),
        };
        let principal = match principal {
            Ok(p) => p,
            Err(Denied::VouchUnavailable) => {
                return Err(Error::Store(crate::store::StoreError::Unavailable {
                    operation: "reading the trust rules of a session's opener".into(),
                    source: "the store did not answer".into(),
                }));
            }
            Err(denied) => return Ok(Err(refusal(denied.into())?)),
        };
        let project = ProjectRef::Id(session.project_id);
        let may = match self
            .authorized_project(&principal, &project, Action::Write)
            .await
        {
            Ok(p) => p,
            Err(e) => return Ok(Err(refusal(e)?)),
        };
        // A protection rule made since the session opened holds it back too.
        let protected = self.check_protection(&principal, &may, &session.name, Protected::Push);
        match protected.await {
            Ok(()) => Ok(Ok((may, principal))),
            Err(e) => Ok(Err(refusal(e)?)),
        }
    }

    /// Size and SHA-256 of a checked upload's bytes at `key` as the store checked them on
    /// arrival, when it did and found the declared digest; `None` otherwise (read them back).
    async fn checked_digest(
        &self,
        session: &UploadSession,
        key: &str,
    ) -> Result<Option<StoredBlob>, Error> {
        let (Some(declared), Some(presign)) = (&session.sha256, self.blobs.presign()) else {
            return Ok(None);
        };
        if *key != checked_key(&session.id) {
            return Ok(None);
        }
        let checked = presign.checked_on_arrival(key).await?;
        Ok(checked.filter(|c| c.sha256 == *declared))
    }

    /// Remove bytes at `key` that `session` will not publish. A checked upload's key is
    /// sealed rather than deleted: its write-once URL may still be alive, and would write again.
    async fn discard(&self, session: &UploadSession, key: &str) -> Result<(), Error> {
        if *key == session.staged_key && session.multipart_id.is_none() {
            self.blobs.seal(key).await?;
        } else {
            self.blobs.delete(key).await?;
        }
        Ok(())
    }

    /// Size and SHA-256 of the blob at `key`, read back: the store checked a declared SHA-256
    /// already, but the record must hold the digest of these very bytes.
    async fn measure(&self, key: &str) -> Result<StoredBlob, Error> {
        let mut meter = BodyMeter::new(None);
        let mut body = self.blobs.get(key, None).await?.stream;
        while let Some(chunk) = body.next().await {
            meter.feed(&chunk.map_err(StoreError::backend)?)?;
        }
        Ok(meter.finish())
    }

    /// Publish the session's bytes (taken to blob `key`), under the duplicate rule as it is
    /// now (the group setting may have changed since the session opened).
    async fn publish_staged(
        &self,
        session: &UploadSession,
        project: &Project,
        (key, stored): (String, StoredBlob),
        draft: EventDraft,
    ) -> Result<Outcome, Error> {
        let now = draft.time;
        let settings = self.settings_of(project.namespace_id).await?;
        let refuse_duplicate = !duplicates_allowed(&settings, &session.name, &session.version);
        let SessionState::Committing { until } = session.state else {
            return Err(StoreError::claim_lost(&session.id).into());
        };
        let file = NewFile {
            project_id: project.id,
            name: session.name.clone(),
            version: session.version.clone(),
            status: session.package_status,
            file_name: session.file_name.clone(),
            size: stored.size,
            sha256: stored.sha256,
            blob_key: key,
            content: None,
            refuse_duplicate,
            now,
            commits: Some(SessionClaim {
                session_id: session.id.clone(),
                until,
            }),
            event: draft,
        };
        match self.meta.publish(file).await {
            Ok(published) => {
                self.metrics.published(published.1.size, true);
                Ok(Outcome::Published(Box::new(published)))
            }
            Err(StoreError::AlreadyExists { .. }) => {
                let key = committed_key(&session.id, &session.staged_key);
                self.discard(session, &key).await?;
                Ok(Outcome::Refused(Refusal::Duplicate))
            }
            Err(e) => {
                // The answer may have been lost after the publish (which settles the session)
                // took effect. If it did not (or that is unknown), the blob stays at the
                // session's key, where the next commit finds it.
                if e.is_transient()
                    && let Landed::Yes(_) = self.session_committed(&session.id).await
                {
                    return Ok(Outcome::Landed);
                }
                Err(e.into())
            }
        }
    }
}

/// `told`, when it names every part of `session`'s multipart upload once, each with an
/// `ETag`, as the store's parts (the sizes are the plan's: each part URL is signed for its
/// size).
fn told_parts(session: &UploadSession, told: &[ReceivedPart]) -> Option<Vec<ReceivedPart>> {
    session.multipart_id.as_ref()?;
    let sizes = super::uploads::part_sizes(session.size, session.part_size);
    let mut parts = told.to_vec();
    parts.sort_by_key(|p| p.number);
    let whole = parts.len() == sizes.len()
        && parts
            .iter()
            .zip(1u32..)
            .all(|(p, n)| p.number == n && p.etag.as_deref().is_some_and(|e| !e.is_empty()));
    whole.then(|| {
        parts
            .into_iter()
            .zip(sizes)
            .map(|(p, size)| ReceivedPart { size, ..p })
            .collect()
    })
}

/// A `complete` that told of parts storage does not hold (all of them).
fn told_wrongly() -> Error {
    let mut errors = crate::domain::InvalidParams::default();
    errors.push("parts is invalid: storage does not hold every part told of");
    Error::Invalid(errors)
}

/// What a claimed session's commit came to.
enum Outcome {
    /// Published: the publish settled the session with this file.
    Published(Box<(Package, PackageFile)>),
    /// Published by this commit, whose answer was lost: the session is settled already.
    Landed,
    /// Refused, for this reason: the session is yet to be settled.
    Refused(Refusal),
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
        Error::Protected(_) => Refusal::Protected,
        other => return Err(other),
    })
}
