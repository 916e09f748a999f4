//! A loopback OpenID Provider for tests: serves OIDC discovery and a JWKS on 127.0.0.1, mints
//! ID tokens shaped like GitLab CI's and GitHub Actions' (RS256 or ES256), rotates its RSA key,
//! and mints malformed or hostile tokens for attack tests. Counts how often its documents are
//! fetched so tests can assert caching. Keys are generated per instance with aws-lc-rs; all
//! signing goes through jsonwebtoken. Independent of the verifier under test.

#![allow(dead_code)] // each test binary uses a different part of it

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Which key `mint_with` signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoice {
    /// The current RSA key (RS256), published.
    Rsa,
    /// The P-256 key (ES256), published.
    Ec,
    /// The RSA key `rotate()` replaced: no longer published. Panics before any rotation.
    Retired,
    /// An RSA key never published, with its own random kid.
    Unpublished,
}

/// The signature segment `mint_raw` appends.
#[derive(Debug, Clone)]
pub enum Sig {
    /// An empty signature, as `alg: none` has.
    Empty,
    /// RS256 with the current RSA key.
    Rs256,
    /// ES256 with the P-256 key.
    Es256,
    /// HS256 with these bytes as the secret (e.g. `rsa_public_pem()` for key confusion).
    Hs256(Vec<u8>),
    /// These bytes, base64url-encoded.
    Bytes(Vec<u8>),
}

pub const JWKS_PATH: &str = "/oauth/discovery/keys";
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

struct RsaKey {
    kid: String,
    /// PKCS#1 RSAPrivateKey DER, what jsonwebtoken's aws-lc signer takes.
    pkcs1: Vec<u8>,
    n: Vec<u8>,
    e: Vec<u8>,
    /// SubjectPublicKeyInfo DER, for `rsa_public_pem`.
    spki: Vec<u8>,
}

struct EcKey {
    kid: String,
    pkcs8: Vec<u8>,
    x: Vec<u8>,
    y: Vec<u8>,
}

struct Keys {
    current: RsaKey,
    retired: Option<RsaKey>,
    unpublished: RsaKey,
    ec: EcKey,
}

struct Shared {
    issuer: String,
    keys: Mutex<Keys>,
    cache_control: Mutex<String>,
    jwks_status: AtomicU16,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
}

pub struct OidcIssuer {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for OidcIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl OidcIssuer {
    /// Binds 127.0.0.1:0 and serves discovery and the JWKS until dropped.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("local addr"));
        let keys = tokio::task::spawn_blocking(|| Keys {
            current: rsa_key(),
            retired: None,
            unpublished: rsa_key(),
            ec: ec_key(),
        })
        .await
        .expect("key generation");
        let shared = Arc::new(Shared {
            issuer,
            keys: Mutex::new(keys),
            cache_control: Mutex::new("max-age=300".to_owned()),
            jwks_status: AtomicU16::new(200),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route(DISCOVERY_PATH, get(discovery))
            .route(JWKS_PATH, get(jwks))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("issuer server");
        });
        OidcIssuer { shared, server }
    }

    /// "http://127.0.0.1:PORT"
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// A token signed with the current RSA key (RS256, `kid` set).
    pub fn mint(&self, claims: Value) -> String {
        self.mint_with(KeyChoice::Rsa, claims)
    }

