//! The UI's static assets, compiled into the binary: each served under a name carrying its
//! content hash, so it may be cached for a year and a new build is never served stale.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");
const ICON: &str = include_str!("assets/icon.svg");

/// One asset: its hashed file name, content type and bytes.
pub struct Asset {
    pub name: String,
    content_type: &'static str,
    body: &'static str,
}

fn asset(stem: &str, ext: &str, content_type: &'static str, body: &'static str) -> Asset {
    let hash = hex::encode(&Sha256::digest(body.as_bytes())[..8]);
    Asset {
        name: format!("{stem}.{hash}.{ext}"),
        content_type,
        body,
    }
}

pub static STYLESHEET: LazyLock<Asset> =
    LazyLock::new(|| asset("app", "css", "text/css; charset=utf-8", CSS));
pub static SCRIPT: LazyLock<Asset> =
    LazyLock::new(|| asset("app", "js", "text/javascript; charset=utf-8", JS));
pub static ICON_SVG: LazyLock<Asset> =
    LazyLock::new(|| asset("icon", "svg", "image/svg+xml", ICON));

/// Bytes of every asset (the UI's whole weight in CSS and JavaScript).
pub fn total_bytes() -> usize {
    CSS.len() + JS.len() + ICON.len()
}

/// `GET /-/assets/:name`.
pub async fn serve(Path(name): Path<String>) -> Response {
    for asset in [&*STYLESHEET, &*SCRIPT, &*ICON_SVG] {
        if asset.name == name {
            let headers = [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ];
            return (headers, asset.body).into_response();
        }
    }
    (StatusCode::NOT_FOUND, "not found").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_named_by_their_content_and_small() {
        assert!(STYLESHEET.name.starts_with("app.") && STYLESHEET.name.ends_with(".css"));
        assert_ne!(STYLESHEET.name, SCRIPT.name);
        assert!(total_bytes() < 50 * 1024, "{} bytes", total_bytes());
    }
}
