//! GitLab's entities built from depot's records: the `wire` bodies the handlers send.

use crate::domain::{Package, PackageFile, PackageStatus};
use crate::store::BlobLocation;
use crate::wire::{
    FileUrl, PackageEntity, PackageFileEntity, PackageFileRecord, PackageLinks,
    PackageVersionEntity,
};

/// GitLab's `file_store` code for where a file's bytes are kept: 1 local, 2 object storage.
pub fn file_store_code(location: BlobLocation) -> i64 {
    match location {
        BlobLocation::Local => 1,
        BlobLocation::ObjectStorage => 2,
    }
}

/// GitLab's package-file record, as `select=package_file` returns it; its URL names the
/// project as `project_id`.
pub fn package_file_record(
    package: &Package,
    file: &PackageFile,
    project_id: i64,
    location: BlobLocation,
) -> PackageFileRecord {
    PackageFileRecord {
        id: file.id,
        package_id: file.package_id,
        created_at: file.created_at,
        updated_at: file.updated_at,
        size: file.size,
        file_store: file_store_code(location),
        file_md5: None,
        file_sha1: None,
        file_name: file.file_name.as_str().to_string(),
        file: FileUrl {
            url: format!(
                "/api/v4/projects/{project_id}/packages/generic/{}/{}/{}",
                package.name.as_str(),
                package.version.as_str(),
                file.file_name.as_str()
            ),
        },
        file_sha256: file.sha256.clone(),
        verification_retry_at: None,
        verified_at: None,
        verification_failure: None,
        verification_retry_count: None,
        verification_checksum: None,
        verification_state: 0,
        verification_started_at: None,
        new_file_path: None,
    }
}

/// How a package is shown: in which project, and what the caller may do with it.
pub struct PackageContext<'a> {
    pub project_path: &'a str,
    pub can_delete: bool,
    /// The URL clients reach depot at.
    pub base: &'a str,
    /// Group lists name each package's project.
    pub in_group_list: bool,
}

/// GitLab's package entity (`API::Entities::Package`).
pub fn package_entity(package: &Package, at: &PackageContext<'_>) -> PackageEntity {
    let links = PackageLinks {
        web_path: (package.status == PackageStatus::Default)
            .then(|| format!("/{}/-/packages/{}", at.project_path, package.id)),
        delete_api_path: at.can_delete.then(|| {
            format!(
                "{}/api/v4/projects/{}/packages/{}",
                at.base, package.project_id, package.id
            )
        }),
    };
    PackageEntity {
        id: package.id,
        name: package.name.as_str().to_string(),
        version: package.version.as_str().to_string(),
        package_type: "generic".into(),
        status: package.status.as_str().to_string(),
        _links: links,
        created_at: package.created_at,
        last_downloaded_at: package.last_downloaded_at,
        download_count: package.download_count,
        project_id: at.in_group_list.then_some(package.project_id),
        project_path: at.in_group_list.then(|| at.project_path.to_string()),
        tags: Vec::new(),
        versions: None,
    }
}

/// Another version of a package, as one package lists them.
pub fn version_entity(package: &Package) -> PackageVersionEntity {
    PackageVersionEntity {
        id: package.id,
        version: package.version.as_str().to_string(),
        created_at: package.created_at,
        tags: Vec::new(),
    }
}

/// GitLab's package-file entity (`API::Entities::PackageFile`).
pub fn file_entity(file: &PackageFile) -> PackageFileEntity {
    PackageFileEntity {
        id: file.id,
        package_id: file.package_id,
        created_at: file.created_at,
        file_name: file.file_name.as_str().to_string(),
        size: file.size,
        file_md5: None,
        file_sha1: None,
        file_sha256: file.sha256.clone(),
        download_count: file.download_count,
    }
}
