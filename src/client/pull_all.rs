//! `depot pull --all`: every file of a package version, from its manifest
//! (`GET …/generic/:name/:version`), a few at a time, each verified as `depot pull` verifies
//! one and written under the output directory with its directories recreated. A file is either
//! complete and verified at its path or absent: a failed one leaves no partial file.

use super::pull::{Pulled, pull};
use super::{Auth, ClientError, Target, http_client, local, read_answer, refusal, transport};
use crate::wire::PackageManifest;
use futures::{StreamExt, TryStreamExt};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use std::path::{Component, Path, PathBuf};

/// Files fetched at once.
const PARALLEL: usize = 4;

/// What `depot pull --all` prints: the version and each verified file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PulledAll {
    pub package: String,
    pub version: String,
    pub files: Vec<Pulled>,
}

/// Fetch every file of `target`'s package version (its `path` and `file_name` unused) into
/// `dir`.
pub async fn pull_all(
    target: &Target,
    auth: Option<&Auth>,
    dir: &Path,
) -> Result<PulledAll, ClientError> {
    let manifest = fetch_manifest(target, auth).await?;
    let mut planned = Vec::with_capacity(manifest.files.len());
    for file in &manifest.files {
        let out = dir.join(safe_relative(&file.path)?);
        let encoded: Vec<String> = file
            .path
            .split('/')
            .map(|s| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string())
            .collect();
        // The version the manifest names (`latest` resolved once, for every file).
        let one = Target {
            path: None,
            file_name: encoded.join("/"),
            version: manifest.package_version.clone(),
            ..target.clone()
        };
        planned.push((one, out, file.sha256.clone()));
    }
    let files: Vec<Pulled> = futures::stream::iter(planned)
        .map(|(one, out, sha256)| async move {
            if let Some(parent) = out.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| local(&parent.display().to_string(), e))?;
            }
            let pulled = pull(&one, auth, &out).await?;
            if pulled.sha256 != sha256 {
                let _ = tokio::fs::remove_file(&out).await;
                return Err(ClientError::Integrity(format!(
                    "{}: the download's SHA-256 is {}, but the manifest lists {sha256}",
                    out.display(),
                    pulled.sha256
                )));
            }
            Ok(pulled)
        })
        .buffered(PARALLEL)
        .try_collect()
        .await?;
    Ok(PulledAll {
        package: manifest.package_name,
        version: manifest.package_version,
        files,
    })
}

async fn fetch_manifest(
    target: &Target,
    auth: Option<&Auth>,
) -> Result<PackageManifest, ClientError> {
    let url = format!(
        "{}/api/v4/projects/{}/packages/generic/{}/{}",
        target.url.trim_end_matches('/'),
        utf8_percent_encode(&target.project, NON_ALPHANUMERIC),
        target.package,
        target.version
    );
    let mut request = http_client()?.get(url);
    if let Some(auth) = auth {
        request = auth.apply(request);
    }
    let response = request.send().await.map_err(transport)?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    read_answer(response, "a package manifest").await
}

/// A manifest's file path as a path under the output directory: plain names only, so no
/// answer can write outside it.
fn safe_relative(path: &str) -> Result<PathBuf, ClientError> {
    let relative = Path::new(path);
    let plain = !path.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(ClientError::Transport(format!(
            "the manifest names a file outside the output directory: {path:?}"
        )));
    }
    Ok(relative.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_stay_inside() {
        assert_eq!(
            safe_relative("linux/amd64/tool").unwrap(),
            PathBuf::from("linux/amd64/tool")
        );
        for bad in ["", "/etc/passwd", "../up", "a/../../b", "./a"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
    }
}
