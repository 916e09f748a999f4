//! `GET /projects/:id/packages/generic/:name/:version` (depot's; GitLab has no such route): a
//! version's manifest, the newest live file of each name with its size, SHA-256 and download
//! URL, for `depot pull --all` and scripts that fetch a whole package.

use super::AppState;
use super::extract::{Incoming, project_ref};
use super::pagination::base_url;
use crate::auth::Action;
use crate::domain::{InvalidParams, Package, PackageFile, PackageName, PackageVersion};
use crate::registry::Error;
use crate::wire::{ManifestFile, PackageManifest};
use axum::Json;
use axum::extract::{Path, State};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Validate first, then authenticate, as a download does.
pub async fn manifest(
    State(registry): State<AppState>,
    Path((project, name, version)): Path<(String, String, String)>,
    incoming: Incoming,
) -> Result<Json<PackageManifest>, Error> {
    let mut errors = InvalidParams::default();
    let name = errors.take(PackageName::parse(&name));
    let version = errors.take(PackageVersion::parse(&version));
    let (Some(name), Some(version)) = (name, version) else {
        return Err(Error::Invalid(errors));
    };
    let principal = registry
        .authenticate(incoming.credential.as_ref(), Action::Read)
        .await?;
    let reference = project_ref(&project);
    let (project, package, files) = registry
        .manifest(&principal, &reference, &name, &version)
        .await?;
    let api_base = base_url(&registry, &incoming.headers);
    Ok(Json(PackageManifest {
        project_id: project.id,
        package_id: package.id,
        package_name: package.name.as_str().to_string(),
        package_version: package.version.as_str().to_string(),
        status: package.status.as_str().to_string(),
        files: files
            .iter()
            .map(|file| ManifestFile {
                path: file.file_name.display(),
                size: file.size,
                sha256: file.sha256.clone(),
                created_at: file.created_at,
                download_url: file_url(&api_base, project.id, &package, file),
            })
            .collect(),
    }))
}

/// The API URL of `file` of `package` in project `project_id`, under `api_base`: its
/// directories as path segments, each segment percent-encoded.
pub fn file_url(api_base: &str, project_id: i64, package: &Package, file: &PackageFile) -> String {
    let shown = file.file_name.display();
    let segments: Vec<String> = shown
        .split('/')
        .map(|s| utf8_percent_encode(s, NON_ALPHANUMERIC_BUT_SAFE).to_string())
        .collect();
    format!(
        "{api_base}/api/v4/projects/{project_id}/packages/generic/{}/{}/{}",
        package.name.as_str(),
        package.version.as_str(),
        segments.join("/")
    )
}

/// What a path segment keeps as is (GitLab's file names allow these).
const NON_ALPHANUMERIC_BUT_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'_')
    .remove(b'-')
    .remove(b'~')
    .remove(b'+')
    .remove(b'@');
