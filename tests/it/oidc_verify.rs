//! The OIDC verifier against a loopback issuer: what is accepted, what is refused (and as which
//! error), and how often the issuer's documents are fetched.

use std::sync::Arc;
use std::time::Duration;

use crate::support::oidc_issuer::{JWKS_PATH, KeyChoice, OidcIssuer, Sig, now};
use depot::auth::oidc::{OidcError, OidcOptions, OidcVerifier};
use futures::future::join_all;
use serde_json::json;

const AUD: &str = "https://depot.example";

fn auds() -> Vec<String> {
    vec!["https://other.example".to_owned(), AUD.to_owned()]
}

fn verifier(options: OidcOptions) -> Arc<OidcVerifier> {
    Arc::new(OidcVerifier::new(options))
}

/// Asserts `result` is the error `pattern`, printing what it was otherwise.
macro_rules! assert_refused {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}

#[test]
fn verifier_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<OidcVerifier>();
    check::<OidcError>();
}

#[tokio::test]
async fn accepts_gitlab_github_and_es256_tokens() {
    let idp = OidcIssuer::start().await;
    let v = verifier(OidcOptions::default());
    let token = idp.mint(idp.gitlab_claims(AUD, json!({})));
    assert!(OidcVerifier::looks_like_jwt(&token));
    assert_eq!(OidcVerifier::unverified_issuer(&token), Some(idp.issuer()));
    let claims = v.verify(&token, &idp.issuer(), &auds()).await.unwrap();
    assert_eq!(claims["project_path"], "grp/app");
    assert_eq!(
        claims["sub"],
        "project_path:grp/app:ref_type:branch:ref:main"
    );

    let token = idp.mint(idp.github_claims(AUD, json!({"environment": null})));
    let claims = v.verify(&token, &idp.issuer(), &auds()).await.unwrap();
    assert_eq!(claims["repository"], "org/repo");
    assert!(
        !claims.contains_key("environment"),
        "a null override removes the claim"
    );

    // `aud` as an array holding one accepted audience.
    let claims = idp.gitlab_claims(AUD, json!({"aud": ["https://else.example", AUD]}));
    let token = idp.mint_with(KeyChoice::Ec, claims);
    let claims = v.verify(&token, &idp.issuer(), &auds()).await.unwrap();
    assert_eq!(claims["project_id"], "20");
}

#[tokio::test]
async fn token_without_kid_needs_exactly_one_fitting_key() {
    let idp = OidcIssuer::start().await;
    let v = verifier(OidcOptions::default());
    let claims = idp.gitlab_claims(AUD, json!({}));
    // One RSA and one EC key are published: each alg has exactly one candidate.
    let rs = idp.mint_raw(
        json!({"alg": "RS256", "typ": "JWT"}),
        claims.clone(),
        Sig::Rs256,
    );
    v.verify(&rs, &idp.issuer(), &auds()).await.unwrap();
    let es = idp.mint_raw(json!({"alg": "ES256"}), claims.clone(), Sig::Es256);
    v.verify(&es, &idp.issuer(), &auds()).await.unwrap();
    // The RSA key's kid under ES256: the kty does not fit the alg.
    let misfit = idp.mint_raw(
        json!({"alg": "ES256", "kid": idp.rsa_kid()}),
        claims,
        Sig::Es256,
    );
    assert_refused!(
        v.verify(&misfit, &idp.issuer(), &auds()).await,
        OidcError::Algorithm(_)
    );
}

