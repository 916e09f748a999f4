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
    // A session ends with the token it was signed in with.
    let session = sign_in(&app, &api).await.unwrap();
    let cookie = format!("depot_session={session}");
    assert!(
        app.get("/", &[("Cookie", &cookie)])
            .await
            .text()
            .contains("Sign out")
    );
    let revoke = "/api/v4/personal_access_tokens/self";
    let gone = app
        .send(
            "DELETE",
            revoke,
            &[("PRIVATE-TOKEN", &api)],
            Vec::<u8>::new(),
        )
        .await;
    assert_eq!(gone.status.as_u16(), 204);
    assert!(
        !app.get("/", &[("Cookie", &cookie)])
            .await
            .text()
            .contains("Sign out")
    );
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
        token_id: 1,
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

/// The form token of a page (every form of a session carries the same).
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form token")
        .to_string()
}

/// `who` (a member of `team` with `role`) signed in: their session cookie header value.
async fn signed_in_as(app: &TestApp, who: &str, role: Role) -> String {
    app.user(who).await;
    app.member(who, "team", role).await;
    let token = app.pat(who, &[Scope::Api], None).await.1;
    format!("depot_session={}", sign_in(app, &token).await.unwrap())
}

async fn post_form(app: &TestApp, cookie: &str, uri: &str, body: String) -> crate::support::Answer {
    let headers = [
        ("Cookie", cookie),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    app.send("POST", uri, &headers, body).await
}

async fn packages_are_browsed_downloaded_and_deleted(backend: Backend) {
    let (app, api, _) = setup(backend).await;
    let file = "/api/v4/projects/team%2Fsecret/packages/generic/tool/1.0/bin/tool.txt";
    let put = app
        .put(file, &[("PRIVATE-TOKEN", &api)], b"tool bytes")
        .await;
    assert_eq!(put.status.as_u16(), 201);
    let hidden =
        "/api/v4/projects/team%2Fsecret/packages/generic/secret-tool/1.0/x.txt?status=hidden";
    assert_eq!(
        app.put(hidden, &[("PRIVATE-TOKEN", &api)], b"x")
            .await
            .status
            .as_u16(),
        201
    );
    let guest = signed_in_as(&app, "guest", Role::Guest).await;
    let boss = signed_in_as(&app, "boss", Role::Maintainer).await;
    let list = app
        .get("/team/secret/-/packages", &[("Cookie", &guest)])
        .await;
    assert_eq!(list.status.as_u16(), 200);
    let text = list.text();
    assert!(
        text.contains(">tool<") && text.contains("10 bytes"),
        "{text}"
    );
    assert!(!text.contains("secret-tool") && !text.contains("value=\"hidden\""));
    let hidden_list = app
        .get(
            "/team/secret/-/packages?status=hidden",
            &[("Cookie", &boss)],
        )
        .await;
    assert!(hidden_list.text().contains("secret-tool"));
    let anonymous = app.get("/team/secret/-/packages", &[]).await;
    assert_eq!(anonymous.status.as_u16(), 404);
    let id = text
        .split("/team/secret/-/packages/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let package = format!("/team/secret/-/packages/{id}");
    let page = app.get(&package, &[("Cookie", &guest)]).await.text();
    assert!(page.contains("bin/tool.txt") && !page.contains("Delete package"));
    assert!(page.contains(&crate::support::sha256_hex(b"tool bytes")));
    assert!(
        page.contains("/packages/generic/tool/1.0/bin/tool.txt"),
        "the API URL"
    );
    let link = page
        .split("href=\"")
        .find(|s| s.contains("/download"))
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let got = app.get(link, &[("Cookie", &guest)]).await;
    assert_eq!(got.body, b"tool bytes");
    // A guest may not delete, whatever the form says.
    let csrf = csrf_of(&page);
    let delete = format!("{package}/delete");
    let refused = post_form(&app, &guest, &delete, format!("csrf={csrf}")).await;
    assert_eq!(refused.status.as_u16(), 403);
    let page = app.get(&package, &[("Cookie", &boss)]).await.text();
    assert!(page.contains("Delete package"));
    let forged = post_form(&app, &boss, &delete, "csrf=forged".into()).await;
    assert_eq!(forged.status.as_u16(), 403);
    let done = post_form(&app, &boss, &delete, format!("csrf={}", csrf_of(&page))).await;
    assert_eq!(done.status.as_u16(), 303);
    assert_eq!(
        app.get(file, &[("PRIVATE-TOKEN", &api)])
            .await
            .status
            .as_u16(),
        404
    );
    let list = app
        .get("/team/secret/-/packages", &[("Cookie", &boss)])
        .await
        .text();
    assert!(list.contains("No packages."));
}

async fn owners_set_the_duplicate_rule(backend: Backend) {
    let (app, api, _) = setup(backend).await;
    let owner = signed_in_as(&app, "owner", Role::Owner).await;
    let settings = "/groups/team/-/settings/packages_and_registries";
    let dev = format!("depot_session={}", sign_in(&app, &api).await.unwrap());
    assert_eq!(
        app.get(settings, &[("Cookie", &dev)]).await.status.as_u16(),
        404
    );
    let page = app.get(settings, &[("Cookie", &owner)]).await.text();
    let csrf = csrf_of(&page);
    let bad = post_form(
        &app,
        &owner,
        settings,
        format!("csrf={csrf}&reject_duplicates=on&exception_regex=%5B"),
    )
    .await;
    assert_eq!(bad.status.as_u16(), 400);
    assert!(
        bad.text().contains("is an invalid regexp"),
        "{}",
        bad.text()
    );
    let file = "/api/v4/projects/team%2Fsecret/packages/generic/tool/1.0/a.txt";
    assert_eq!(
        app.put(file, &[("PRIVATE-TOKEN", &api)], b"1")
            .await
            .status
            .as_u16(),
        201
    );
    // Nothing was saved: duplicates still pass.
    assert_eq!(
        app.put(file, &[("PRIVATE-TOKEN", &api)], b"2")
            .await
            .status
            .as_u16(),
        201
    );
    let saved = post_form(
        &app,
        &owner,
        settings,
        format!("csrf={csrf}&reject_duplicates=on&exception_regex="),
    )
    .await;
    assert_eq!(saved.status.as_u16(), 200);
    assert!(saved.text().contains("Settings saved."));
    let refused = app.put(file, &[("PRIVATE-TOKEN", &api)], b"3").await;
    refused.expect(
        400,
        serde_json::json!({"message": "400 Bad request - Duplicate package is not allowed"}),
    );
}

async fn tokens_are_made_shown_once_and_revoked(backend: Backend) {
    let (app, _, _) = setup(backend).await;
    let page_uri = "/-/user_settings/personal_access_tokens";
    assert_eq!(
        app.get(page_uri, &[]).await.status.as_u16(),
        303,
        "to the sign-in page"
    );
    let me = signed_in_as(&app, "maker", Role::Maintainer).await;
    let page = app.get(page_uri, &[("Cookie", &me)]).await.text();
    let csrf = csrf_of(&page);
    let forged = post_form(&app, &me, page_uri, "csrf=x&name=ci&scopes=api".into()).await;
    assert_eq!(forged.status.as_u16(), 403);
    // A form the token cannot be made from: the page again, saying why.
    let no_scope = post_form(&app, &me, page_uri, format!("csrf={csrf}&name=ci")).await;
    assert_eq!(no_scope.status.as_u16(), 400);
    assert!(
        no_scope
            .text()
            .contains("scopes does not have a valid value")
    );
    let form = format!("csrf={csrf}&name=ci&scopes=api&scopes=read_api");
    let made = post_form(&app, &me, page_uri, form).await;
    assert_eq!(made.status.as_u16(), 201);
    let secret = made
        .text()
        .split("id=\"new-token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new secret, shown once")
        .to_string();
    assert!(secret.starts_with("dpat-"));
    let me_api = app.get("/api/v4/user", &[("PRIVATE-TOKEN", &secret)]).await;
    assert_eq!(me_api.json()["username"], "maker");
    let again = app.get(page_uri, &[("Cookie", &me)]).await.text();
    assert!(
        !again.contains(&secret),
        "a secret is never shown after its creation page"
    );
    assert!(again.contains(">api,read_api<"));
    let row = again
        .split("<tr>")
        .find(|row| row.contains("<td>ci</td>"))
        .expect("the new token's row");
    let revoke = row
        .split("action=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("its revoke form")
        .to_string();
    let done = post_form(&app, &me, &revoke, format!("csrf={csrf}")).await;
    assert_eq!(done.status.as_u16(), 303);
    let refused = app.get("/api/v4/user", &[("PRIVATE-TOKEN", &secret)]).await;
    assert_eq!(refused.status.as_u16(), 401, "revoked at once");
    let page = app.get(page_uri, &[("Cookie", &me)]).await.text();
    assert_eq!(page.matches(">revoked<").count(), 1);

    // Deploy tokens: maintainers make them for their project; a guest may not.
    let deploy = "/team/secret/-/settings/repository";
    let guest = signed_in_as(&app, "viewer", Role::Guest).await;
    assert_eq!(
        app.get(deploy, &[("Cookie", &guest)]).await.status.as_u16(),
        403
    );
    let page = app.get(deploy, &[("Cookie", &me)]).await.text();
    let form = format!(
        "csrf={}&name=ci&scopes=read_package_registry",
        csrf_of(&page)
    );
    let made = post_form(&app, &me, deploy, form).await;
    assert_eq!(made.status.as_u16(), 201);
    assert!(made.text().contains("ddt-"));
}

/// Behind a base path (an API Gateway stage in the public URL): every link and the cookie's
/// path start with it, and the cookie is `Secure` (the public URL is https).
async fn links_follow_the_public_urls_base_path(backend: Backend) {
    let (mut app, api, _) = setup(backend).await;
    app.reconfigure(|r| r.with_public_url(Some("https://registry.example/prod".into())));
    let home = app.get("/", &[]).await.text();
    assert!(
        home.contains("href=\"/prod/-/sign_in\"") && home.contains("href=\"/prod/-/assets/app.")
    );
    let form = app.get("/-/sign_in", &[]).await;
    let csrf = value_of(&set_cookie(&form, "depot_sign_in").unwrap());
    let cookie = format!("depot_sign_in={csrf}");
    let headers = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let answer = app
        .send(
            "POST",
            "/-/sign_in",
            &headers,
            format!("token={api}&csrf={csrf}"),
        )
        .await;
    assert_eq!(answer.header("location"), Some("/prod/"));
    let session = set_cookie(&answer, "depot_session").unwrap();
    assert!(
        session.contains("Path=/prod/") && session.contains("; Secure"),
        "{session}"
    );
}

/// What the reviews of the UI asked for: forms are bounded, snippets cannot be made code, an
/// older duplicate is not served as the newest, groups cannot take the UI's own names.
async fn hostile_input_is_contained(backend: Backend) {
    let (app, api, _) = setup(backend).await;
    // A body far larger than any form: refused, never held.
    let huge = vec![b'a'; 1 << 20];
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let answer = app.send("POST", "/-/sign_in", &headers, huge.clone()).await;
    assert_eq!(answer.status.as_u16(), 413);
    let answer = app
        .send("POST", "/team/secret/-/packages/1/delete", &headers, huge)
        .await;
    assert!(answer.status.is_client_error());
    // A file whose directories hold quotes: the python-gitlab snippet keeps them in a string.
    let file = "/api/v4/projects/team%2Fsecret/packages/generic/tool/1.0/odd.txt?path=x%22%29%3Bimport%20os";
    let put = app.put(file, &[("PRIVATE-TOKEN", &api)], b"1").await;
    assert_eq!(put.status.as_u16(), 201, "{}", put.text());
    let cookie = format!("depot_session={}", sign_in(&app, &api).await.unwrap());
    let list = app
        .get("/team/secret/-/packages", &[("Cookie", &cookie)])
        .await
        .text();
    let id = list
        .split("/team/secret/-/packages/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let page = app
        .get(
            &format!("/team/secret/-/packages/{id}"),
            &[("Cookie", &cookie)],
        )
        .await
        .text();
    assert!(
        page.contains(r#"file_name=&quot;x\&quot;);import os/odd.txt&quot;)"#),
        "{page}"
    );
    // Groups cannot take the UI's or the API's names.
    for reserved in ["api", "groups", "-"] {
        assert!(
            app.admin.create_group(reserved).await.is_err(),
            "{reserved}"
        );
    }
}

on_every_backend!(
    pages_carry_a_strict_policy_and_show_what_the_viewer_may_see,
    signing_in_checks_the_form_and_the_token,
    signing_out_ends_the_session_everywhere,
    an_expired_session_is_anonymous,
    errors_and_assets,
    packages_are_browsed_downloaded_and_deleted,
    owners_set_the_duplicate_rule,
    tokens_are_made_shown_once_and_revoked,
    links_follow_the_public_urls_base_path,
    hostile_input_is_contained,
);
