//! The web UI at the HTTP level, on both store pairs: security headers on every page, signing
//! in with a personal token (form token checked, bad tokens refused), the session cookie, what
//! a signed-in viewer sees that an anonymous one does not, signing out (form token checked, the
//! session gone at once), an expired session, error pages, and the assets.

use crate::support::{Backend, TestApp};
use depot::domain::{Role, Scope, Timestamp, WebSession};

/// A group with a private and a public project, a developer of both, their tokens.
async fn setup(backend: Backend) -> (TestApp, String, String) {
    let app = TestApp::start(backend).await;
    app.group("team").await;
    app.project("team/secret", false).await;
    app.project("team/open", true).await;
    app.user("dev").await;
    app.member("dev", "team", Role::Developer).await;
    let api = app.pat("dev", &[Scope::Api], None).await.1;
    let read = app.pat("dev", &[Scope::ReadApi], None).await.1;
    (app, api, read)
}

/// The value of the `Set-Cookie` named `name` in an answer.
fn set_cookie(answer: &crate::support::Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn value_of(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// Sign in with `token`: the session cookie's value, or the status of the refusal.
async fn sign_in(app: &TestApp, token: &str) -> Result<String, u16> {
    let form = app.get("/-/sign_in", &[]).await;
    let csrf = value_of(&set_cookie(&form, "depot_sign_in").expect("a form token cookie"));
    let cookie = format!("depot_sign_in={csrf}");
    let body = format!("token={token}&csrf={csrf}");
    let headers = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let answer = app.send("POST", "/-/sign_in", &headers, body).await;
    match answer.status.as_u16() {
        303 => {
            let session = set_cookie(&answer, "depot_session").expect("a session cookie");
            for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
                assert!(session.contains(attribute), "{session}");
            }
            Ok(value_of(&session))
        }
        status => Err(status),
    }
}

async fn pages_carry_a_strict_policy_and_show_what_the_viewer_may_see(backend: Backend) {
    let (app, api, _) = setup(backend).await;
    let home = app.get("/", &[]).await;
    assert_eq!(home.status.as_u16(), 200);
    assert!(
        home.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = home.header("content-security-policy").unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(home.header("x-frame-options"), Some("DENY"));
    let text = home.text();
    assert!(
        text.contains("team/open") && !text.contains("team/secret"),
        "{text}"
    );
    assert!(!text.contains("<script>"), "no inline script");
    let session = sign_in(&app, &api).await.unwrap();
    let cookie = format!("depot_session={session}");
    let home = app.get("/", &[("Cookie", &cookie)]).await;
    let text = home.text();
    assert!(
        text.contains("team/secret") && text.contains(">dev<"),
        "{text}"
    );
    // Escaped output: a search term comes back as text, never as markup.
    let search = app
        .get("/?search=%3Cscript%3Ex", &[("Cookie", &cookie)])
        .await;
    assert!(search.text().contains("&lt;script&gt;x") && !search.text().contains("<script>x"));
}

async fn signing_in_checks_the_form_and_the_token(backend: Backend) {
    let (app, api, read) = setup(backend).await;
    assert_eq!(sign_in(&app, "dpat-unknown").await, Err(401));
    assert_eq!(
        sign_in(&app, &read).await,
        Err(401),
        "read_api cannot sign in"
    );
    // A form token that is not the cookie's: refused, and no session made.
    let headers = [
        ("Cookie", "depot_sign_in=aaaa"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let body = format!("token={api}&csrf=bbbb");
    let refused = app.send("POST", "/-/sign_in", &headers, body).await;
    assert_eq!(refused.status.as_u16(), 403);
    assert!(set_cookie(&refused, "depot_session").is_none());
    assert!(sign_in(&app, &api).await.is_ok());
}

async fn signing_out_ends_the_session_everywhere(backend: Backend) {
    let (app, api, _) = setup(backend).await;
    let session = sign_in(&app, &api).await.unwrap();
    let cookie = format!("depot_session={session}");
    let signed_in = |text: String| text.contains("Sign out");
    assert!(signed_in(app.get("/", &[("Cookie", &cookie)]).await.text()));
    let form = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    // Without the session's form token: refused, still signed in.
    let refused = app.send("POST", "/-/sign_out", &form, "csrf=nope").await;
    assert_eq!(refused.status.as_u16(), 403);
    assert!(signed_in(app.get("/", &[("Cookie", &cookie)]).await.text()));
    let page = app.get("/", &[("Cookie", &cookie)]).await.text();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-out form's token")
        .to_string();
    let out = app
        .send("POST", "/-/sign_out", &form, format!("csrf={csrf}"))
        .await;
    assert_eq!(out.status.as_u16(), 303);
    assert!(
        set_cookie(&out, "depot_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie, replayed: anonymous.
    assert!(!signed_in(
        app.get("/", &[("Cookie", &cookie)]).await.text()
    ));
}

async fn an_expired_session_is_anonymous(backend: Backend) {
    let (app, _, _) = setup(backend).await;
    let dev = app.meta().user_by_name("dev").await.unwrap().unwrap();
    let now = Timestamp::now();
    let session = WebSession {
        sha256: depot::auth::hash_secret("expired-session"),
        user_id: dev.id,
        csrf: "x".into(),
        created_at: now.plus_seconds(-7200),
        expires_at: now.plus_seconds(-1),
    };
    app.meta().create_web_session(&session).await.unwrap();
    let page = app
        .get("/", &[("Cookie", "depot_session=expired-session")])
        .await;
    assert!(page.text().contains("Sign in") && !page.text().contains("team/secret"));
}

async fn errors_and_assets(backend: Backend) {
    let (app, _, _) = setup(backend).await;
    let missing = app.get("/no/such/page", &[]).await;
    assert_eq!(missing.status.as_u16(), 404);
    assert!(missing.text().contains("404 · Not found"));
    assert!(missing.header("content-security-policy").is_some());
    // The API keeps GitLab's JSON 404.
    app.get("/api/v4/nothing", &[])
        .await
        .expect(404, serde_json::json!({"error": "404 Not Found"}));
    let home = app.get("/", &[]).await.text();
    let css = home
        .split("href=\"/-/assets/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let asset = app.get(&format!("/-/assets/{css}"), &[]).await;
    assert_eq!(asset.status.as_u16(), 200);
    assert_eq!(
        asset.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(depot::ui::asset_bytes() < 50 * 1024);
}

on_every_backend!(
    pages_carry_a_strict_policy_and_show_what_the_viewer_may_see,
    signing_in_checks_the_form_and_the_token,
    signing_out_ends_the_session_everywhere,
    an_expired_session_is_anonymous,
    errors_and_assets,
);
