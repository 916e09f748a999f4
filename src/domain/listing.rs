//! What a package list asks for (filters, order, page) and what it gets back, parsed once from
//! the Packages API query string, as GitLab reads it.

use super::{InvalidParams, Package, PackageFile, PackageStatus, PackageVersion};

/// GitLab's `per_page` ceiling.
pub const MAX_PER_PAGE: u64 = 100;

/// Above this many rows GitLab stops counting (no `X-Total`, `X-Total-Pages` or `last` link):
/// it keeps every list's cost bounded, in SQL and in DynamoDB alike.
pub const COUNT_LIMIT: u64 = 10_000;

/// The columns a package list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageOrder {
    CreatedAt,
    Name,
    Version,
    /// Every package here is `generic`, so this is creation order.
    Type,
    /// Group lists only.
    ProjectPath,
}

impl PackageOrder {
    fn parse(value: &str, for_group: bool) -> Option<Self> {
        Some(match value {
            "created_at" => PackageOrder::CreatedAt,
            "name" => PackageOrder::Name,
            "version" => PackageOrder::Version,
            "type" => PackageOrder::Type,
            "project_path" if for_group => PackageOrder::ProjectPath,
            _ => return None,
        })
    }
}

/// Which page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub number: u64,
    /// 1..=100.
    pub per_page: u64,
}

impl Page {
    /// The rows before this page, at most `i64::MAX`: the most a store can skip (SQLite's
    /// `OFFSET` is a signed 64-bit integer), and a page that far is past the last all the same.
    pub fn offset(&self) -> u64 {
        (self.number - 1)
            .saturating_mul(self.per_page)
            .min(i64::MAX as u64)
    }

    /// `page` and `per_page` as GitLab (Grape + Kaminari) reads them: missing → 1 and 20;
    /// `page` below 1 is page 1; a negative `per_page` is the default and one above 100 is
    /// 100; `per_page=0` and non-numbers are refused.
    pub fn parse(page: Option<&str>, per_page: Option<&str>, errors: &mut InvalidParams) -> Self {
        let mut integer = |name: &str, raw: Option<&str>| match raw.map(|v| v.trim().parse::<i64>())
        {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                errors.push(format!("{name} is invalid"));
                None
            }
        };
        let number = integer("page", page).map_or(1, |n| n.max(1) as u64);
        let per_page = match integer("per_page", per_page) {
            Some(0) => {
                errors.push("per_page has a value not allowed");
                20
            }
            Some(n) if n > 0 => (n as u64).min(MAX_PER_PAGE),
            _ => 20,
        };
        Page { number, per_page }
    }
}

/// A package list request: the filters, the order and the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageQuery {
    /// Which status is listed: `default` unless `status=hidden` asked for hidden ones.
    pub status: PackageStatus,
    /// Lower-case words that must all occur in the name (`package_name`).
    pub name_words: Vec<String>,
    /// Exact version (`package_version`).
    pub version: Option<String>,
    /// False when `package_type` names another type, or `status` one no generic package here
    /// ever has (`processing`, `error`, `deprecated`): nothing matches.
    pub satisfiable: bool,
    pub order: PackageOrder,
    pub descending: bool,
    pub page: Page,
}

/// The package types GitLab knows (`Packages::Package.package_types`).
const PACKAGE_TYPES: &[&str] = &[
    "maven",
    "npm",
    "conan",
    "nuget",
    "pypi",
    "composer",
    "generic",
    "golang",
    "debian",
    "rubygems",
    "helm",
    "terraform_module",
    "rpm",
    "ml_model",
    "cargo",
];

