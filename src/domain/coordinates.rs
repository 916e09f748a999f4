//! Where a generic package file lives: project reference, package name, version and file name,
//! each parsed once with GitLab's exact rules.

use std::fmt;

/// A project as the URL names it: numeric id or full path (`group/sub/project`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProjectRef {
    Id(i64),
    Path(String),
}

impl ProjectRef {
    /// Parse an already percent-decoded `:id`. A bare word with no slash names no project.
    pub fn parse(decoded: &str) -> Option<Self> {
        if !decoded.is_empty() && decoded.bytes().all(|b| b.is_ascii_digit()) {
            return decoded.parse().ok().map(ProjectRef::Id);
        }
        let trimmed = decoded.trim_matches('/');
        if trimmed.contains('/') && !trimmed.split('/').any(str::is_empty) {
            return Some(ProjectRef::Path(trimmed.to_string()));
        }
        None
    }
}

impl fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProjectRef::Id(id) => write!(f, "{id}"),
            ProjectRef::Path(path) => f.write_str(path),
        }
    }
}

/// A group as the URL names it: numeric id or full path (`group/sub`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupRef {
    Id(i64),
    Path(String),
}

impl GroupRef {
    /// Parse an already percent-decoded `:id`.
    pub fn parse(decoded: &str) -> Option<Self> {
        if !decoded.is_empty() && decoded.bytes().all(|b| b.is_ascii_digit()) {
            return decoded.parse().ok().map(GroupRef::Id);
        }
        // Digits alone (`/123/`) are an id with slashes around it, not a path: no group.
        let trimmed = decoded.trim_matches('/');
        if trimmed.bytes().all(|b| b.is_ascii_digit()) || trimmed.split('/').any(str::is_empty) {
            return None;
        }
        Some(GroupRef::Path(trimmed.to_string()))
    }
}

/// Validation failures, in GitLab's wording (`package_name is invalid`), joined by ", ".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvalidParams(pub Vec<String>);

impl InvalidParams {
    pub fn push(&mut self, message: impl Into<String>) {
        self.0.push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keep a parsed value, or record its errors.
    pub fn take<T>(&mut self, result: Result<T, InvalidParams>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.extend(e.0);
                None
            }
        }
    }
}