    pub fn mint_with(&self, key: KeyChoice, claims: Value) -> String {
        let keys = self.shared.keys.lock().unwrap();
        let (alg, kid, encoding) = match key {
            KeyChoice::Rsa => rsa_signer(&keys.current),
            KeyChoice::Retired => rsa_signer(keys.retired.as_ref().expect("rotate() first")),
            KeyChoice::Unpublished => rsa_signer(&keys.unpublished),
            KeyChoice::Ec => (
                Algorithm::ES256,
                keys.ec.kid.clone(),
                EncodingKey::from_ec_der(&keys.ec.pkcs8),
            ),
        };
        let mut header = Header::new(alg);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, &claims, &encoding).expect("sign")
    }

    /// A token with exactly this header and payload JSON and the given signature: for `alg:
    /// none`, HMAC key confusion, wrong or missing `kid`, and the like.
    pub fn mint_raw(&self, header_json: Value, claims: Value, signature: Sig) -> String {
        let input = format!("{}.{}", b64_json(&header_json), b64_json(&claims));
        let keys = self.shared.keys.lock().unwrap();
        let sign = |alg, key: &EncodingKey| {
            jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("sign")
        };
        let signature = match signature {
            Sig::Empty => String::new(),
            Sig::Rs256 => sign(Algorithm::RS256, &rsa_signer(&keys.current).2),
            Sig::Es256 => sign(Algorithm::ES256, &EncodingKey::from_ec_der(&keys.ec.pkcs8)),
            Sig::Hs256(secret) => sign(Algorithm::HS256, &EncodingKey::from_secret(&secret)),
            Sig::Bytes(bytes) => URL_SAFE_NO_PAD.encode(bytes),
        };
        format!("{input}.{signature}")
    }

    /// Publishes a new current RSA key; the old one becomes `KeyChoice::Retired` (unpublished).
    pub fn rotate(&self) {
        let fresh = rsa_key();
        let mut keys = self.shared.keys.lock().unwrap();
        let old = std::mem::replace(&mut keys.current, fresh);
        keys.retired = Some(old);
    }

    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// The Cache-Control header of the JWKS response; "max-age=300" until set.
    pub fn set_cache_control(&self, value: &str) {
        *self.shared.cache_control.lock().unwrap() = value.to_owned();
    }

    /// Makes the JWKS endpoint answer with this status (and no keys) unless it is 200.
    pub fn set_jwks_status(&self, status: u16) {
        self.shared.jwks_status.store(status, Ordering::SeqCst);
    }

    /// The current RSA key's kid.
    pub fn rsa_kid(&self) -> String {
        self.shared.keys.lock().unwrap().current.kid.clone()
    }

    /// The current RSA public key as SPKI PEM: the classic HS256 key-confusion "secret".
    pub fn rsa_public_pem(&self) -> String {
        let keys = self.shared.keys.lock().unwrap();
        let body = STANDARD.encode(&keys.current.spki);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// The current RSA key's JWK `n` member (base64url), another key-confusion "secret".
    pub fn rsa_public_n(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.shared.keys.lock().unwrap().current.n)
    }

    /// Claims shaped like a GitLab CI ID token for project grp/app on protected branch main,
    /// valid now for 5 minutes, with `overrides` merged in (a null removes a claim).
    pub fn gitlab_claims(&self, aud: &str, overrides: Value) -> Value {
        let now = now();
        let sha = "714a629c0b401fdce83e847fc9589983fc6f46bc";
        let claims = json!({
            "namespace_id": "72",
            "namespace_path": "grp",
            "project_id": "20",
            "project_path": "grp/app",
            "user_id": "1",
            "user_login": "alice",
            "user_email": "alice@example.com",
            "user_access_level": "maintainer",
            "pipeline_id": "574",
            "pipeline_source": "push",
            "job_id": "302",
            "ref": "main",
            "ref_type": "branch",
            "ref_path": "refs/heads/main",
            "ref_protected": "true",
            "environment": "production",
            "environment_protected": "true",
            "deployment_tier": "production",
            "runner_id": 1,
            "runner_environment": "gitlab-hosted",
            "sha": sha,
            "project_visibility": "private",
            "ci_config_ref_uri": "gitlab.example.com/grp/app//.gitlab-ci.yml@refs/heads/main",
            "ci_config_sha": sha,
            "jti": random_hex(16),
            "iss": self.issuer(),
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            "sub": "project_path:grp/app:ref_type:branch:ref:main",
            "aud": aud,
        });
        merge(claims, overrides)
    }

    /// Claims shaped like a GitHub Actions ID token for org/repo on refs/heads/main, valid now
    /// for 5 minutes, with `overrides` merged in (a null removes a claim). `iss` is this
    /// issuer. Note: GitHub's real `sub` is "repo:org/repo:environment:NAME" when the job
    /// has an environment; override `sub` to test that form.
    pub fn github_claims(&self, aud: &str, overrides: Value) -> Value {
        let now = now();
        let sha = "example0sha0000000000000000000000000000a";
        let workflow = "org/repo/.github/workflows/release.yml@refs/heads/main";
        let claims = json!({
            "jti": random_hex(16),
            "sub": "repo:org/repo:ref:refs/heads/main",
            "aud": aud,
            "ref": "refs/heads/main",
            "ref_type": "branch",
            "ref_protected": "true",
            "sha": sha,
            "repository": "org/repo",
            "repository_id": "74",
            "repository_owner": "org",
            "repository_owner_id": "65",
            "repository_visibility": "private",
            "actor": "octocat",
            "actor_id": "12",
            "run_id": "5000000001",
            "run_number": "10",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
            "workflow": "release",
            "head_ref": "",
            "base_ref": "",
            "event_name": "push",
            "environment": "production",
            "workflow_ref": workflow,
            "workflow_sha": sha,
            "job_workflow_ref": workflow,
            "job_workflow_sha": sha,
            "iss": self.issuer(),
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
        });
        merge(claims, overrides)
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let issuer = &shared.issuer;
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let status = shared.jwks_status.load(Ordering::SeqCst);
    if status != 200 {
        return StatusCode::from_u16(status)
            .expect("status")
            .into_response();
    }
    let body = {
        let keys = shared.keys.lock().unwrap();
        let rsa = &keys.current;
        let ec = &keys.ec;
        json!({"keys": [
            {"kty": "RSA", "kid": rsa.kid, "alg": "RS256", "use": "sig",
             "n": URL_SAFE_NO_PAD.encode(&rsa.n), "e": URL_SAFE_NO_PAD.encode(&rsa.e)},
            {"kty": "EC", "kid": ec.kid, "alg": "ES256", "use": "sig", "crv": "P-256",
             "x": URL_SAFE_NO_PAD.encode(&ec.x), "y": URL_SAFE_NO_PAD.encode(&ec.y)},
        ]})
    };
    let cache_control = shared.cache_control.lock().unwrap().clone();
    ([(header::CACHE_CONTROL, cache_control)], Json(body)).into_response()
}

