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

/// The routes under a project or group id: what follows the id, so a decoded id is known by
/// where it ends.
const UNDER_ID: [&str; 6] = [
    "packages",
    "members",
    "deploy_tokens",
    "trust_rules",
    "hooks",
    "audit_events",
];

/// `uri` with its project or group id back in one segment, if it arrived decoded; `None` when
/// nothing changes.
pub fn reencoded_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let (prefix, raw) = match path.strip_prefix(PROJECTS) {
        Some(raw) => (PROJECTS, raw),
        None => (GROUPS, path.strip_prefix(GROUPS)?),
    };
    let (id, rest) = split_id(raw)?;
    let new_path = match rest {
        "" => format!("{prefix}{}", id.replace('/', "%2F")),
        rest => format!("{prefix}{}/{rest}", id.replace('/', "%2F")),
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

/// A project's or group's id and what follows it in `raw` (the path after `/projects/` or
/// `/groups/`): an encoded or numeric first segment is the id; a decoded path ends where a
/// route under it begins (the first one), or is the whole path (`GET /projects/:id`).
fn split_id(raw: &str) -> Option<(&str, &str)> {
    let first = raw.split('/').next()?;
    let encoded = first.contains("%2F") || first.contains("%2f");
    if encoded || first.bytes().all(|b| b.is_ascii_digit()) {
        return Some((first, raw.get(first.len() + 1..).unwrap_or("")));
    }
    let raw = raw.trim_end_matches('/');
    let route_at = UNDER_ID
        .iter()
        .filter_map(|route| {
            let inner = raw.find(&format!("/{route}/"));
            inner.or_else(|| raw.strip_suffix(&format!("/{route}")).map(str::len))
        })
        .min();
    match route_at {
        Some(at) => Some((&raw[..at], &raw[at + 1..])),
        None => Some((raw, "")),
    }
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
            ("g/p/other", Some(("g/p/other", ""))),
            ("g/p/members/5", Some(("g/p", "members/5"))),
            ("g/sub/p/deploy_tokens", Some(("g/sub/p", "deploy_tokens"))),
            ("g/sub/p/hooks/3", Some(("g/sub/p", "hooks/3"))),
            ("g/p/audit_events", Some(("g/p", "audit_events"))),
            ("g/sub/p/packages", Some(("g/sub/p", "packages"))),
            (
                "g/p/packages/7/package_files",
                Some(("g/p", "packages/7/package_files")),
            ),
            ("24", Some(("24", ""))),
        ];
        for (raw, expected) in cases {
            assert_eq!(split_id(raw), expected, "{raw}");
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
            ("/api/v4/projects/g/app", Some("/api/v4/projects/g%2Fapp")),
            ("/api/v4/projects/7", None),
            (
                "/api/v4/groups/a/b/members/all/5",
                Some("/api/v4/groups/a%2Fb/members/all/5"),
            ),
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