impl fmt::Display for InvalidParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// `CGI.unescape`: `%XX` decoded, `+` becomes a space, invalid escapes kept as they are.
fn cgi_unescape(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// GitLab's path-traversal check (`Gitlab::PathTraversal` + the `file_path` validator): decode
/// once, refuse double encoding, `.`/`..`, `../` at the start, `/..` at the end, `/../` inside
/// (either slash), a newline, or an absolute path.
pub fn check_file_path(value: &str) -> bool {
    let once = cgi_unescape(value);
    if once != cgi_unescape(&once) {
        return false;
    }
    let p = once.as_str();
    let is_sep = |c: char| c == '/' || c == '\\';
    let traversal = p == "."
        || p == ".."
        || (p.starts_with("..") && p[2..].starts_with(is_sep))
        || (p.ends_with("..") && p[..p.len() - 2].ends_with(is_sep))
        || inner_dotdot(p)
        || p.contains('\n');
    !(traversal || p.starts_with('/'))
}

/// `[/\\]\.\.[/\\]` somewhere in `p`.
fn inner_dotdot(p: &str) -> bool {
    let b = p.as_bytes();
    b.windows(4).any(|w| {
        (w[0] == b'/' || w[0] == b'\\') && &w[1..3] == b".." && (w[3] == b'/' || w[3] == b'\\')
    })
}

/// The longest package name, version or stored file name GitLab keeps (its column limit).
pub const NAME_MAX_CHARS: usize = 255;

/// `"<param> is too long (maximum is 255 characters)"`, when it is.
fn check_length(errors: &mut InvalidParams, param: &str, value: &str) {
    if value.chars().count() > NAME_MAX_CHARS {
        errors.push(format!(
            "{param} is too long (maximum is {NAME_MAX_CHARS} characters)"
        ));
    }
}

/// `\A[A-Za-z0-9._+-]+\z` plus the path check: GitLab's `generic_package_name_regex`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName(String);

impl PackageName {
    pub fn parse(s: &str) -> Result<Self, InvalidParams> {
        let mut errors = InvalidParams::default();
        let ok = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
        if !ok {
            errors.push("package_name is invalid");
        }
        if !check_file_path(s) {
            errors.push("package_name should be a valid file path");
        }
        check_length(&mut errors, "package_name", s);
        if errors.is_empty() {
            Ok(Self(s.to_string()))
        } else {
            Err(errors)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `\A(?!.*\.\.)[\w+.-]+\z` (ASCII `\w`): GitLab's `generic_package_version_regex`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageVersion(String);

impl PackageVersion {
    pub fn parse(s: &str) -> Result<Self, InvalidParams> {
        let ok = !s.is_empty()
            && !s.contains("..")
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b));
        let mut errors = InvalidParams::default();
        if !ok {
            errors.push("package_version is invalid");
        }
        check_length(&mut errors, "package_version", s);
        if errors.is_empty() {
            Ok(Self(s.to_string()))
        } else {
            Err(errors)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The stored file name: the bare file name, or with directories the whole `dir/file`
/// URI-component encoded (`linux%2Famd64%2Ftool.tar.gz`), as GitLab stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileName(String);

impl FileName {
    /// `path` is the optional directory part (URL directories or the `path` parameter).
    pub fn parse(path: Option<&str>, file_name: &str) -> Result<Self, InvalidParams> {
        let mut errors = InvalidParams::default();
        let path = path.filter(|p| !p.is_empty());
        // A control character (a NUL, a tab) has no place in a path: it would be stored and
        // shown as is.
        if let Some(p) = path
            && (!check_file_path(p) || p.chars().any(char::is_control))
        {
            errors.push("path should be a valid file path");
        }
        if !file_name_matches(file_name) {
            errors.push("file_name is invalid");
        }
        if !check_file_path(file_name) {
            errors.push("file_name should be a valid file path");
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let stored = match path {
            Some(p) => encode_uri_component(&format!("{p}/{file_name}")),
            None => file_name.to_string(),
        };
        check_length(&mut errors, "file_name", &stored);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self(stored))
    }

    /// A stored name as it comes back from the store.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The name as people read it: its directories with `/` (the stored form encodes them).
    pub fn display(&self) -> String {
        percent_encoding::percent_decode_str(&self.0)
            .decode_utf8_lossy()
            .into_owned()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `\A(?!~)(?!@)[A-Za-z0-9._+\-~@]+(?<!~)(?<!@)\z`
fn file_name_matches(s: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c != '~' && c != '@');
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-~@".contains(&b))
        && edge_ok(s.chars().next())
        && edge_ok(s.chars().last())
}

/// Ruby's `URI.encode_uri_component`: everything but `[A-Za-z0-9*._-]` as upper-case `%XX`.
fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"*._-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `coordinates` fuzz target (fuzz/regressions/coordinates/): digits with a
    /// slash around them parsed as a group path that, written back, named an id or nothing.
    #[test]
    fn a_group_reference_reparses_to_itself() {
        let digits = format!("/{}", "4".repeat(80));
        for decoded in [digits.as_str(), "/123/", "123/", "/", ""] {
            assert_eq!(GroupRef::parse(decoded), None, "{decoded:?}");
        }
        assert_eq!(GroupRef::parse("123"), Some(GroupRef::Id(123)));
        for (decoded, path) in [
            ("acme", "acme"),
            ("/acme/tools/", "acme/tools"),
            ("1/2", "1/2"),
        ] {
            let parsed = GroupRef::parse(decoded);
            assert_eq!(
                parsed,
                Some(GroupRef::Path(path.to_string())),
                "{decoded:?}"
            );
            assert_eq!(GroupRef::parse(path), parsed);
        }
    }

    #[test]
    fn control_characters_and_overlong_names_are_refused() {
        for dirs in ["a\0b", "linux/\tamd64", "x\u{7f}", "dir\r"] {
            let e = FileName::parse(Some(dirs), "f.txt").unwrap_err();
            assert_eq!(
                e.to_string(),
                "path should be a valid file path",
                "{dirs:?}"
            );
        }
        let long = "a".repeat(NAME_MAX_CHARS + 1);
        let e = PackageName::parse(&long).unwrap_err();
        assert_eq!(
            e.to_string(),
            "package_name is too long (maximum is 255 characters)"
        );
        let e = PackageVersion::parse(&long).unwrap_err();
        assert_eq!(
            e.to_string(),
            "package_version is too long (maximum is 255 characters)"
        );
        let e = FileName::parse(None, &long).unwrap_err();
        assert_eq!(
            e.to_string(),
            "file_name is too long (maximum is 255 characters)"
        );
        // The limit is on the stored name: directories count, encoded as GitLab stores them.
        let deep = "d/".repeat(100);
        let e = FileName::parse(Some(deep.trim_end_matches('/')), "f.txt").unwrap_err();
        assert_eq!(
            e.to_string(),
            "file_name is too long (maximum is 255 characters)"
        );
        let at_limit = "a".repeat(NAME_MAX_CHARS);
        assert!(PackageName::parse(&at_limit).is_ok());
        assert!(PackageVersion::parse(&at_limit).is_ok());
        assert!(FileName::parse(None, &at_limit).is_ok());
    }

    #[test]
    fn package_names() {
        let good = [
            "my_package",
            "my-package",
            "my.package",
            "pkg+1",
            "A1",
            "a.b-c_d+e",
            "...a",
        ];
        for name in good {
            assert!(
                PackageName::parse(name).is_ok(),
                "{name} should be accepted"
            );
        }
        let bad: [(&str, &[&str]); 10] = [
            ("", &["package_name is invalid"]),
            (".", &["package_name should be a valid file path"]),
            ("..", &["package_name should be a valid file path"]),
            ("my package", &["package_name is invalid"]),
            ("my/package", &["package_name is invalid"]),
            ("pkg@1", &["package_name is invalid"]),
            ("pkg~1", &["package_name is invalid"]),
            ("pkg%2F", &["package_name is invalid"]),
            (
                "%252e%252e",
                &[
                    "package_name is invalid",
                    "package_name should be a valid file path",
                ],
            ),
            ("naïve", &["package_name is invalid"]),
        ];
        for (name, errors) in bad {
            let got = PackageName::parse(name).expect_err(name);
            assert_eq!(got.0, errors.to_vec(), "{name}");
        }
    }

    #[test]
    fn package_versions() {
        let good = [
            "1.3.350-20201230123456",
            "1.2.3",
            "1.2.3g",
            "1.2",
            "1.2.bananas",
            "v1.2.4-build",
            "d2a7a8d39b4b5d4b2d8c1c7f1b0b9e3a1c2d3e4f",
            "1_0",
            "1+build.5",
            "1",
        ];
        for v in good {
            assert!(PackageVersion::parse(v).is_ok(), "{v} should be accepted");
        }
        let bad = [
            "..1.2.3",
            "1.2.3-4/../../",
            "%2e%2e%2f1.2.3",
            "1..2",
            "",
            "1.2 3",
            "1/2",
            "1.2~3",
            "1.2@3",
            "versión",
        ];
        for v in bad {
            let err = PackageVersion::parse(v).expect_err(v);
            assert_eq!(err.to_string(), "package_version is invalid", "{v}");
        }
    }

    #[test]
    fn file_names() {
        let good = [
            ("file.txt", "file.txt"),
            ("my~file.tar.gz", "my~file.tar.gz"),
            ("myfile@1.1.tar.gz", "myfile@1.1.tar.gz"),
            ("a+b-c_d.e", "a+b-c_d.e"),
            ("...", "..."),
        ];
        for (input, stored) in good {
            assert_eq!(
                FileName::parse(None, input).unwrap().as_str(),
                stored,
                "{input}"
            );
        }
        let bad: [(&str, &[&str]); 9] = [
            ("~file.txt", &["file_name is invalid"]),
            ("file.txt~", &["file_name is invalid"]),
            ("@file.txt", &["file_name is invalid"]),
            ("file.txt@", &["file_name is invalid"]),
            ("file name", &["file_name is invalid"]),
            ("", &["file_name is invalid"]),
            ("..", &["file_name should be a valid file path"]),
            (".", &["file_name should be a valid file path"]),
            (
                "%252e%252e",
                &[
                    "file_name is invalid",
                    "file_name should be a valid file path",
                ],
            ),
        ];
        for (input, errors) in bad {
            assert_eq!(
                FileName::parse(None, input).expect_err(input).0,
                errors.to_vec(),
                "{input}"
            );
        }
    }

    #[test]
    fn directories_are_encoded_into_the_stored_name() {
        let cases = [
            (
                Some("linux/amd64"),
                "tool.tar.gz",
                "linux%2Famd64%2Ftool.tar.gz",
            ),
            (Some("dir"), "my~file@1", "dir%2Fmy%7Efile%401"),
            (Some("a b"), "f+g", "a%20b%2Ff%2Bg"),
            (Some(""), "plain.txt", "plain.txt"),
            (None, "plain.txt", "plain.txt"),
        ];
        for (path, name, stored) in cases {
            assert_eq!(FileName::parse(path, name).unwrap().as_str(), stored);
        }
        let bad_paths = [
            "../etc",
            "a/../b",
            "a/..",
            "..",
            "/abs",
            "a\\..\\b",
            "a\nb",
            "%252e%252e",
        ];
        for p in bad_paths {
            let err = FileName::parse(Some(p), "f.txt").expect_err(p);
            assert_eq!(err.0, vec!["path should be a valid file path"], "{p:?}");
        }
    }

    #[test]
    fn path_traversal_check() {
        for ok in ["a", "a/b", "a..b", "..a", "a/..b", "a/b..", "x.y", "a%20b"] {
            assert!(check_file_path(ok), "{ok:?} should pass");
        }
        for bad in [
            ".",
            "..",
            "../a",
            "..\\a",
            "a/..",
            "a\\..",
            "a/../b",
            "a\\..\\b",
            "a\nb",
            "/a",
            "%2e%2e",
            "%2e%2e%2fa",
            "%252e",
        ] {
            assert!(!check_file_path(bad), "{bad:?} should fail");
        }
    }

    #[test]
    fn project_refs() {
        assert_eq!(ProjectRef::parse("24"), Some(ProjectRef::Id(24)));
        assert_eq!(
            ProjectRef::parse("group/project"),
            Some(ProjectRef::Path("group/project".into()))
        );
        assert_eq!(
            ProjectRef::parse("g/sub/p"),
            Some(ProjectRef::Path("g/sub/p".into()))
        );
        assert_eq!(ProjectRef::parse("project"), None);
        assert_eq!(ProjectRef::parse(""), None);
        assert_eq!(ProjectRef::parse("g//p"), None);
        assert_eq!(ProjectRef::parse("99999999999999999999999"), None);
    }
}
