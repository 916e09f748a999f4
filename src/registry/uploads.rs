//! Use cases of the upload handoff (large files): open a session (the same checks as a direct
//! PUT, then a presigned PUT of exactly the declared bytes to a staging key), commit it (the
//! checks again, the bytes measured and hashed, then the same publish as a direct PUT), read
//! it, abort it. A session commits at most once, whoever asks (the client's `complete`, or the
//! store's upload event).

use super::{Error, FileCoordinates, Missing, Registry, duplicates_allowed};
use crate::auth::{Action, Denied, Principal};
use crate::domain::{
    Package, PackageFile, PackageStatus, Protected, SessionState, Timestamp, TokenGrant,
    UploadSession,
};
use crate::store::{
    BlobLocation, Presigned, ReceivedPart, StoreError, checked_key, session_blob_key, staging_key,
};

/// How long a session takes bytes (each URL lives the presign TTL; fresh ones come with the
/// session while it is open). A day, as the bucket's lifecycle rule keeps staged objects.
const SESSION_SECONDS: i64 = 24 * 3600;

/// How long a committer holds a session before another may take over.
pub(super) const COMMIT_LEASE_SECONDS: i64 = 900;

/// What a client declares when it opens a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: Option<String>,
    pub status: Option<PackageStatus>,
}

/// S3's most parts in one multipart upload.
const MAX_PARTS: u64 = 10_000;

/// Where to send a session's bytes: one request, or one per part.
#[derive(Debug, Clone)]
pub enum UploadPlan {
    Single(Presigned),
    Parts(Vec<PartTicket>),
}

/// One part still to send: its number (1-based), exact size, and the request.
#[derive(Debug, Clone)]
pub struct PartTicket {
    pub number: u32,
    pub size: u64,
    pub request: Presigned,
}

/// A session as its routes show it: the record, the parts the store holds, and (while it
/// waits for bytes) fresh requests for what is still missing.
pub struct SessionView {
    pub session: UploadSession,
    pub received: Vec<ReceivedPart>,
    pub plan: Option<UploadPlan>,
    /// What a committed session published (when the records are still there).
    pub published: Option<(Package, PackageFile)>,
}

/// What the store holds of a session's bytes.
pub(super) enum Staged {
    /// The whole object, of this size.
    Object(u64),
    /// Every part of a multipart upload, ready to be joined.
    Parts(Vec<ReceivedPart>),
    /// Not everything yet; the parts so far.
    Waiting(Vec<ReceivedPart>),
}