fn rsa_signer(key: &RsaKey) -> (Algorithm, String, EncodingKey) {
    (
        Algorithm::RS256,
        key.kid.clone(),
        EncodingKey::from_rsa_der(&key.pkcs1),
    )
}

fn rsa_key() -> RsaKey {
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA keygen");
    let pkcs8: Pkcs8V1Der = pair.as_der().expect("PKCS#8");
    let public = pair.public_key();
    let spki: PublicKeyX509Der = public.as_der().expect("SPKI");
    RsaKey {
        kid: format!("rsa-{}", random_hex(8)),
        pkcs1: pkcs8_inner_key(pkcs8.as_ref()),
        n: public.modulus().big_endian_without_leading_zero().to_vec(),
        e: public.exponent().big_endian_without_leading_zero().to_vec(),
        spki: spki.as_ref().to_vec(),
    }
}

fn ec_key() -> EcKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("EC keygen");
    let pkcs8 = pair.to_pkcs8v1().expect("PKCS#8");
    // Uncompressed point: 0x04 || x || y.
    let point = pair.public_key().as_ref();
    assert_eq!((point.len(), point[0]), (65, 4));
    EcKey {
        kid: format!("ec-{}", random_hex(8)),
        pkcs8: pkcs8.as_ref().to_vec(),
        x: point[1..33].to_vec(),
        y: point[33..].to_vec(),
    }
}

/// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo: aws-lc-rs writes only PKCS#8,
/// jsonwebtoken's aws-lc signer reads only PKCS#1.
/// PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm SEQUENCE, privateKey OCTET STRING }
fn pkcs8_inner_key(pkcs8: &[u8]) -> Vec<u8> {
    let (tag, info, _) = der_tlv(pkcs8);
    assert_eq!(tag, 0x30);
    let (_, _version, rest) = der_tlv(info);
    let (_, _algorithm, rest) = der_tlv(rest);
    let (tag, key, _) = der_tlv(rest);
    assert_eq!(tag, 0x04);
    key.to_vec()
}

/// One DER TLV off the front of `input`: (tag, contents, rest).
fn der_tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let (len, header) = match input[1] {
        short if short < 0x80 => (short as usize, 2),
        long => {
            let count = (long & 0x7f) as usize;
            let len = input[2..2 + count]
                .iter()
                .fold(0usize, |acc, b| acc << 8 | *b as usize);
            (len, 2 + count)
        }
    };
    (
        input[0],
        &input[header..header + len],
        &input[header + len..],
    )
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"))
}

fn merge(mut claims: Value, overrides: Value) -> Value {
    if let (Some(claims), Value::Object(overrides)) = (claims.as_object_mut(), overrides) {
        for (name, value) in overrides {
            if value.is_null() {
                claims.remove(&name);
            } else {
                claims.insert(name, value);
            }
        }
    }
    claims
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("random");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}
