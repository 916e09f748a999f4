//! Trusted publishing through the HTTP API, on both store pairs: a CI job's OIDC ID token (from
//! a loopback issuer, GitLab- or GitHub-shaped) publishes where a trust rule accepts it, in every
//! form a job token is sent; every condition, the audience, the times and the signature refuse
//! as they should, and the issuer's keys are fetched once for many requests.

use crate::support::oidc_issuer::{KeyChoice, OidcIssuer, Sig};
use crate::support::{Backend, TestApp, World};
use depot::admin::TrustSpec;
use depot::auth::oidc::{OidcOptions, OidcVerifier};
use depot::domain::{ClaimCondition, Role, Scope};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const AUD: &str = "https://depot.example";
const FILE: &str = "/api/v4/projects/g%2Fapp/packages/generic/tool/1.0.0/tool.bin";

/// Group `g` with private projects `g/app` and `g/other`, an issuer, and a rule on `g/app`
/// for GitLab tokens of project `grp/app` on protected tags `v*`.
async fn setup(backend: Backend) -> (TestApp, OidcIssuer) {
    let app = TestApp::start(backend).await;
    app.group("g").await;
    app.project("g/app", false).await;
    app.project("g/other", false).await;
    let idp = OidcIssuer::start().await;
    let conditions = [
        "project_path=grp/app",
        "ref_type=tag",
        "ref=v*",
        "ref_protected=true",
    ];
    rule(&app, "g/app", &idp.issuer(), &conditions, Role::Developer).await;
    (app, idp)
}

async fn rule(app: &TestApp, path: &str, issuer: &str, conditions: &[&str], role: Role) {
    let spec = TrustSpec {
        path: path.into(),
        issuer: issuer.into(),
        audience: AUD.into(),
        conditions: conditions
            .iter()
            .map(|c| ClaimCondition::parse(c).unwrap())
            .collect(),
        role,
        scopes: vec![Scope::Api],
    };
    app.admin.add_trust_rule(spec).await.unwrap();
}

/// GitLab-shaped claims of a release job (tag v1.2.0, protected) with `overrides`.
fn release(idp: &OidcIssuer, overrides: Value) -> Value {
    let tag = json!({"ref": "v1.2.0", "ref_type": "tag", "ref_path": "refs/tags/v1.2.0"});
    let mut claims = idp.gitlab_claims(AUD, tag);
    for (k, v) in overrides.as_object().unwrap() {
        match v {
            Value::Null => claims.as_object_mut().unwrap().remove(k),
            v => claims.as_object_mut().unwrap().insert(k.clone(), v.clone()),
        };
    }
    claims
}

async fn publish(app: &TestApp, token: &str, uri: &str) -> u16 {
    let answer = app
        .put(uri, &[("JOB-TOKEN", token)], b"release bytes")
        .await;
    answer.status.as_u16()
}

async fn a_release_job_publishes_in_every_job_token_form(backend: Backend) {
    let (app, idp) = setup(backend).await;
    let token = idp.mint(release(&idp, json!({})));
    assert_eq!(publish(&app, &token, FILE).await, 201);
    let bearer = format!("Bearer {token}");
    let got = app.get(FILE, &[("Authorization", &bearer)]).await;
    assert_eq!(
        (got.status.as_u16(), got.body.as_slice()),
        (200, &b"release bytes"[..])
    );
    let query = format!("{FILE}?job_token={token}");
    assert_eq!(app.get(&query, &[]).await.status.as_u16(), 200);
    // An ES256 token of the same issuer is as good.
    let ec = idp.mint_with(KeyChoice::Ec, release(&idp, json!({})));
    let second = FILE.replace("tool.bin", "tool2.bin");
    assert_eq!(publish(&app, &ec, &second).await, 201);
    // A developer's rule may publish, not delete; and only where the rule reaches.
    let other = FILE.replace("g%2Fapp", "g%2Fother");
    assert_eq!(publish(&app, &token, &other).await, 404);
    let packages = app
        .get(
            "/api/v4/projects/g%2Fapp/packages",
            &[("JOB-TOKEN", &token)],
        )
        .await;
    let id = packages.json()[0]["id"].as_i64().unwrap();
    let delete = format!("/api/v4/projects/g%2Fapp/packages/{id}");
    let answer = app
        .send(
            "DELETE",
            &delete,
            &[("JOB-TOKEN", &token)],
            Vec::<u8>::new(),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 403);
    // Many requests, one discovery and one JWKS fetch.
    for _ in 0..20 {
        assert_eq!(
            app.get(FILE, &[("JOB-TOKEN", &token)])
                .await
                .status
                .as_u16(),
            200
        );
    }
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
}

