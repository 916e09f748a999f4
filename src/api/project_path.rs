//! Project and group ids that arrive with their `%2F` decoded (API Gateway's HTTP APIs hand the
//! path over decoded): before routing, such an id is encoded back into one path segment, so the
//! route table matches `/projects/{id}/...` whatever the id looked like on the wire.

use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use tower::ServiceBuilder;
use tower::util::MapRequest;

const PROJECTS: &str = "/api/v4/projects/";
const GROUPS: &str = "/api/v4/groups/";

/// `routes`, seeing every project or group id as one segment.
pub fn reencoded(routes: Router) -> MapRequest<Router, fn(Request) -> Request> {
    ServiceBuilder::new()
        .map_request(reencode as fn(Request) -> Request)
        .service(routes)
}

/// The path a request arrived with, before its id was re-encoded (links echo it).
#[derive(Debug, Clone)]
pub struct ArrivedPath(pub String);

fn reencode(mut request: Request) -> Request {
    if let Some(uri) = reencoded_uri(request.uri()) {
        let arrived = ArrivedPath(request.uri().path().to_string());
        request.extensions_mut().insert(arrived);
        *request.uri_mut() = uri;
    }
    request
}

/// The URI with its project or group id in one segment, when it was spread over several.
pub fn reencoded_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let new_path = if let Some(raw) = path.strip_prefix(PROJECTS) {
        let (project, rest) = split_project(raw)?;
        format!("{PROJECTS}{}/{rest}", project.replace('/', "%2F"))
    } else {
        let raw = path.strip_prefix(GROUPS)?;
        let group = raw.trim_end_matches('/').strip_suffix("/packages")?;
        format!("{GROUPS}{}/packages", group.replace('/', "%2F"))
    };
    if new_path == path {
        return None;
    }
    let with_query = match uri.query() {
        Some(query) => format!("{new_path}?{query}"),
        None => new_path,
    };
    with_query.parse().ok()
}

/// Split `<id>/<rest>`. A numeric or `%2F`-encoded id is one segment; an id whose slashes
/// arrived decoded runs up to the `packages` segment.
fn split_project(raw: &str) -> Option<(&str, &str)> {
    let first = raw.split('/').next()?;
    let encoded = first.contains("%2F") || first.contains("%2f");
    if encoded || first.bytes().all(|b| b.is_ascii_digit()) {
        return Some((first, raw.get(first.len() + 1..)?));
    }
    let at = raw
        .find("/packages/")
        .or_else(|| raw.strip_suffix("/packages").map(str::len))?;
    Some((&raw[..at], &raw[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_in_every_form() {
        let cases = [
            (
                "24/packages/generic/a/1/f",
                Some(("24", "packages/generic/a/1/f")),
            ),
            (
                "g%2Fp/packages/generic/a/1/f",
                Some(("g%2Fp", "packages/generic/a/1/f")),
            ),
            ("g%2fsub%2fp/packages", Some(("g%2fsub%2fp", "packages"))),
            (
                "g/sub/p/packages/generic/a/1/f",
                Some(("g/sub/p", "packages/generic/a/1/f")),
            ),
            ("g/p/other", None),
            ("g/sub/p/packages", Some(("g/sub/p", "packages"))),
            (
                "g/p/packages/7/package_files",
                Some(("g/p", "packages/7/package_files")),
            ),
            ("24", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(split_project(raw), expected, "{raw}");
        }
    }

    #[test]
    fn decoded_ids_are_encoded_again_and_the_query_kept() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        let cases = [
            (
                "/api/v4/projects/g/sub/p/packages/generic/a/1/f?select=package_file",
                Some("/api/v4/projects/g%2Fsub%2Fp/packages/generic/a/1/f?select=package_file"),
            ),
            ("/api/v4/projects/g%2Fp/packages", None),
            ("/api/v4/projects/7/packages/1", None),
            (
                "/api/v4/groups/acme/tools/packages?page=2",
                Some("/api/v4/groups/acme%2Ftools/packages?page=2"),
            ),
            ("/api/v4/groups/acme/packages", None),
            ("/api/graphql", None),
        ];
        for (from, to) in cases {
            assert_eq!(
                reencoded_uri(&uri(from)).map(|u| u.to_string()),
                to.map(str::to_string),
                "{from}"
            );
        }
    }
}
