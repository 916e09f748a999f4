//! Which version of a package `latest` means. Versions are compared by SemVer 2.0 precedence
//! where both parse (a leading `v` allowed; build metadata ignored), otherwise by creation
//! time; pre-releases come only after every release. Pairwise, "SemVer where both parse,
//! else time" is not an order (1.0 made last, 2.0 made first, `nightly` in between would go
//! round in a circle), so the rule is made one: the SemVer releases in precedence order and the
//! other versions newest first are merged by the creation time of whichever comes next in
//! each, then the pre-releases in precedence order. Ties go to the newer package.

use super::{Package, PackageVersion, Timestamp};
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
            // A precedence too long to sort by in a DynamoDB key (hundreds of pre-release
            // identifiers): ranked by time, as other versions are, on every store alike.
            Ok(v) if precedence_key(&v).len() > PRECEDENCE_KEY_MAX => Rank::Other,
            Ok(v) if v.pre.is_empty() => Rank::Release(v),
            Ok(v) => Rank::PreRelease(v),
            Err(_) => Rank::Other,
        }
    }
}

impl Rank {
    /// The key that sorts versions of one class as `latest` ranks them (higher first, when
    /// read in descending order): the class, then the SemVer precedence in a form that sorts
    /// as text (build metadata left out), or for other versions nothing; then the creation
    /// time and id (the newer of equal versions first).
    pub fn sort_key(&self, created_at: Timestamp, id: i64) -> String {
        let (class, precedence) = match self {
            Rank::Release(v) => (RankClass::Release, precedence_key(v)),
            Rank::PreRelease(v) => (RankClass::PreRelease, precedence_key(v)),
            Rank::Other => (RankClass::Other, String::new()),
        };
        format!(
            "{}{precedence}#{:013}#{id:020}",
            class.prefix(),
            created_at.millis().max(0)
        )
    }

    pub fn class(&self) -> RankClass {
        match self {
            Rank::Release(_) => RankClass::Release,
            Rank::PreRelease(_) => RankClass::PreRelease,
            Rank::Other => RankClass::Other,
        }
    }
}

/// The three kinds of version `latest` ranks apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankClass {
    Release,
    PreRelease,
    Other,
}

impl RankClass {
    /// What a [`Rank::sort_key`] of this class starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            RankClass::Release => "R#",
            RankClass::PreRelease => "P#",
            RankClass::Other => "O#",
        }
    }
}

/// The longest precedence key a version may have and still be ranked by precedence: with a
/// name of 255 characters and the rest of the key it stays under DynamoDB's 1,024 bytes.
const PRECEDENCE_KEY_MAX: usize = 600;

/// SemVer precedence as text that sorts the same: the numbers zero-padded; each pre-release
/// identifier as `0<length><digits>` (numeric, below any alphanumeric) or `1<text>`, ended by
/// `!`, the list ended by ` ` (below both: fewer identifiers rank lower).
fn precedence_key(v: &semver::Version) -> String {
    let mut key = format!("{:020}.{:020}.{:020}", v.major, v.minor, v.patch);
    if v.pre.is_empty() {
        return key;
    }
    key.push('-');
    for part in v.pre.as_str().split('.') {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            key.push_str(&format!("0{:03}{part}!", part.len()));
        } else {
            key.push_str(&format!("1{part}!"));
        }
    }
    key.push(' ');
    key
}

/// A version of a package as `latest` sees it: which package, and when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRef {
    pub id: i64,
    pub version: PackageVersion,
    pub created_at: Timestamp,
}

impl VersionRef {
    pub fn of(package: &Package) -> Self {
        Self {
            id: package.id,
            version: package.version.clone(),
            created_at: package.created_at,
        }
    }
}

/// The newer package first: later creation, then the higher id.
fn newer_first(a: &VersionRef, b: &VersionRef) -> Ordering {
    b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id))
}

/// Higher precedence first, then the newer package.
fn by_precedence(a: &(semver::Version, VersionRef), b: &(semver::Version, VersionRef)) -> Ordering {
    b.0.cmp_precedence(&a.0)
        .then_with(|| newer_first(&a.1, &b.1))
}

/// `candidates` (versions of one name) in the order `latest` tries them: the first that holds
/// the file asked for is served.
pub fn latest_order(candidates: Vec<VersionRef>) -> Vec<VersionRef> {
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
        latest_order(made(versions).iter().map(VersionRef::of).collect())
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

    /// Within a class, the sort keys read in descending order give `latest`'s order.
    #[test]
    fn sort_keys_sort_as_latest_ranks() {
        let versions = made(&[
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.2.0",
            "1.10.0",
            "v1.9.9",
            "1.0.0+b.1",
            "0.0.1-1",
            "0.0.1-a",
            "0.0.1-a.0",
            "0.0.1-a-",
            "0.0.1-a-.x",
            "0.0.1-10",
            "0.0.1-9",
            "10.0.0",
            "nightly",
            "2024-01-01",
        ]);
        for class in [RankClass::Release, RankClass::PreRelease, RankClass::Other] {
            let members: Vec<VersionRef> = versions
                .iter()
                .filter(|p| Rank::of(&p.version).class() == class)
                .map(VersionRef::of)
                .collect();
            let key = |v: &VersionRef| Rank::of(&v.version).sort_key(v.created_at, v.id);
            let mut by_key = members.clone();
            by_key.sort_by_key(|v| std::cmp::Reverse(key(v)));
            assert!(by_key.iter().all(|v| key(v).starts_with(class.prefix())));
            assert_eq!(by_key, latest_order(members), "{class:?}");
        }
    }

    #[test]
    fn ranks() {
        let rank = |v: &str| Rank::of(&PackageVersion::parse(v).unwrap());
        assert!(matches!(rank("v1.2.3"), Rank::Release(_)));
        assert!(matches!(rank("1.2.3-rc.1+build"), Rank::PreRelease(_)));
        let long = format!("0.0.0-{}", vec!["1"; 120].join("."));
        for other in [
            "1.2", "1.2.3.4", "01.2.3", "1.2.3-01", "latest", "vv1.0.0", &long,
        ] {
            assert_eq!(rank(other), Rank::Other, "{other}");
        }
    }
}
