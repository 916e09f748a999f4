//! Use cases of the upload handoff (large files): open a session (the same checks as a direct
//! PUT, then a presigned PUT of exactly the declared bytes to a staging key), commit it (the
//! checks again, the bytes measured and hashed, then the same publish as a direct PUT), read
//! it, abort it. A session commits at most once, whoever asks (the client's `complete`, or the
//! store's upload event).

use super::{Error, FileCoordinates, Registry, duplicates_allowed};
use crate::auth::{self, Action, Denied, Principal};
use crate::domain::{NewFile, PackageStatus, ProjectRef, SessionState, Timestamp, UploadSession};
use crate::store::{BodyMeter, Presigned, StoreError, new_blob_key};
use futures::StreamExt;

/// How long a committer holds a session before another may take over.
const COMMIT_LEASE_SECONDS: i64 = 900;

/// What a client declares when it opens a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: Option<String>,
    pub status: Option<PackageStatus>,
}

/// An open session and where to send the bytes.
pub struct UploadTicket {
    pub session: UploadSession,
    pub put: Presigned,
}

impl Registry {
    /// Open a session for the file at `at`: permission, size and duplicate rule as for a
    /// direct PUT, then a staging key and a presigned PUT bound to the declared size (and
    /// SHA-256, when given).
    pub async fn open_upload(
        &self,
        principal: &Principal,
        at: FileCoordinates,
        request: UploadRequest,
    ) -> Result<UploadTicket, Error> {
        if *principal == Principal::Anonymous {
            return Err(Denied::Unauthorized.into());
        }
        let project = self
            .authorized_project(principal, &at.project, Action::Write)
            .await?;
        let max = self.limits.max_file_size;
        if max > 0 && request.size >= max {
            return Err(Error::TooLarge);
        }
        let settings = self.meta.group_settings(project.namespace_id).await?;
        if !duplicates_allowed(&settings, &at.name, &at.version)
            && self
                .meta
                .live_file_exists(project.id, &at.name, &at.version, &at.file_name)
                .await?
        {
            return Err(Error::Duplicate);
        }
        let id = UploadSession::new_id();
        let staged_key = format!("uploads/{id}");
        let ttl = self.downloads.presign_ttl;
        let put = self
            .blobs
            .presign_put(&staged_key, ttl, request.size, request.sha256.as_deref())
            .await?
            .ok_or_else(|| Error::Refused("this store cannot take uploads by URL".into()))?;
        let now = Timestamp::now();
        let session = UploadSession {
            id,
            project_id: project.id,
            name: at.name,
            version: at.version,
            file_name: at.file_name,
            package_status: request.status,
            size: request.size,
            sha256: request.sha256,
            staged_key,
            multipart_id: None,
            part_size: 0,
            token_id: principal.token_id(),
            state: SessionState::Pending,
            created_at: now,
            expires_at: now.plus_seconds(ttl.as_secs() as i64),
        };
        self.meta.create_upload_session(&session).await?;
        Ok(UploadTicket { session, put })
    }

    /// The session `id` of project `project`, if `principal` may write there.
    pub async fn upload_session(
        &self,
        principal: &Principal,
        project: &ProjectRef,
        id: &str,
    ) -> Result<UploadSession, Error> {
        let project = self
            .authorized_project(principal, project, Action::Write)
            .await?;
        self.meta
            .upload_session(id)
            .await?
            .filter(|s| s.project_id == project.id)
            .ok_or(Error::NotFound)
    }

    /// Abandon a session: it can no longer commit and its staged bytes go.
    pub async fn abort_upload(
        &self,
        principal: &Principal,
        project: &ProjectRef,
        id: &str,
    ) -> Result<UploadSession, Error> {
        let session = self.upload_session(principal, project, id).await?;
        let after = self
            .meta
            .settle_upload_session(&session.id, &SessionState::Aborted)
            .await?;
        match after {
            Some(aborted) => {
                self.blobs.delete(&aborted.staged_key).await?;
                Ok(aborted)
            }
            None => self.meta.upload_session(id).await?.ok_or(Error::NotFound),
        }
    }

