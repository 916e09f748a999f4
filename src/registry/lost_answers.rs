//! When a store's answer is lost: a write that failed with a transient error (a timeout, a
//! dropped connection, the service failing on its side) may have taken effect all the same.
//! Before a use case cleans up after it (deleting a blob no record names) or tells the client
//! to retry, it reads whether the write landed: landed, the client is told it succeeded; not
//! landed, the cleanup is safe; unknown, nothing is touched.

use super::Registry;
use crate::domain::{NewFile, Package, PackageFile, PackageStatus, SessionState};
use crate::store::{MetaStore, StoreError};

/// Whether a write whose answer was lost took effect.
pub(super) enum Landed<T> {
    /// It did; here is what it made.
    Yes(T),
    No,
    /// The read that would tell failed too.
    Unknown,
}

/// Whether the publish of `file` took effect: a live file of its package holds its blob.
pub(super) async fn published(
    meta: &dyn MetaStore,
    file: &NewFile,
) -> Landed<(Package, PackageFile)> {
    let found = async {
        let newest = meta
            .newest_file(file.project_id, &file.name, &file.version, &file.file_name)
            .await?;
        let Some((package, newest)) = newest else {
            return Ok(None);
        };
        if newest.blob_key == file.blob_key {
            return Ok(Some((package, newest)));
        }
        // A newer file of the name may have come since.
        let files = meta.files_of(package.id).await?;
        let ours = files.into_iter().find(|f| f.blob_key == file.blob_key);
        Ok::<_, StoreError>(ours.map(|f| (package, f)))
    };
    match found.await {
        Ok(Some(published)) => {
            tracing::warn!(
                file_id = published.1.id,
                "a publish's answer was lost; it took effect"
            );
            Landed::Yes(published)
        }
        Ok(None) => Landed::No,
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell whether a failed publish took effect");
            Landed::Unknown
        }
    }
}

impl Registry {
    /// Whether upload session `id` was committed (its publish settles it in the same step).
    pub(super) async fn session_committed(&self, id: &str) -> Landed<SessionState> {
        match self.meta.upload_session(id).await {
            Ok(Some(s)) if matches!(s.state, SessionState::Committed { .. }) => {
                Landed::Yes(s.state)
            }
            Ok(_) => Landed::No,
            Err(_) => Landed::Unknown,
        }
    }

    /// Whether package `id` is deleted (pending destruction, or purged already).
    pub(super) async fn package_deleted(&self, id: i64) -> bool {
        match self.meta.package_by_id(id).await {
            Ok(Some(p)) => p.status == PackageStatus::PendingDestruction,
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Whether file `file_id` of package `package_id` is deleted (no longer a live file).
    pub(super) async fn file_deleted(&self, package_id: i64, file_id: i64) -> bool {
        match self.meta.files_of(package_id).await {
            Ok(files) => files.iter().all(|f| f.id != file_id),
            Err(_) => false,
        }
    }
}