#[tokio::test]
async fn refuses_bad_claims() {
    let idp = OidcIssuer::start().await;
    let v = verifier(OidcOptions::default());
    let iss = idp.issuer();
    let check = |overrides| idp.mint(idp.gitlab_claims(AUD, overrides));

    let wrong_aud = idp.mint(idp.gitlab_claims("https://elsewhere.example", json!({})));
    assert_refused!(
        v.verify(&wrong_aud, &iss, &auds()).await,
        OidcError::Audience
    );
    assert_refused!(
        v.verify(&check(json!({})), &iss, &[]).await,
        OidcError::Audience
    );
    let t = check(json!({"exp": now() - 120, "iat": now() - 600, "nbf": now() - 600}));
    assert_refused!(v.verify(&t, &iss, &auds()).await, OidcError::Expired);
    // Within the 60 s leeway.
    let t = check(json!({"exp": now() - 30}));
    v.verify(&t, &iss, &auds()).await.unwrap();
    let t = check(json!({"nbf": now() + 120}));
    assert_refused!(v.verify(&t, &iss, &auds()).await, OidcError::NotYetValid);
    let t = check(json!({"iat": now() + 120}));
    assert_refused!(v.verify(&t, &iss, &auds()).await, OidcError::IssuedInFuture);
    let t = check(json!({"iat": now() + 30, "nbf": now() + 30}));
    v.verify(&t, &iss, &auds()).await.unwrap();
    let t = check(json!({"exp": null}));
    assert_refused!(
        v.verify(&t, &iss, &auds()).await,
        OidcError::MissingClaim("exp")
    );
    let t = check(json!({"aud": null}));
    assert_refused!(
        v.verify(&t, &iss, &auds()).await,
        OidcError::MissingClaim("aud")
    );
    let t = check(json!({"iss": null}));
    assert_refused!(
        v.verify(&t, &iss, &auds()).await,
        OidcError::MissingClaim("iss")
    );
    let t = check(json!({"iss": [iss.clone()]}));
    assert_refused!(
        v.verify(&t, &iss, &auds()).await,
        OidcError::InvalidClaim("iss")
    );
    let t = check(json!({"iss": "https://gitlab.com"}));
    match v.verify(&t, &iss, &auds()).await {
        Err(OidcError::Issuer { expected, found }) => {
            assert_eq!(
                (expected.as_str(), found.as_str()),
                (iss.as_str(), "https://gitlab.com")
            );
        }
        other => panic!("expected Issuer, got {other:?}"),
    }
}