/// The sizes of the parts of a `size`-byte file cut in parts of `part_size` (or larger, so
/// that no more than 10,000 parts are needed).
pub fn part_sizes(size: u64, part_size: u64) -> Vec<u64> {
    let mut part = part_size.max(1);
    if size.div_ceil(part) > MAX_PARTS {
        part = size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    }
    let count = size.div_ceil(part).max(1);
    (0..count).map(|i| part.min(size - i * part)).collect()
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
    ) -> Result<SessionView, Error> {
        if *principal == Principal::Anonymous {
            return Err(Denied::Unauthorized.into());
        }
        let project = self
            .authorized_project(principal, &at.project, Action::Write)
            .await?;
        self.check_protection(principal, &project, &at.name, Protected::Push)
            .await?;
        let max = self.limits.max_file_size;
        if max > 0 && request.size >= max {
            return Err(Error::TooLarge);
        }
        let settings = self.settings_of(project.namespace_id).await?;
        if !duplicates_allowed(&settings, &at.name, &at.version)
            && self
                .meta
                .live_file_exists(project.id, &at.name, &at.version, &at.file_name)
                .await?
        {
            return Err(Error::Duplicate);
        }
        let id = UploadSession::new_id();
        let ttl = self.downloads.presign_ttl;
        let part_size = self.uploads.part_size;
        let checked = self.checked_on_arrival(&request);
        let multipart = !checked && request.size > part_size;
        let staged_key = match checked {
            true => checked_key(&id),
            false => self.staged_key_of(&id, request.size, multipart),
        };
        let multipart_id = if multipart {
            Some(self.multipart()?.start_multipart(&staged_key).await?)
        } else {
            None
        };
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
            multipart_id,
            part_size,
            token_id: principal.token_id(),
            delegation: principal.delegation(),
            state: SessionState::Pending,
            created_at: now,
            expires_at: now.plus_seconds(SESSION_SECONDS.max(ttl.as_secs() as i64)),
        };
        let plan = self.plan(&session, &[]).await?;
        self.meta.create_upload_session(&session).await?;
        Ok(SessionView {
            session,
            received: Vec::new(),
            plan: Some(plan),
            published: None,
        })
    }

    /// Fresh requests for the bytes of `session` not yet `received`.
    async fn plan(
        &self,
        session: &UploadSession,
        received: &[ReceivedPart],
    ) -> Result<UploadPlan, Error> {
        let ttl = self.downloads.presign_ttl;
        let Some(upload_id) = &session.multipart_id else {
            let put = self
                .presigner()?
                .presign_put(
                    &session.staged_key,
                    ttl,
                    session.size,
                    session.sha256.as_deref(),
                )
                .await?;
            return Ok(UploadPlan::Single(put));
        };
        let mut parts = Vec::new();
        for (i, size) in part_sizes(session.size, session.part_size)
            .into_iter()
            .enumerate()
        {
            let number = i as u32 + 1;
            if received
                .iter()
                .any(|p| p.number == number && p.size == size)
            {
                continue;
            }
            let request = self
                .multipart()?
                .presign_part(&session.staged_key, upload_id, number, size, ttl)
                .await?;
            parts.push(PartTicket {
                number,
                size,
                request,
            });
        }
        Ok(UploadPlan::Parts(parts))
    }

    /// Does a session of `request` go as one PUT that object storage checks against the
    /// declared SHA-256 as the bytes arrive? Then they go straight to their final key
    /// ([`checked_key`]): S3 refuses other bytes (and a second write), so the commit need not
    /// copy, seal or read anything back. An empty file has nothing to check.
    fn checked_on_arrival(&self, request: &UploadRequest) -> bool {
        request.sha256.is_some()
            && request.size > 0
            && request.size <= self.uploads.single_max
            && self.blobs.location() == BlobLocation::ObjectStorage
            && self.blobs.presign().is_some()
    }

    /// Where session `id` stages its bytes. A multipart upload that the client's `complete`
    /// commits is joined straight at the session's blob key on object storage: only depot can
    /// join it and the parts' URLs die with the upload, so the joined object is immutable
    /// without a copy (a `CopyObject` of the whole file, $5 per million, saved). Elsewhere the
    /// bytes stage under `uploads/`: a single object (written by a presigned URL, so copied
    /// and sealed at commit), a local upload (its parts live beside the key, and `uploads/` is
    /// what the local expiry sweeps), or one the finalizer commits (S3 tells it of objects
    /// under `uploads/` and `checked/` only). Abandoned multipart uploads anywhere in the
    /// bucket are aborted by its lifecycle rule.
    pub(super) fn staged_key_of(&self, id: &str, size: u64, multipart: bool) -> String {
        let inline = self.uploads.commit_inline_max.is_none_or(|max| size <= max);
        if multipart && inline && self.blobs.location() == BlobLocation::ObjectStorage {
            session_blob_key(id)
        } else {
            staging_key(id)
        }
    }

    /// What the store holds of `session`'s bytes.
    pub(super) async fn staged(&self, session: &UploadSession) -> Result<Staged, Error> {
        // A multipart upload's parts are asked for first: until they are joined there is no
        // object to look at, and once they are, the upload is gone.
        let listed = match &session.multipart_id {
            Some(upload_id) => {
                let multipart = self.multipart()?;
                Some(multipart.list_parts(&session.staged_key, upload_id).await)
            }
            None => None,
        };
        let parts = match listed {
            // No parts at all: nothing sent yet, or (s3s-fs) an upload already joined.
            Some(Ok(parts)) if !parts.is_empty() => parts,
            Some(Ok(_)) | Some(Err(StoreError::NotFound { .. })) | None => {
                return match self.blobs.head(&session.staged_key).await {
                    Ok(size) => Ok(Staged::Object(size)),
                    Err(StoreError::NotFound { .. }) => Ok(Staged::Waiting(Vec::new())),
                    Err(e) => Err(e.into()),
                };
            }
            Some(Err(e)) => return Err(e.into()),
        };
        let expected = part_sizes(session.size, session.part_size);
        let complete = parts.len() == expected.len()
            && parts
                .iter()
                .zip(1u32..)
                .zip(&expected)
                .all(|((p, n), size)| p.number == n && p.size == *size);
        Ok(if complete {
            Staged::Parts(parts)
        } else {
            Staged::Waiting(parts)
        })
    }

    /// Package `package_id` and its file `file_id`, whatever their status.
    async fn published_file(
        &self,
        package_id: i64,
        file_id: i64,
    ) -> Result<Option<(Package, PackageFile)>, Error> {
        let Some(package) = self.meta.package_by_id(package_id).await? else {
            return Ok(None);
        };
        let file = self
            .meta
            .all_files_of(package_id)
            .await?
            .into_iter()
            .find(|f| f.id == file_id);
        Ok(file.map(|file| (package, file)))
    }

    /// A settled session: what it published, if it committed.
    async fn final_view(&self, session: UploadSession) -> Result<SessionView, Error> {
        let published = match session.state {
            SessionState::Committed {
                package_id,
                file_id,
            } => self.published_file(package_id, file_id).await?,
            _ => None,
        };
        Ok(SessionView {
            session,
            received: Vec::new(),
            plan: None,
            published,
        })
    }

    /// `session` with what its routes show: the parts received and, while it waits for
    /// bytes, requests for the rest.
    pub(super) async fn view(&self, session: UploadSession) -> Result<SessionView, Error> {
        if session.state.is_final() {
            return self.final_view(session).await;
        }
        match self.staged(&session).await? {
            Staged::Object(size) => Ok(SessionView {
                session,
                received: vec![ReceivedPart {
                    number: 1,
                    size,
                    etag: None,
                }],
                plan: None,
                published: None,
            }),
            Staged::Parts(parts) => Ok(SessionView {
                session,
                received: parts,
                plan: None,
                published: None,
            }),
            Staged::Waiting(parts) => {
                // The bytes may have gone because a committer claimed the session and moved
                // them after it was read: read it again before offering to take them.
                let mut session = session;
                if matches!(session.state, SessionState::Pending)
                    && let Some(current) = self.meta.upload_session(&session.id).await?
                {
                    session = current;
                }
                if session.state.is_final() {
                    return self.final_view(session).await;
                }
                let waiting = matches!(session.state, SessionState::Pending)
                    && Timestamp::now() <= session.expires_at;
                let plan = if waiting {
                    Some(self.plan(&session, &parts).await?)
                } else {
                    None
                };
                Ok(SessionView {
                    session,
                    received: parts,
                    plan,
                    published: None,
                })
            }
        }
    }

    /// Remove the staged bytes of sessions abandoned for longer than a session lives (plus a
    /// commit's lease): the local store's counterpart of the bucket's lifecycle rule. The
    /// session records stay; committing one later finds no bytes and refuses it as expired.
    pub async fn expire_uploads(&self) -> Result<usize, Error> {
        let age = std::time::Duration::from_secs((SESSION_SECONDS + COMMIT_LEASE_SECONDS) as u64);
        Ok(self.blobs.expire_staged(age).await?)
    }

    /// The session `id` of the file at `at` as its routes show it, if `principal` opened it.
    pub async fn upload_session(
        &self,
        principal: &Principal,
        at: &FileCoordinates,
        id: &str,
    ) -> Result<SessionView, Error> {
        let session = self.session_of(principal, at, id).await?;
        self.view(session).await
    }

    /// Session `id`, whoever opened it.
    pub(super) async fn session_by_id(&self, id: &str) -> Result<UploadSession, Error> {
        self.meta
            .upload_session(id)
            .await?
            .ok_or(Error::NotFound(Missing::UploadSession))
    }

    /// Session `id` as `principal` reaches it through the file at `at`: only the principal who
    /// opened it (its token, or another personal token of the same user), only through the
    /// session's own coordinates, and only while it may still write to the project. Anything
    /// else is the same 404 as no session at all.
    pub(super) async fn session_of(
        &self,
        principal: &Principal,
        at: &FileCoordinates,
        id: &str,
    ) -> Result<UploadSession, Error> {
        let project = self
            .authorized_project(principal, &at.project, Action::Write)
            .await?;
        let session = self
            .meta
            .upload_session(id)
            .await?
            .filter(|s| {
                s.project_id == project.id
                    && s.name == at.name
                    && s.version == at.version
                    && s.file_name == at.file_name
            })
            .ok_or(Error::NotFound(Missing::UploadSession))?;
        if self.opened_by(&session, principal).await? {
            Ok(session)
        } else {
            Err(Error::NotFound(Missing::UploadSession))
        }
    }

    /// Did `principal` open `session`: the same token, or a personal token of the user whose
    /// personal token opened it (a job's or a deploy token is only itself)?
    async fn opened_by(
        &self,
        session: &UploadSession,
        principal: &Principal,
    ) -> Result<bool, Error> {
        if let (Some(text), Principal::Federated(now)) = (&session.delegation, principal) {
            let then: Option<crate::auth::Federated> = serde_json::from_str(text).ok();
            return Ok(then.is_some_and(|then| then.same_as(now)));
        }
        let Some(opener) = session.token_id else {
            return Ok(false);
        };
        if principal.token_id() == Some(opener) {
            return Ok(true);
        }
        let Some(user_id) = principal.personal_user() else {
            return Ok(false);
        };
        let token = self.meta.token_by_id(opener).await?;
        Ok(token.is_some_and(
            |t| matches!(t.grant, TokenGrant::Personal { user_id: u, .. } if u == user_id),
        ))
    }

    /// Abandon a session: it can no longer commit and its staged bytes go.
    pub async fn abort_upload(
        &self,
        principal: &Principal,
        at: &FileCoordinates,
        id: &str,
    ) -> Result<SessionView, Error> {
        let session = self.session_of(principal, at, id).await?;
        let after = self
            .meta
            .settle_upload_session(&session.id, &SessionState::Aborted)
            .await?;
        let session = match after {
            Some(aborted) => {
                self.drop_staged(&aborted).await?;
                aborted
            }
            None => self.session_by_id(id).await?,
        };
        self.view(session).await
    }
}

#[cfg(test)]
mod tests {
    use super::part_sizes;

    #[test]
    fn parts_cover_the_file_within_s3_limits() {
        let mib = 1u64 << 20;
        for (size, part, count) in [
            (0, 64 * mib, 1),
            (1, 64 * mib, 1),
            (64 * mib, 64 * mib, 1),
            (64 * mib + 1, 64 * mib, 2),
            (5 << 30, 64 * mib, 80),
            (12_000_000_000, 64 * mib, 179),
            // Past 10,000 parts of the asked size: larger parts, whole MiB, at most 10,000.
            (1 << 40, 64 * mib, 9_987),
            (5 << 40, 5 * mib, 9_987),
        ] {
            let sizes = part_sizes(size, part);
            assert!(sizes.len() <= count, "{size}: {} parts", sizes.len());
            assert!(
                sizes.len() >= count.min(10_000) - 1,
                "{size}: {} parts",
                sizes.len()
            );
            assert_eq!(sizes.iter().sum::<u64>(), size);
            let first = sizes[0];
            assert!(sizes[..sizes.len() - 1].iter().all(|s| *s == first));
            if sizes.len() > 1 {
                assert!(first >= 5 * mib);
            }
        }
    }
}
