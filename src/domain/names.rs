//! Names an operator or a group owner chooses, checked once with GitLab's rules and shared by
//! the registry, `depot admin` and GraphQL: group and project paths, usernames, and the
//! duplicate exception regex of a group's package settings.

/// GitLab's limit on `generic_duplicate_exception_regex`.
pub const EXCEPTION_REGEX_MAX_CHARS: usize = 255;

/// A path segment of a group or project, or a username: `[A-Za-z0-9_][A-Za-z0-9_.-]*`, not
/// ending in `.git` or `.atom`.
pub fn valid_segment(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !s.ends_with(".git")
        && !s.ends_with(".atom")
}

/// A full group or project path: valid segments joined by `/`.
pub fn valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(valid_segment)
}

/// Why an exception regex is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegexRefused {
    /// Longer than [`EXCEPTION_REGEX_MAX_CHARS`].
    TooLong,
    /// Does not compile; GitLab's message (`<value> is an invalid regexp: <reason>`).
    Invalid(String),
}

/// A group's duplicate exception regex, checked: at most 255 characters, and it compiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRegex(String);

impl ExceptionRegex {
    pub fn parse(re: &str) -> Result<Self, RegexRefused> {
        if re.chars().count() > EXCEPTION_REGEX_MAX_CHARS {
            return Err(RegexRefused::TooLong);
        }
        regex::Regex::new(re)
            .map_err(|e| RegexRefused::Invalid(format!("{re} is an invalid regexp: {e}")))?;
        Ok(Self(re.to_string()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Top-level names a group may not take: the web UI's and the API's own paths (`/api/...`,
/// `/groups/...`, `/-/...`) would hide its projects' pages (GitLab reserves them too).
pub const RESERVED_TOP_LEVEL: [&str; 6] = ["-", "api", "groups", "users", "admin", "help"];

/// Is `path` (a group's full path) under a reserved top-level name?
pub fn reserved_path(path: &str) -> bool {
    let top = path.split('/').next().unwrap_or(path);
    RESERVED_TOP_LEVEL.contains(&top.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in ["demo", "demo/app", "a_b/c-d.e", "_x"] {
            assert!(valid_path(ok), "{ok}");
        }
        for bad in [
            "", "/demo", "demo/", "de mo", "-x", "a//b", "x.git", ".hidden",
        ] {
            assert!(!valid_path(bad), "{bad}");
        }
    }

    #[test]
    fn exception_regexes() {
        assert!(ExceptionRegex::parse("foo-.*").is_ok());
        assert!(ExceptionRegex::parse("").is_ok());
        let Err(RegexRefused::Invalid(err)) = ExceptionRegex::parse("foo(") else {
            panic!("an unclosed group compiles");
        };
        assert!(err.starts_with("foo( is an invalid regexp: "), "{err}");
        assert_eq!(
            ExceptionRegex::parse(&"a".repeat(256)),
            Err(RegexRefused::TooLong)
        );
        assert!(ExceptionRegex::parse(&"a".repeat(255)).is_ok());
    }
}
