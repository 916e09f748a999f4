//! Which version of a package `latest` means. Versions are compared by SemVer 2.0 precedence
//! where both parse (a leading `v` allowed; build metadata ignored), otherwise by creation
//! time; pre-releases come only after every release. Pairwise, "SemVer where both parse,
//! else time" is not an order (1.0 made last, 2.0 made first, `nightly` in between would go
//! round in a circle), so the rule is made one: the SemVer releases in precedence order and the
//! other versions newest first are merged by the creation time of whichever comes next in
//! each, then the pre-releases in precedence order. Ties go to the newer package.

use super::{Package, PackageVersion};
use std::cmp::Ordering;

/// How `latest` ranks one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rank {
    /// SemVer 2.0 without a pre-release.
    Release(semver::Version),
    /// SemVer 2.0 with a pre-release: after every release.
    PreRelease(semver::Version),
    /// Not SemVer: ranked by when it was made.
    Other,
}

impl Rank {
    pub fn of(version: &PackageVersion) -> Self {
        let text = version.as_str();
        let text = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        match semver::Version::parse(text) {
            Ok(v) if v.pre.is_empty() => Rank::Release(v),
            Ok(v) => Rank::PreRelease(v),
            Err(_) => Rank::Other,
        }
    }
}

/// The newer package first: later creation, then the higher id.
fn newer_first(a: &Package, b: &Package) -> Ordering {
    b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id))
}

/// Higher precedence first, then the newer package.
fn by_precedence(a: &(semver::Version, Package), b: &(semver::Version, Package)) -> Ordering {
    b.0.cmp_precedence(&a.0)
        .then_with(|| newer_first(&a.1, &b.1))
}

/// `candidates` (live packages of one name; hidden ones already left out) in the order
/// `latest` tries them: the first that holds the file asked for is served.
pub fn latest_order(candidates: Vec<Package>) -> Vec<Package> {
    let (mut releases, mut pre, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for package in candidates {
        match Rank::of(&package.version) {
            Rank::Release(v) => releases.push((v, package)),
            Rank::PreRelease(v) => pre.push((v, package)),
            Rank::Other => other.push(package),
        }
    }
    releases.sort_by(by_precedence);
    pre.sort_by(by_precedence);
    other.sort_by(newer_first);
    let mut ordered = Vec::with_capacity(releases.len() + pre.len() + other.len());
    let mut releases = releases.into_iter().map(|(_, p)| p).peekable();
    let mut other = other.into_iter().peekable();
    loop {
        let next = match (releases.peek(), other.peek()) {
            (Some(r), Some(o)) if newer_first(o, r) == Ordering::Less => other.next(),
            (Some(_), _) => releases.next(),
            (None, Some(_)) => other.next(),
            (None, None) => break,
        };
        ordered.extend(next);
    }
    ordered.extend(pre.into_iter().map(|(_, p)| p));
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PackageName, PackageStatus, Timestamp};

    /// Packages of these versions, made one after another in this order.
    fn made(versions: &[&str]) -> Vec<Package> {
        versions
            .iter()
            .enumerate()
            .map(|(i, v)| Package {
                id: i as i64 + 1,
                project_id: 1,
                name: PackageName::parse("tool").unwrap(),
                version: PackageVersion::parse(v).unwrap(),
                status: PackageStatus::Default,
                created_at: Timestamp::from_millis(1_000 * (i as i64 + 1)),
                updated_at: Timestamp::from_millis(1_000 * (i as i64 + 1)),
                last_downloaded_at: None,
                download_count: 0,
            })
            .collect()
    }

    fn order(versions: &[&str]) -> Vec<String> {
        latest_order(made(versions))
            .into_iter()
            .map(|p| p.version.as_str().to_string())
            .collect()
    }

    #[test]
    fn the_semver_ordering_table() {
        let table: [(&[&str], &[&str]); 8] = [
            // Numbers compare as numbers.
            (&["1.2.0", "1.10.0", "1.9.9"], &["1.10.0", "1.9.9", "1.2.0"]),
            // SemVer 2.0's own example, made in an order that is not theirs.
            (
                &[
                    "1.0.0-beta.11",
                    "1.0.0-alpha",
                    "1.0.0-rc.1",
                    "1.0.0-alpha.beta",
                    "1.0.0-beta",
                    "1.0.0-alpha.1",
                    "1.0.0-beta.2",
                ],
                &[
                    "1.0.0-rc.1",
                    "1.0.0-beta.11",
                    "1.0.0-beta.2",
                    "1.0.0-beta",
                    "1.0.0-alpha.beta",
                    "1.0.0-alpha.1",
                    "1.0.0-alpha",
                ],
            ),
            // Pre-releases only after every release, however high.
            (
                &["3.0.0-rc.1", "1.0.0", "2.0.0"],
                &["2.0.0", "1.0.0", "3.0.0-rc.1"],
            ),
            // Build metadata has no precedence: the newer package of equal ones first.
            (
                &["1.0.0+b.2", "1.0.0+b.1", "0.9.0"],
                &["1.0.0+b.1", "1.0.0+b.2", "0.9.0"],
            ),
            // A leading `v` is allowed, and ranks with the others.
            (
                &["v2.0.0", "1.5.0", "V1.7.0"],
                &["v2.0.0", "V1.7.0", "1.5.0"],
            ),
            // Not SemVer (two parts, leading zeros, words): by creation time.
            (&["1.0", "01.0.0", "nightly"], &["nightly", "01.0.0", "1.0"]),
            // Mixed: the best release against the newest other version, by creation time.
            (
                &["2.0.0", "nightly", "1.0.0"],
                &["nightly", "2.0.0", "1.0.0"],
            ),
            (
                &["nightly", "2.0.0", "2.1.0-rc.1"],
                &["2.0.0", "nightly", "2.1.0-rc.1"],
            ),
        ];
        for (made_in, expected) in table {
            assert_eq!(order(made_in), expected, "made in the order {made_in:?}");
        }
    }

    #[test]
    fn ranks() {
        let rank = |v: &str| Rank::of(&PackageVersion::parse(v).unwrap());
        assert!(matches!(rank("v1.2.3"), Rank::Release(_)));
        assert!(matches!(rank("1.2.3-rc.1+build"), Rank::PreRelease(_)));
        for other in ["1.2", "1.2.3.4", "01.2.3", "1.2.3-01", "latest", "vv1.0.0"] {
            assert_eq!(rank(other), Rank::Other, "{other}");
        }
    }
}