#[tokio::test]
async fn refuses_forged_tokens() {
    let idp = OidcIssuer::start().await;
    let v = verifier(OidcOptions::default());
    let iss = idp.issuer();
    let claims = idp.gitlab_claims(AUD, json!({}));

    let t = idp.mint_with(KeyChoice::Unpublished, claims.clone());
    assert_refused!(
        v.verify(&t, &iss, &auds()).await,
        OidcError::UnknownKey(Some(_))
    );

    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": idp.rsa_kid()}),
    ] {
        let t = idp.mint_raw(header, claims.clone(), Sig::Empty);
        assert!(OidcVerifier::looks_like_jwt(&t));
        assert_refused!(v.verify(&t, &iss, &auds()).await, OidcError::Algorithm(a) if a == "none");
    }
    // Key confusion: HS256 keyed with the public key, as PEM or as the JWK's n.
    for secret in [
        idp.rsa_public_pem().into_bytes(),
        idp.rsa_public_n().into_bytes(),
    ] {
        let header = json!({"alg": "HS256", "kid": idp.rsa_kid(), "typ": "JWT"});
        let t = idp.mint_raw(header, claims.clone(), Sig::Hs256(secret));
        assert_refused!(v.verify(&t, &iss, &auds()).await, OidcError::Algorithm(a) if a == "HS256");
    }
    // Payload changed after signing.
    let good = idp.mint(claims.clone());
    let forged = idp.mint_raw(
        json!({}),
        idp.gitlab_claims(AUD, json!({"project_path": "grp/evil"})),
        Sig::Empty,
    );
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = [parts[0], forged.split('.').nth(1).unwrap(), parts[2]].join(".");
    assert_refused!(
        v.verify(&tampered, &iss, &auds()).await,
        OidcError::Signature
    );
    let t = idp.mint_raw(
        json!({"alg": "RS256", "kid": idp.rsa_kid()}),
        claims.clone(),
        Sig::Bytes(vec![7; 256]),
    );
    assert_refused!(v.verify(&t, &iss, &auds()).await, OidcError::Signature);
    let crit = json!({"alg": "RS256", "kid": idp.rsa_kid(), "crit": ["exp"]});
    let t = idp.mint_raw(crit, claims, Sig::Rs256);
    assert_refused!(v.verify(&t, &iss, &auds()).await, OidcError::CriticalHeader);
    assert_refused!(
        v.verify("glpat-0123456789abcdef", &iss, &auds()).await,
        OidcError::NotAJwt
    );
    // None of these made the verifier fetch more than once.
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn refuses_a_token_of_another_issuer() {
    let first = OidcIssuer::start().await;
    let second = OidcIssuer::start().await;
    let v = verifier(OidcOptions::default());
    // Identical claims, `iss` included: only the signing key differs.
    let claims = first.gitlab_claims(AUD, json!({}));
    v.verify(&first.mint(claims.clone()), &first.issuer(), &auds())
        .await
        .unwrap();
    let other = second.mint(claims.clone());
    assert_refused!(
        v.verify(&other, &first.issuer(), &auds()).await,
        OidcError::UnknownKey(Some(_))
    );
    // Even naming the first issuer's kid.
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": first.rsa_kid()});
    let other = second.mint_raw(header, claims, Sig::Rs256);
    assert_refused!(
        v.verify(&other, &first.issuer(), &auds()).await,
        OidcError::Signature
    );
    assert_eq!(second.jwks_fetches() + second.discovery_fetches(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_verifications_fetch_once() {
    let idp = OidcIssuer::start().await;
    let v = verifier(OidcOptions::default());
    let iss = idp.issuer();
    let token = idp.mint(idp.gitlab_claims(AUD, json!({})));
    // A cold cache hit by 20 at once: one discovery, one JWKS.
    let burst = (0..20).map(|_| {
        let (v, token, iss) = (v.clone(), token.clone(), iss.clone());
        tokio::spawn(async move { v.verify(&token, &iss, &auds()).await })
    });
    for result in join_all(burst).await {
        result.unwrap().unwrap();
    }
    for _ in 0..10 {
        v.verify(&token, &iss, &auds()).await.unwrap();
    }
    let es = idp.mint_with(KeyChoice::Ec, idp.github_claims(AUD, json!({})));
    let only_aud = [AUD.to_owned()];
    let burst = (0..20).map(|i| {
        let t = if i % 2 == 0 { &token } else { &es };
        v.verify(t, &iss, &only_aud)
    });
    for result in join_all(burst).await {
        result.unwrap();
    }
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
    assert_eq!(v.fetches(), 2);
}

#[tokio::test]
async fn rotation_is_picked_up_with_one_refetch() {
    let idp = OidcIssuer::start().await;
    let v = verifier(OidcOptions {
        refetch_min: Duration::ZERO,
        ..Default::default()
    });
    let iss = idp.issuer();
    let old = idp.mint(idp.gitlab_claims(AUD, json!({})));
    v.verify(&old, &iss, &auds()).await.unwrap();
    idp.rotate();
    let new = idp.mint(idp.gitlab_claims(AUD, json!({})));
    v.verify(&new, &iss, &auds()).await.unwrap();
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 2));
    v.verify(&new, &iss, &auds()).await.unwrap();
    assert_eq!(idp.jwks_fetches(), 2);
    // The retired key is gone from the JWKS: its tokens, even fresh ones, are refused.
    let retired = idp.mint_with(KeyChoice::Retired, idp.gitlab_claims(AUD, json!({})));
    assert_refused!(
        v.verify(&retired, &iss, &auds()).await,
        OidcError::UnknownKey(Some(_))
    );
    assert_refused!(
        v.verify(&old, &iss, &auds()).await,
        OidcError::UnknownKey(Some(_))
    );
}

#[tokio::test]
async fn retired_key_refused_after_rotation_without_refetch() {
    let idp = OidcIssuer::start().await;
    let v = verifier(OidcOptions::default());
    let iss = idp.issuer();
    idp.rotate();
    let retired = idp.mint_with(KeyChoice::Retired, idp.gitlab_claims(AUD, json!({})));
    assert_refused!(
        v.verify(&retired, &iss, &auds()).await,
        OidcError::UnknownKey(Some(_))
    );
    v.verify(&idp.mint(idp.gitlab_claims(AUD, json!({}))), &iss, &auds())
        .await
        .unwrap();
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_bursts_refetch_at_most_once() {
    let idp = OidcIssuer::start().await;
    let iss = idp.issuer();
    let good = idp.mint(idp.gitlab_claims(AUD, json!({})));
    // Distinct random kids, all signed by the unpublished key.
    let forged: Vec<String> = (0..20)
        .map(|i| {
            let header = json!({"alg": "RS256", "kid": format!("forged-{i}")});
            idp.mint_raw(header, idp.gitlab_claims(AUD, json!({})), Sig::Rs256)
        })
        .collect();
    let unpublished = idp.mint_with(KeyChoice::Unpublished, idp.gitlab_claims(AUD, json!({})));

    let v = verifier(OidcOptions::default()); // refetch_min 10 s
    v.verify(&good, &iss, &auds()).await.unwrap();
    let audiences = auds();
    let all = forged.iter().chain([&unpublished]);
    let results = join_all(all.map(|t| v.verify(t, &iss, &audiences))).await;
    for result in results {
        assert_refused!(result, OidcError::UnknownKey(Some(_)));
    }
    assert!(
        idp.jwks_fetches() <= 2,
        "{} JWKS fetches",
        idp.jwks_fetches()
    );

    // Once refetch_min has passed, a burst makes exactly one refetch.
    let before = idp.jwks_fetches();
    let v = verifier(OidcOptions {
        refetch_min: Duration::from_millis(300),
        ..Default::default()
    });
    v.verify(&good, &iss, &auds()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let burst = forged.iter().map(|t| {
        let (v, t, iss) = (v.clone(), t.clone(), iss.clone());
        tokio::spawn(async move { v.verify(&t, &iss, &auds()).await })
    });
    for result in join_all(burst).await {
        assert_refused!(result.unwrap(), OidcError::UnknownKey(Some(_)));
    }
    assert_eq!(
        idp.jwks_fetches() - before,
        2,
        "the first fetch and one refetch"
    );
}

#[tokio::test]
async fn short_cache_lifetimes_are_clamped() {
    let idp = OidcIssuer::start().await;
    let iss = idp.issuer();
    let token = idp.mint(idp.gitlab_claims(AUD, json!({})));
    for cache_control in ["max-age=1", "no-store", "no-cache, max-age=0"] {
        idp.set_cache_control(cache_control);
        let before = idp.jwks_fetches();
        let v = verifier(OidcOptions::default()); // min_ttl 60 s
        v.verify(&token, &iss, &auds()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        v.verify(&token, &iss, &auds()).await.unwrap();
        assert_eq!(idp.jwks_fetches() - before, 1, "{cache_control}");
    }
}

#[tokio::test]
async fn expired_keys_are_refetched_and_kept_when_the_refresh_fails() {
    let idp = OidcIssuer::start().await;
    let iss = idp.issuer();
    let token = idp.mint(idp.gitlab_claims(AUD, json!({})));
    idp.set_cache_control("max-age=0");
    let min_ttl = Duration::from_millis(300);
    let v = verifier(OidcOptions {
        min_ttl,
        ..Default::default()
    });
    v.verify(&token, &iss, &auds()).await.unwrap();
    tokio::time::sleep(min_ttl + Duration::from_millis(100)).await;
    v.verify(&token, &iss, &auds()).await.unwrap();
    assert_eq!(idp.jwks_fetches(), 2, "expired after min_ttl");

    tokio::time::sleep(min_ttl + Duration::from_millis(100)).await;
    idp.set_jwks_status(503);
    v.verify(&token, &iss, &auds()).await.unwrap();
    v.verify(&token, &iss, &auds()).await.unwrap();
    assert_eq!(
        idp.jwks_fetches(),
        3,
        "one failed refresh, then the old keys for min_ttl"
    );
}

#[tokio::test]
async fn unavailable_issuer_is_a_discovery_error() {
    let idp = OidcIssuer::start().await;
    let token = idp.mint(idp.gitlab_claims(AUD, json!({})));
    idp.set_jwks_status(404);
    let v = verifier(OidcOptions::default());
    let (iss, audiences) = (idp.issuer(), auds());
    let results = join_all((0..10).map(|_| v.verify(&token, &iss, &audiences))).await;
    for result in results {
        match result {
            Err(e @ OidcError::Discovery(_)) => {
                assert!(e.is_unavailable());
                let expected = format!("GET {}{JWKS_PATH}: 404", idp.issuer());
                assert!(e.to_string().contains(&expected), "{e}");
            }
            other => panic!("expected Discovery, got {other:?}"),
        }
    }
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "concurrent misses share one failed fetch"
    );

    // Nothing listens on port 1.
    let e = v
        .verify(&token, "http://127.0.0.1:1", &auds())
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(
        e.to_string()
            .contains("http://127.0.0.1:1/.well-known/openid-configuration"),
        "{e}"
    );

    // The discovery document names its own issuer, not the one asked for (§4.3).
    let e = v
        .verify(&token, &format!("{}/", idp.issuer()), &auds())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, OidcError::Discovery(m) if m.contains("does not match")),
        "{e}"
    );
}

#[tokio::test]
async fn insecure_issuer_is_refused_without_a_fetch() {
    let idp = OidcIssuer::start().await;
    let v = verifier(OidcOptions::default());
    let token = idp.mint(idp.gitlab_claims(AUD, json!({"iss": "http://example.invalid"})));
    for issuer in [
        "http://example.invalid",
        "http://10.1.2.3",
        "ftp://127.0.0.1",
        "not a url",
    ] {
        assert_refused!(
            v.verify(&token, issuer, &auds()).await,
            OidcError::InsecureIssuer(_)
        );
    }
    assert_eq!(v.fetches(), 0);
    let e = v
        .verify(&token, "http://example.invalid", &auds())
        .await
        .unwrap_err();
    assert!(!e.is_unavailable());
}
