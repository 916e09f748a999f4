//! A package version as a whole: its manifest (the newest live file of each name), for
//! `GET /projects/:id/packages/generic/:name/:version` and `depot pull --all`; and `latest`, the
//! version a download or manifest of the version `latest` means ([`crate::domain::latest_order`])
//! unless a version is literally named so.

use super::FileCoordinates;
use super::{Error, Missing, Registry};
use crate::auth::{Action, Principal};
use crate::domain::{
    FileName, Package, PackageFile, PackageName, PackageStatus, PackageVersion, Project,
    ProjectRef, Rank, RankClass, VersionRef, latest_order,
};
use std::collections::{HashMap, HashSet};

impl Registry {
    /// The live package (`default` or `hidden`, as downloads find them) and the newest live
    /// file of each of its names, in name order, as `principal` may read them.
    pub async fn manifest(
        &self,
        principal: &Principal,
        project: &ProjectRef,
        name: &PackageName,
        version: &PackageVersion,
    ) -> Result<(Project, Package, Vec<PackageFile>), Error> {
        let project = self
            .authorized_project(principal, project, Action::Read)
            .await?;
        let mut package = self.meta.package_at(project.id, name, version).await?;
        if package.is_none() && version.as_str() == LATEST {
            let found = self.first_latest(project.id, name, None).await?;
            package = found.map(|(package, _)| package);
        }
        let package = package.ok_or(Error::NotFound(Missing::Package))?;
        let files = newest_of_each_name(self.meta.files_of(package.id).await?);
        Ok((project, package, files))
    }

    /// The newest live file at `at`, whose version is `latest`: the literal version if there is
    /// one (GitLab's meaning), else the file of the highest version holding it
    /// ([`latest_order`]; hidden packages never).
    pub(super) async fn latest_file(
        &self,
        project: &Project,
        at: &FileCoordinates,
    ) -> Result<Option<(Package, PackageFile)>, Error> {
        let meta = &self.meta;
        let (pid, name) = (project.id, &at.name);
        if meta.package_at(pid, name, &at.version).await?.is_some() {
            return Ok(meta
                .newest_file(pid, name, &at.version, &at.file_name)
                .await?);
        }
        let found = self.first_latest(pid, name, Some(&at.file_name)).await?;
        Ok(found.and_then(|(package, file)| file.map(|f| (package, f))))
    }

    /// The first listed version of `name`, in `latest`'s order, with its newest live file
    /// `file` if one is asked for (a version without it is passed over). The store is asked
    /// first for the best few of each kind; only if none of them will do, for all.
    async fn first_latest(
        &self,
        project_id: i64,
        name: &PackageName,
        file: Option<&FileName>,
    ) -> Result<Option<(Package, Option<PackageFile>)>, Error> {
        let mut tried = HashSet::new();
        for best in [Some(LATEST_FIRST_LOOK), None] {
            let versions = self.meta.versions_of(project_id, name, best).await?;
            // A kind the store may have cut short: past its last version read, the order
            // is not known.
            let count = |class: RankClass| {
                let of_class = versions
                    .iter()
                    .filter(|v| Rank::of(&v.version).class() == class);
                of_class.count()
            };
            let cut: Vec<RankClass> = [RankClass::Release, RankClass::PreRelease, RankClass::Other]
                .into_iter()
                .filter(|c| best.is_some_and(|b| count(*c) >= b))
                .collect();
            let mut seen: HashMap<&'static str, usize> = HashMap::new();
            for candidate in latest_order(versions) {
                let class = Rank::of(&candidate.version).class();
                let so_far = seen.entry(class.prefix()).or_default();
                *so_far += 1;
                let last_known = cut.contains(&class) && best.is_some_and(|b| *so_far >= b);
                if tried.insert(candidate.id)
                    && let Some(answer) = self
                        .version_with(project_id, name, &candidate, file)
                        .await?
                {
                    return Ok(Some(answer));
                }
                if last_known {
                    break;
                }
            }
        }
        Ok(None)
    }
}

impl Registry {
    /// `version` of `name` if it is a listed package with its newest live `file` (if asked
    /// for), or with any live file (if not).
    async fn version_with(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &VersionRef,
        file: Option<&FileName>,
    ) -> Result<Option<(Package, Option<PackageFile>)>, Error> {
        let listed = |p: &Package| p.status == PackageStatus::Default;
        Ok(match file {
            Some(file) => self
                .meta
                .newest_file(project_id, name, &version.version, file)
                .await?
                .filter(|(p, _)| listed(p))
                .map(|(p, f)| (p, Some(f))),
            // A whole version (a manifest): one with a live file at least.
            None => match self
                .meta
                .package_at(project_id, name, &version.version)
                .await?
                .filter(listed)
            {
                Some(p) if !self.meta.files_of(p.id).await?.is_empty() => Some((p, None)),
                _ => None,
            },
        })
    }
}

/// How many of each kind of version `latest` asks the store for first.
const LATEST_FIRST_LOOK: usize = 8;

/// The version a download or manifest means by `latest`, when no version has that name.
pub const LATEST: &str = "latest";

/// The newest file of each name among `files`, in name order.
pub fn newest_of_each_name(mut files: Vec<PackageFile>) -> Vec<PackageFile> {
    files.sort_by(|a, b| a.file_name.cmp(&b.file_name).then(b.id.cmp(&a.id)));
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(f.file_name.clone()));
    files
}