async fn every_condition_must_hold(backend: Backend) {
    let (app, idp) = setup(backend).await;
    for failing in [
        json!({"project_path": "grp/app2"}),
        json!({"project_path": null}),
        json!({"ref_type": "branch"}),
        json!({"ref": "main"}),
        json!({"ref": "release-v1"}),
        json!({"ref_protected": "false"}),
        json!({"ref_protected": null}),
    ] {
        let token = idp.mint(release(&idp, failing.clone()));
        assert_eq!(publish(&app, &token, FILE).await, 403, "{failing}");
    }
    let token = idp.mint(release(&idp, json!({"ref": "v2.0.0-rc1"})));
    assert_eq!(publish(&app, &token, FILE).await, 201);
}

async fn bad_tokens_are_unauthorized(backend: Backend) {
    let (app, idp) = setup(backend).await;
    let now = crate::support::oidc_issuer::now();
    let good = release(&idp, json!({}));
    let mut cases: Vec<(&str, String)> = vec![
        (
            "wrong audience",
            idp.mint(release(&idp, json!({"aud": "https://elsewhere"}))),
        ),
        (
            "expired",
            idp.mint(release(
                &idp,
                json!({"exp": now - 600, "iat": now - 900, "nbf": now - 900}),
            )),
        ),
        (
            "not yet valid",
            idp.mint(release(&idp, json!({"nbf": now + 600}))),
        ),
        (
            "unknown kid",
            idp.mint_with(KeyChoice::Unpublished, good.clone()),
        ),
        (
            "alg none",
            idp.mint_raw(
                json!({"alg": "none", "typ": "JWT"}),
                good.clone(),
                Sig::Empty,
            ),
        ),
        (
            "HS256 with the public key",
            idp.mint_raw(
                json!({"alg": "HS256", "typ": "JWT", "kid": idp.rsa_kid()}),
                good.clone(),
                Sig::Hs256(idp.rsa_public_pem().into_bytes()),
            ),
        ),
        ("tampered", {
            let t = idp.mint(good.clone());
            let mut parts: Vec<String> = t.split('.').map(String::from).collect();
            let forged = release(&idp, json!({"project_path": "grp/app", "ref": "v9"}));
            parts[1] = base64_url(&forged);
            parts.join(".")
        }),
    ];
    // Another issuer's token with the very same claims, `iss` included.
    let stranger = OidcIssuer::start().await;
    cases.push(("another issuer's key", stranger.mint(good.clone())));
    for (what, token) in cases {
        assert_eq!(publish(&app, &token, FILE).await, 401, "{what}");
    }
    // A token of an issuer no rule names is refused without fetching anything from it.
    let claims = stranger.gitlab_claims(AUD, json!({}));
    assert_eq!(publish(&app, &stranger.mint(claims), FILE).await, 401);
    assert_eq!(stranger.discovery_fetches() + stranger.jwks_fetches(), 0);
}

fn base64_url(claims: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
}

async fn github_tokens_and_group_rules(backend: Backend) {
    let (app, idp) = setup(backend).await;
    let conditions = [
        "repository=org/repo",
        "environment=production",
        "ref=refs/tags/*",
    ];
    rule(&app, "g", &idp.issuer(), &conditions, Role::Maintainer).await;
    let tag = json!({"ref": "refs/tags/v3", "ref_type": "tag"});
    let token = idp.mint(idp.github_claims(AUD, tag.clone()));
    // The group's rule covers both projects, as a maintainer (may delete).
    assert_eq!(publish(&app, &token, FILE).await, 201);
    let other = FILE.replace("g%2Fapp", "g%2Fother");
    assert_eq!(publish(&app, &token, &other).await, 201);
    let mut branch = idp.github_claims(AUD, json!({}));
    branch["environment"] = json!("staging");
    assert_eq!(publish(&app, &idp.mint(branch), &other).await, 403);
}

async fn keys_rotate(backend: Backend) {
    let (mut app, idp) = setup(backend).await;
    // Unknown kids refetch the keys at most once per second here (10 s by default): long
    // enough that the second publish lands inside it on a loaded machine.
    let options = OidcOptions {
        refetch_min: Duration::from_millis(1000),
        ..OidcOptions::default()
    };
    app.reconfigure(|r| r.with_oidc(Arc::new(OidcVerifier::new(options))));
    let before = idp.mint(release(&idp, json!({})));
    assert_eq!(publish(&app, &before, FILE).await, 201);
    idp.rotate();
    let after = idp.mint(release(&idp, json!({})));
    let second = FILE.replace("tool.bin", "after.bin");
    // Right after the first fetch, an unknown kid does not fetch again (a burst of forged
    // kids cannot make depot hammer the issuer) ...
    assert_eq!(publish(&app, &after, &second).await, 401);
    assert_eq!(idp.jwks_fetches(), 1);
    // ... once the interval has passed, it does, once, and finds the new key.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(publish(&app, &after, &second).await, 201);
    let third = FILE.replace("tool.bin", "third.bin");
    assert_eq!(publish(&app, &after, &third).await, 201);
    assert_eq!(idp.jwks_fetches(), 2);
    let retired = idp.mint_with(KeyChoice::Retired, release(&idp, json!({})));
    assert_eq!(publish(&app, &retired, &second).await, 401);
}