    /// Commit session `id` (idempotent): the client's `complete` (with its `principal`, who
    /// must be allowed to write) or the store's upload event (`None`). Returns the session as
    /// it stands afterwards: committed, refused, or still pending/committing (the bytes have
    /// not arrived, or another committer is at work).
    pub async fn complete_upload(
        &self,
        caller: Option<(&Principal, &ProjectRef)>,
        id: &str,
    ) -> Result<UploadSession, Error> {
        let session = match caller {
            Some((principal, project)) => self.upload_session(principal, project, id).await?,
            None => self.meta.upload_session(id).await?.ok_or(Error::NotFound)?,
        };
        if session.state.is_final() {
            return Ok(session);
        }
        let now = Timestamp::now();
        let staged = match self.blobs.head(&session.staged_key).await {
            Ok(size) => Some(size),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        // Nothing staged yet and still in time: the client has more to do.
        if staged.is_none() && now <= session.expires_at {
            return Ok(session);
        }
        let lease = now.plus_seconds(COMMIT_LEASE_SECONDS);
        let Some(claimed) = self.meta.claim_upload_session(id, lease, now).await? else {
            // Another committer holds it, or settled it just now.
            return self.meta.upload_session(id).await?.ok_or(Error::NotFound);
        };
        let outcome = self.commit_claimed(&claimed, staged, now).await?;
        if !matches!(outcome, SessionState::Committed { .. }) {
            self.blobs.delete(&claimed.staged_key).await?;
        }
        match self.meta.settle_upload_session(id, &outcome).await? {
            Some(settled) => Ok(settled),
            None => self.meta.upload_session(id).await?.ok_or(Error::NotFound),
        }
    }

    /// Check and publish a claimed session; the state to settle it in. Refusals are states;
    /// only failures of the stores are errors (the lease then lapses and a later call retries).
    async fn commit_claimed(
        &self,
        session: &UploadSession,
        staged: Option<u64>,
        now: Timestamp,
    ) -> Result<SessionState, Error> {
        let refuse = |e: Error| {
            let (status, body) = e.gitlab_answer();
            let message = body
                .get("message")
                .or_else(|| body.get("error"))
                .and_then(|m| m.as_str())
                .unwrap_or("refused")
                .to_string();
            Ok(SessionState::Refused { status, message })
        };
        let Some(size) = staged else {
            return refuse(Error::Refused("the upload session expired".into()));
        };
        if now > session.expires_at.plus_seconds(COMMIT_LEASE_SECONDS) {
            return refuse(Error::Refused("the upload session expired".into()));
        }
        // The opener's rights, as they are now (the token may have been revoked since).
        let opener = match session.token_id {
            Some(id) => self.meta.token_by_id(id).await?,
            None => None,
        };
        let principal = match opener.map(|t| auth::principal_of_token(t, now)) {
            Some(Ok(p)) => p,
            Some(Err(denied)) => return refuse(denied.into()),
            None => return refuse(Denied::Unauthorized.into()),
        };
        let project = match self
            .authorized_project(
                &principal,
                &ProjectRef::Id(session.project_id),
                Action::Write,
            )
            .await
        {
            Ok(p) => p,
            Err(Error::Store(e)) => return Err(Error::Store(e)),
            Err(e) => return refuse(e),
        };
        if size != session.size {
            return refuse(Error::Refused(format!(
                "the upload has {size} bytes, not the {} declared",
                session.size
            )));
        }
        let max = self.limits.max_file_size;
        if max > 0 && size >= max {
            return refuse(Error::TooLarge);
        }
        // Measure what is really there: the store checked a declared SHA-256 already, but
        // the record must hold the digest of these very bytes.
        let mut meter = BodyMeter::new(None);
        let mut body = self.blobs.get(&session.staged_key, None).await?.stream;
        while let Some(chunk) = body.next().await {
            meter.feed(&chunk.map_err(StoreError::backend)?)?;
        }
        let stored = meter.finish();
        if session.sha256.as_ref().is_some_and(|d| *d != stored.sha256) {
            return refuse(Error::Refused(
                "the uploaded bytes do not match the declared SHA-256".into(),
            ));
        }
        // The duplicate rule as it is now (the group setting may have changed).
        let settings = self.meta.group_settings(project.namespace_id).await?;
        let refuse_duplicate = !duplicates_allowed(&settings, &session.name, &session.version);
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
        };
        match self.meta.publish(file).await {
            Ok((package, file)) => Ok(SessionState::Committed {
                package_id: package.id,
                file_id: file.id,
            }),
            Err(e) => {
                self.blobs.delete(&key).await?;
                match e {
                    StoreError::AlreadyExists => refuse(Error::Duplicate),
                    other => Err(other.into()),
                }
            }
        }
    }
}
