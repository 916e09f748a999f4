//! The GraphQL endpoint, driven whole through the app. The input's first byte chooses how the
//! request is sent (bit 0: with the demo group Owner's token or anonymous; bit 1: `GET` with
//! `query` and `variables` parameters split at the first newline, else `POST` of the rest as
//! the JSON body).
//!
//! Checks: never a 5xx; every answer is JSON, a 200 an object with `data` or `errors`; after a
//! settings mutation the group's stored exception regex is one GitLab accepts (at most 255
//! characters, compiles).

#![no_main]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use depot::domain::ExceptionRegex;
use depot_fuzz::{App, app};
use libfuzzer_sys::fuzz_target;

const READ: &str = r#"{"query": "{ group(fullPath: \"demo\") { packageSettings { genericDuplicateExceptionRegex } } }"}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let app = app();
    let (owner, get) = (mode & 1 == 1, mode & 2 == 2);
    let request = if get {
        let text = String::from_utf8_lossy(rest);
        let (query, variables) = text.split_once('\n').unwrap_or((&text, ""));
        let mut params = form_urlencoded::Serializer::new(String::new());
        params.append_pair("query", query);
        if !variables.is_empty() {
            params.append_pair("variables", variables);
        }
        let uri = format!("/api/graphql?{}", params.finish());
        builder(app, owner, Method::GET, &uri).body(Body::empty())
    } else {
        builder(app, owner, Method::POST, "/api/graphql")
            .header("Content-Type", "application/json")
            .body(Body::from(rest.to_vec()))
    };
    let answer = app.send(request.expect("a request"));
    answer.check(&Method::POST);
    let json = answer.json();
    if answer.status == StatusCode::OK {
        let object = json.as_object().expect("an object");
        assert!(
            object.contains_key("data") || object.contains_key("errors"),
            "{json}"
        );
    }
    if owner && rest.windows(8).any(|w| w == b"mutation") {
        stored_regex_is_valid(app);
    }
});

fn builder(app: &App, owner: bool, method: Method, uri: &str) -> axum::http::request::Builder {
    if owner {
        app.authorized(method, uri)
    } else {
        Request::builder().method(method).uri(uri)
    }
}

fn stored_regex_is_valid(app: &App) {
    let request = builder(app, true, Method::POST, "/api/graphql")
        .header("Content-Type", "application/json")
        .body(Body::from(READ))
        .expect("a request");
    let json = app.send(request).json();
    let settings = &json["data"]["group"]["packageSettings"];
    let regex = settings["genericDuplicateExceptionRegex"]
        .as_str()
        .unwrap_or_else(|| panic!("no settings: {json}"));
    assert!(ExceptionRegex::parse(regex).is_ok(), "stored {regex:?}");
}