/// Open a session for `file` with `token` as a job token and send `data`; its id.
async fn handoff(w: &World, token: &str, file: &str, data: &[u8]) -> String {
    let url = format!("{}/uploads", w.url(w.private_id, file));
    let headers = [("JOB-TOKEN", token), ("Content-Type", "application/json")];
    let declared = json!({"size": data.len()}).to_string();
    let opened = w.app.send("POST", &url, &headers, declared).await;
    assert_eq!(opened.status, 201, "{}", opened.text());
    let body = opened.json();
    let sent = crate::http_uploads::send_bytes(w, &body["upload"], data).await;
    assert_eq!(sent, 200);
    body["id"].as_str().unwrap().to_string()
}

/// `complete` of session `id` of `file`, with `token` as a job token.
async fn complete(w: &World, file: &str, id: &str, token: &str) -> crate::support::Answer {
    let url = format!("{}/uploads/{id}/complete", w.url(w.private_id, file));
    let headers = [("JOB-TOKEN", token)];
    w.app.send("POST", &url, &headers, Vec::<u8>::new()).await
}

/// A CI job's ID token opens an upload session, sends the bytes, and completes it; the
/// commit acts for the job again (the finalizer's too, with no request): another job cannot
/// touch the session, and once the rule that accepted the job is removed, its session is
/// refused at commit.
async fn a_job_hands_off_a_large_file_with_its_id_token(backend: Backend) {
    use crate::http_uploads::object_created;
    let mut w = World::new(backend).await;
    // `complete` leaves commits to the store's event (as for files too large to hash in a
    // request), so the commit has no request to authenticate: only the session's record.
    w.app.reconfigure(|r| {
        r.with_uploads(depot::Uploads {
            part_size: 5 << 20,
            commit_inline_max: Some(1),
            single_max: 0,
        })
    });
    let idp = OidcIssuer::start().await;
    let spec = TrustSpec {
        path: "grp/app".into(),
        issuer: idp.issuer(),
        audience: AUD.into(),
        conditions: vec![ClaimCondition::parse("project_path=grp/app").unwrap()],
        role: Role::Developer,
        scopes: vec![Scope::Api],
    };
    let rule = w.app.admin.add_trust_rule(spec).await.unwrap();
    let job = idp.mint(idp.gitlab_claims(AUD, json!({})));
    let other_job = idp.mint(idp.gitlab_claims(
        AUD,
        json!({"sub": "project_path:grp/app:ref_type:branch:ref:dev", "job_id": "999"}),
    ));
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
    let id = handoff(&w, &job, "rel/1.0/a.bin", &data).await;
    assert_eq!(
        complete(&w, "rel/1.0/a.bin", &id, &other_job).await.status,
        404
    );
    assert_eq!(complete(&w, "rel/1.0/a.bin", &id, &job).await.status, 202);
    let event = object_created(&format!("uploads/{id}"), data.len());
    let done = depot::finalizer::on_s3_event(&w.app.registry, &event)
        .await
        .unwrap();
    assert_eq!(done[0]["state"], "committed", "{done:?}");
    let got = w
        .app
        .get(
            &w.url(w.private_id, "rel/1.0/a.bin"),
            &[("JOB-TOKEN", &job)],
        )
        .await;
    assert!(got.body == data);

    // The rule goes while a second session waits for its commit: the commit is refused.
    let id = handoff(&w, &job, "rel/1.0/b.bin", &data).await;
    assert_eq!(complete(&w, "rel/1.0/b.bin", &id, &job).await.status, 202);
    w.app.admin.remove_trust_rule(rule.id).await.unwrap();
    let event = object_created(&format!("uploads/{id}"), data.len());
    let done = depot::finalizer::on_s3_event(&w.app.registry, &event)
        .await
        .unwrap();
    assert_eq!(done[0]["state"], "refused", "{done:?}");
    let stored = w.app.meta().upload_session(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.state,
        depot::domain::SessionState::Refused {
            reason: depot::domain::Refusal::TokenRevoked
        }
    );
}

on_every_backend!(
    a_release_job_publishes_in_every_job_token_form,
    every_condition_must_hold,
    bad_tokens_are_unauthorized,
    github_tokens_and_group_rules,
    keys_rotate,
    a_job_hands_off_a_large_file_with_its_id_token,
);