impl PackageQuery {
    /// Parse a list's query parameters (`for_group` also allows `order_by=project_path`).
    /// Every invalid value is reported, GitLab-worded, in the order GitLab declares them.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        for_group: bool,
    ) -> Result<Self, InvalidParams> {
        let mut raw = std::collections::HashMap::new();
        for (key, value) in params {
            raw.insert(key, value);
        }
        let get = |key: &str| raw.get(key).copied();
        let mut errors = InvalidParams::default();
        let page = Page::parse(get("page"), get("per_page"), &mut errors);
        let order = match get("order_by") {
            None => PackageOrder::CreatedAt,
            Some(v) => PackageOrder::parse(v, for_group).unwrap_or_else(|| {
                errors.push("order_by does not have a valid value");
                PackageOrder::CreatedAt
            }),
        };
        let descending = parse_sort(get("sort"), &mut errors);
        let type_matches = match get("package_type") {
            None => true,
            Some(v) if PACKAGE_TYPES.contains(&v) => v == "generic",
            Some(_) => {
                errors.push("package_type does not have a valid value");
                true
            }
        };
        let name_words = get("package_name")
            .map(|v| v.split_whitespace().map(str::to_lowercase).collect())
            .unwrap_or_default();
        let version = get("package_version")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        // Generic packages always carry a version, so the answer is the same either way; the
        // value must still be a boolean.
        if get("include_versionless").is_some_and(|v| parse_bool(v).is_none()) {
            errors.push("include_versionless is invalid");
        }
        let mut satisfiable = type_matches;
        let status = match get("status") {
            None => PackageStatus::Default,
            Some(v) => v.parse::<PackageStatus>().unwrap_or_else(|_| {
                if ["processing", "error", "deprecated"].contains(&v) {
                    satisfiable = false;
                } else {
                    errors.push("status does not have a valid value");
                }
                PackageStatus::Default
            }),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(PackageQuery {
            status,
            name_words,
            version,
            satisfiable,
            order,
            descending,
            page,
        })
    }

    /// Does `package` pass the filters (status, type, name words, version)? Stores that cannot
    /// filter on a key use this same rule.
    pub fn matches(&self, package: &Package) -> bool {
        self.satisfiable
            && package.status == self.status
            && self.name_matches(package.name.as_str())
            && self.version_matches(&package.version)
    }

    pub fn name_matches(&self, name: &str) -> bool {
        let lower = name.to_lowercase();
        self.name_words.iter().all(|w| lower.contains(w.as_str()))
    }

    pub fn version_matches(&self, version: &PackageVersion) -> bool {
        self.version
            .as_deref()
            .is_none_or(|v| v == version.as_str())
    }
}

/// `sort`: `asc` (the default) or `desc`.
fn parse_sort(value: Option<&str>, errors: &mut InvalidParams) -> bool {
    match value {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            errors.push("sort does not have a valid value");
            false
        }
    }
}

/// Grape's Boolean coercion.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "on" => Some(true),
        "false" | "f" | "0" | "no" | "n" | "off" | "" => Some(false),
        _ => None,
    }
}

/// The orders of a package's file list (`order_by` id|created_at|file_name, `sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOrder {
    pub by: FileOrderBy,
    pub descending: bool,
    pub page: Page,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOrderBy {
    Id,
    CreatedAt,
    FileName,
}

impl FileOrder {
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, InvalidParams> {
        let raw: std::collections::HashMap<&str, &str> = params.into_iter().collect();
        let get = |key: &str| raw.get(key).copied();
        let mut errors = InvalidParams::default();
        let page = Page::parse(get("page"), get("per_page"), &mut errors);
        let by = match get("order_by") {
            None | Some("id") => FileOrderBy::Id,
            Some("created_at") => FileOrderBy::CreatedAt,
            Some("file_name") => FileOrderBy::FileName,
            Some(_) => {
                errors.push("order_by does not have a valid value");
                FileOrderBy::Id
            }
        };
        let descending = parse_sort(get("sort"), &mut errors);
        if errors.is_empty() {
            Ok(FileOrder {
                by,
                descending,
                page,
            })
        } else {
            Err(errors)
        }
    }

    /// Order `files` and cut out the page.
    pub fn apply(&self, mut files: Vec<PackageFile>) -> Listed<PackageFile> {
        files.sort_by(|a, b| {
            let order = match self.by {
                FileOrderBy::Id => a.id.cmp(&b.id),
                FileOrderBy::CreatedAt => (a.created_at, a.id).cmp(&(b.created_at, b.id)),
                FileOrderBy::FileName => {
                    (a.file_name.as_str(), a.id).cmp(&(b.file_name.as_str(), b.id))
                }
            };
            if self.descending {
                order.reverse()
            } else {
                order
            }
        });
        Listed::page_of(files, self.page)
    }
}

/// One page of a list and how many rows the whole list has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    pub items: Vec<T>,
    /// `None` when there are more than [`COUNT_LIMIT`] rows (not counted further).
    pub total: Option<u64>,
    /// Whether a row follows this page (known even when the total is not).
    pub has_next: bool,
}

