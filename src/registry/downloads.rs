//! Downloads: locate the newest live file a caller may read (the version `latest` means
//! resolved), count the download, send large files to storage by a presigned URL, and open a
//! located file's bytes.

use super::{Error, FileCoordinates, LATEST, Missing, Registry, inline};
use crate::auth::{Action, Principal};
use crate::domain::{Package, PackageFile, PackageStatus};
use crate::store::{BlobBody, BlobLocation, StoreError, is_inline_key};
use std::ops::Range;

impl Registry {
    /// Find the newest live file at `at` that `principal` may read (of the version `latest`
    /// means, for that version: [`Self::latest_file`]). `record_download` sets the
    /// package's `last_downloaded_at`, unless a download set it less than
    /// [`super::DOWNLOAD_MARK_RESOLUTION_MS`] ago.
    pub async fn locate(
        &self,
        principal: &Principal,
        at: &FileCoordinates,
        record_download: bool,
    ) -> Result<(Package, PackageFile), Error> {
        let project = self
            .authorized_project(principal, &at.project, Action::Read)
            .await?;
        let found = if at.version.as_str() == LATEST {
            self.latest_file(&project, at).await?
        } else {
            self.meta
                .newest_file(project.id, &at.name, &at.version, &at.file_name)
                .await?
        };
        let (package, file) = found.ok_or(Error::NotFound(Missing::Package))?;
        if record_download {
            self.count_download(&package, &file).await;
        }
        Ok((package, file))
    }

    /// Where to send a client for `file` instead of answering inline: a presigned URL that
    /// answers with `content_disposition`, when the file is above the inline threshold and the
    /// blob store can presign. `None`: serve it inline.
    pub async fn download_redirect(
        &self,
        file: &PackageFile,
        content_disposition: &str,
    ) -> Result<Option<crate::store::Presigned>, Error> {
        // Like GitLab, only object storage redirects; local files are served inline, and so
        // are those whose bytes their record keeps.
        if self.blobs.location() == BlobLocation::Local || is_inline_key(&file.blob_key) {
            return Ok(None);
        }
        let presign = self.blobs.presign();
        match (self.downloads.inline_max, presign) {
            (Some(max), Some(presign)) if file.size > max => Ok(Some(
                presign
                    .presign_get(
                        &file.blob_key,
                        self.downloads.presign_ttl,
                        content_disposition,
                    )
                    .await?,
            )),
            _ => Ok(None),
        }
    }

    /// Open a located file's bytes, or the byte `range` of them.
    pub async fn open(
        &self,
        file: &PackageFile,
        range: Option<Range<u64>>,
    ) -> Result<BlobBody, Error> {
        if let Some(content) = &file.content {
            return Ok(inline::inline_body(content, range));
        }
        match self.blobs.get(&file.blob_key, range).await {
            Ok(body) => Ok(body),
            Err(StoreError::NotFound { .. }) => {
                // Deleted (and purged) since it was located: a 404 like any deleted file. Only
                // a file that is still live and has no bytes is an error.
                if self.still_live(file).await? {
                    tracing::error!(file_id = file.id, blob_key = %file.blob_key, "blob of a live file is missing");
                    return Err(Error::NotFound(Missing::Package));
                }
                Err(Error::NotFound(Missing::Overtaken))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Is `file` still live: its package not deleted, and itself not deleted?
    async fn still_live(&self, file: &PackageFile) -> Result<bool, Error> {
        let package = self.meta.package_by_id(file.package_id).await?;
        if package.is_none_or(|p| p.status == PackageStatus::PendingDestruction) {
            return Ok(false);
        }
        let live = self.meta.files_of(file.package_id).await?;
        Ok(live.iter().any(|f| f.id == file.id))
    }
}
