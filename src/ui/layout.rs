//! The page every UI view is drawn in (header, navigation, main), and the error pages. All
//! text goes through maud, which escapes it; no inline script or style (the CSP forbids them).

use super::assets::{ICON_SVG, SCRIPT, STYLESHEET};
use crate::registry::SignedIn;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// What every page knows: the base path links start with, and who is looking.
pub struct Frame<'a> {
    pub base: &'a str,
    pub viewer: Option<&'a SignedIn>,
}

impl Frame<'_> {
    /// The form token a page's forms carry (none when nobody is signed in).
    pub fn csrf(&self) -> &str {
        self.viewer.map(|v| v.csrf.as_str()).unwrap_or_default()
    }
}

/// A whole page titled `title` around `body`.
pub fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    let base = frame.base;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · depot" }
                link rel="icon" type="image/svg+xml" href=(format!("{base}/-/assets/{}", ICON_SVG.name));
                link rel="stylesheet" href=(format!("{base}/-/assets/{}", STYLESHEET.name));
                script src=(format!("{base}/-/assets/{}", SCRIPT.name)) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    a.brand href=(format!("{base}/")) { "depot" }
                    nav aria-label="Main" {
                        @if let Some(viewer) = frame.viewer {
                            a href=(format!("{base}/-/user_settings/personal_access_tokens")) { "Tokens" }
                            span.muted { (viewer.user.username) }
                            form.inline method="post" action=(format!("{base}/-/sign_out")) {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button.secondary type="submit" { "Sign out" }
                            }
                        } @else {
                            a href=(format!("{base}/-/sign_in")) { "Sign in" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// An HTML answer with `status`.
pub fn answer(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// An error page (404, 403, 500, ...) in the same layout; it says what happened, never why
/// inside depot.
pub fn error_page(frame: &Frame<'_>, status: StatusCode) -> Response {
    let (title, text) = match status.as_u16() {
        401 | 403 => (
            "Not allowed",
            "You are not allowed to see this page. Signing in may help.",
        ),
        404 => (
            "Not found",
            "There is no such page, or you are not allowed to see it.",
        ),
        503 => (
            "Unavailable",
            "The registry is busy. Try again in a moment.",
        ),
        _ => (
            "Something went wrong",
            "The request could not be completed.",
        ),
    };
    let body = html! {
        h1 { (status.as_u16()) " · " (title) }
        p { (text) }
        p { a href=(format!("{}/", frame.base)) { "Back to the start page" } }
    };
    answer(status, page(frame, title, body))
}
