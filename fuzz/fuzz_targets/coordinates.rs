//! Coordinates and paths: a generic-package request path (`/api/v4/projects/<id>/packages/
//! generic/<name>/<version>/<dirs>/<file>?<query>`) split and validated as the routes do, and
//! the same text given to each parser at the edge (package name, version, file name with and
//! without directories, project and group references, group/project paths, the path check).
//! Whatever is accepted must be what GitLab accepts and must re-serialise to itself.

#![no_main]

use depot::api::edge::{Route, parse_params, split_generic_path};
use depot::domain::{
    FileName, GroupRef, PackageName, PackageVersion, ProjectRef, check_file_path, valid_path,
    valid_segment,
};
use depot_fuzz::{cgi_unescape, percent_decode};
use libfuzzer_sys::fuzz_target;

const MAX_CHARS: usize = 255;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    request_path(&text);
    names(&text);
    references(&text);
    paths(&text);
});

/// The request path through `split_generic_path`, `Route::parse` and `parse_params`.
fn request_path(text: &str) {
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    let query: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let Some((project, rest)) = split_generic_path(path) else {
        return;
    };
    assert!(!project.contains('/'), "project {project:?} spans segments");
    let Some(route) = Route::parse(project, rest) else {
        return;
    };
    assert!(
        rest.split('/').count() >= 3 && !rest.split('/').any(str::is_empty),
        "a route of {rest:?}"
    );
    for upload in [false, true] {
        if let Ok((coordinates, _, _)) = parse_params(&route, &query, upload) {
            name_invariants(coordinates.name.as_str());
            version_invariants(coordinates.version.as_str());
            assert!(coordinates.file_name.as_str().chars().count() <= MAX_CHARS);
            let project = coordinates.project.to_string();
            assert_eq!(
                ProjectRef::parse(&project).unwrap_or(ProjectRef::Path(project.clone())),
                coordinates.project,
                "project {project:?}"
            );
        }
    }
}

fn name_invariants(name: &str) {
    assert_eq!(
        PackageName::parse(name).map(|n| n.as_str().to_owned()),
        Ok(name.to_owned())
    );
    assert!(
        !name.is_empty() && name.chars().count() <= MAX_CHARS,
        "{name:?}"
    );
    assert!(check_file_path(name), "{name:?}");
    assert!(!name.contains(['/', '%', '\n']), "{name:?}");
}

fn version_invariants(version: &str) {
    let parsed = PackageVersion::parse(version).map(|v| v.as_str().to_owned());
    assert_eq!(parsed, Ok(version.to_owned()));
    assert!(!version.is_empty() && version.chars().count() <= MAX_CHARS);
    assert!(
        !version.contains("..") && !version.contains(['/', '%']),
        "{version:?}"
    );
}

/// The whole text as a name, a version and a file name (with its directories split off).
fn names(text: &str) {
    if PackageName::parse(text).is_ok() {
        name_invariants(text);
    }
    if PackageVersion::parse(text).is_ok() {
        version_invariants(text);
    }
    if let Ok(file) = FileName::parse(None, text) {
        assert_eq!(file.as_str(), text);
        assert!(text.chars().count() <= MAX_CHARS && !text.contains('/'));
    }
    let (dirs, file) = text.rsplit_once('/').unwrap_or(("", text));
    if let Ok(stored) = FileName::parse(Some(dirs), file) {
        let stored = stored.as_str();
        let expected = if dirs.is_empty() {
            file.to_string()
        } else {
            format!("{dirs}/{file}")
        };
        assert_eq!(percent_decode(stored), expected, "stored as {stored:?}");
        assert!(stored.chars().count() <= MAX_CHARS, "{stored:?}");
        let plain = |b: u8| b.is_ascii_alphanumeric() || b"*._-~@+%".contains(&b);
        assert!(stored.bytes().all(plain), "{stored:?}");
        assert!(!dirs.chars().any(char::is_control), "{dirs:?}");
    }
}

/// Project and group references re-serialise to themselves.
fn references(text: &str) {
    if let Some(project) = ProjectRef::parse(text) {
        assert_eq!(ProjectRef::parse(&project.to_string()), Some(project));
    }
    if let Some(group) = GroupRef::parse(text) {
        let again = match &group {
            GroupRef::Id(id) => GroupRef::parse(&id.to_string()),
            GroupRef::Path(path) => GroupRef::parse(path),
        };
        assert_eq!(again, Some(group));
    }
}

/// Group and project paths, and GitLab's path-traversal check.
fn paths(text: &str) {
    if valid_path(text) {
        assert!(text.split('/').all(valid_segment));
        assert!(
            check_file_path(text),
            "a valid path fails the path check: {text:?}"
        );
        if text.contains('/') {
            assert_eq!(
                ProjectRef::parse(text),
                Some(ProjectRef::Path(text.to_string()))
            );
        }
    }
    if check_file_path(text) {
        let once = cgi_unescape(text);
        assert!(!once.starts_with('/') && !once.contains('\n'), "{once:?}");
        for traversal in ["/../", "\\../", "/..\\", "\\..\\"] {
            assert!(!once.contains(traversal), "{once:?}");
        }
        assert!(once != ".." && !once.starts_with("../") && !once.ends_with("/.."));
    }
}