impl<T> Listed<T> {
    /// The same page, each row mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            has_next: self.has_next,
        }
    }

    /// A list with no rows.
    pub fn empty() -> Self {
        Listed {
            items: Vec::new(),
            total: Some(0),
            has_next: false,
        }
    }

    /// The page `page` of a whole list held in memory.
    pub fn page_of(all: Vec<T>, page: Page) -> Self {
        let total = all.len() as u64;
        let offset = page.offset().min(total) as usize;
        let items: Vec<T> = all
            .into_iter()
            .skip(offset)
            .take(page.per_page as usize)
            .collect();
        let has_next = (offset + items.len()) < total as usize;
        Listed {
            items,
            total: (total <= COUNT_LIMIT).then_some(total),
            has_next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<PackageQuery, InvalidParams> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        PackageQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), false)
    }

    /// Found by the `pagination` fuzz target (fuzz/regressions/pagination/): a page whose
    /// offset passes `i64::MAX` was a 500 on SQLite and overflowed on DynamoDB.
    #[test]
    fn a_page_beyond_any_store_is_past_the_last() {
        let q = parse("page=7766279631452241918&per_page=20").unwrap();
        assert_eq!(q.page.number, 7_766_279_631_452_241_918);
        assert_eq!(q.page.offset(), i64::MAX as u64);
        let last = Page {
            number: i64::MAX as u64,
            per_page: MAX_PER_PAGE,
        };
        assert_eq!(last.offset(), i64::MAX as u64);
        let far = Listed::page_of(vec![1, 2, 3], q.page);
        assert!(far.items.is_empty() && !far.has_next);
        assert_eq!(far.total, Some(3));
    }

    #[test]
    fn defaults() {
        let q = parse("").unwrap();
        assert_eq!(q.status, PackageStatus::Default);
        assert_eq!(q.order, PackageOrder::CreatedAt);
        assert!(!q.descending);
        assert_eq!(
            q.page,
            Page {
                number: 1,
                per_page: 20
            }
        );
        assert!(q.satisfiable && q.name_words.is_empty() && q.version.is_none());
    }

    #[test]
    fn good_values() {
        let q = parse(
            "order_by=version&sort=desc&page=3&per_page=250&package_type=generic\
             &package_name=My+Pkg&package_version=1.0&status=hidden&include_versionless=true",
        )
        .unwrap();
        assert_eq!(q.order, PackageOrder::Version);
        assert!(q.descending);
        assert_eq!(
            q.page,
            Page {
                number: 3,
                per_page: 100
            }
        );
        assert_eq!(q.page.offset(), 200);
        assert_eq!(q.name_words, vec!["my", "pkg"]);
        assert_eq!(q.version.as_deref(), Some("1.0"));
        assert_eq!(q.status, PackageStatus::Hidden);
        assert!(!parse("package_type=npm").unwrap().satisfiable);
        assert!(!parse("status=error").unwrap().satisfiable);
        assert_eq!(
            parse("status=pending_destruction").unwrap().status,
            PackageStatus::PendingDestruction
        );
        let lenient = parse("page=-3&per_page=-5").unwrap().page;
        assert_eq!(
            lenient,
            Page {
                number: 1,
                per_page: 20
            }
        );
    }

    #[test]
    fn bad_values_are_all_reported() {
        let cases = [
            ("order_by=size", "order_by does not have a valid value"),
            (
                "order_by=project_path",
                "order_by does not have a valid value",
            ),
            ("sort=up", "sort does not have a valid value"),
            (
                "package_type=zip",
                "package_type does not have a valid value",
            ),
            ("status=gone", "status does not have a valid value"),
            ("page=two", "page is invalid"),
            ("per_page=x", "per_page is invalid"),
            ("per_page=0", "per_page has a value not allowed"),
            (
                "include_versionless=maybe",
                "include_versionless is invalid",
            ),
        ];
        for (q, message) in cases {
            assert_eq!(parse(q).unwrap_err().0, vec![message], "{q}");
        }
        assert_eq!(
            parse("sort=up&order_by=size&page=x")
                .unwrap_err()
                .to_string(),
            "page is invalid, order_by does not have a valid value, \
             sort does not have a valid value"
        );
        let pairs = [("order_by", "project_path")];
        assert_eq!(
            PackageQuery::parse(pairs, true).unwrap().order,
            PackageOrder::ProjectPath
        );
    }

    #[test]
    fn name_words_are_anded_case_insensitively() {
        let q = parse("package_name=LIB+core").unwrap();
        assert!(q.name_matches("my-core-lib"));
        assert!(!q.name_matches("my-lib"));
        assert!(parse("").unwrap().name_matches("anything"));
    }
}
