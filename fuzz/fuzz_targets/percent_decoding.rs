//! Percent-decoding at the edge: a request target (`/path?query`) as a client may send it,
//! through the project/group id re-encoding that runs before routing (an id whose `%2F` arrived
//! decoded is put back into one segment), the query's decoding, and then the whole app (axum's
//! own path decoding, every route's parameters) with the owner's token.
//!
//! Checks: re-encoding keeps the query, is idempotent and changes nothing a decoder sees; the
//! query pairs survive a re-encoding; and the app never answers a 5xx, always JSON when it
//! refuses.

#![no_main]

use axum::body::Body;
use axum::http::{Method, Uri};
use depot::api::edge::reencoded_uri;
use depot_fuzz::{app, percent_decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = Uri::try_from(data) else {
        return;
    };
    if !uri.path().starts_with('/') || uri.authority().is_some() {
        return;
    }
    reencoding(&uri);
    query(uri.query().unwrap_or_default());
    for method in [Method::GET, Method::HEAD] {
        let app = app();
        let request = app
            .authorized(method.clone(), &uri.to_string())
            .body(Body::empty())
            .expect("a request");
        app.send(request).check(&method);
    }
});

fn reencoding(uri: &Uri) {
    let Some(again) = reencoded_uri(uri) else {
        return;
    };
    assert_eq!(again.query(), uri.query(), "{uri} became {again}");
    assert!(
        reencoded_uri(&again).is_none(),
        "re-encoding {uri} is not idempotent: {again}"
    );
    let before = percent_decode(uri.path());
    let after = percent_decode(again.path());
    assert_eq!(
        before.trim_end_matches('/'),
        after.trim_end_matches('/'),
        "{uri} became {again}"
    );
    let prefix = |p: &str| p.split('/').take(4).collect::<Vec<_>>().join("/");
    assert_eq!(prefix(uri.path()), prefix(again.path()));
}

fn query(raw: &str) {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let again: Vec<(String, String)> = form_urlencoded::parse(encoded.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(pairs, again, "{raw:?} re-encoded as {encoded:?}");
}
