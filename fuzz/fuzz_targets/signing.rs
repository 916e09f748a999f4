//! The local store's signed URLs (`UrlSigner`). The input is lines: method, key, expires,
//! size, sha256, disposition (an optional field is present when its line starts with `=`), the
//! time of use, a replacement byte, and a query string an attacker sends for the same key.
//!
//! Checks: a URL signed for a grant verifies as that very grant until it expires, and only for
//! its method (GET also allows HEAD); a single-byte change of its key, a parameter's name or
//! value, or its signature (every byte of the signature; up to 64 positions of a longer field)
//! is refused; an attacker's query never verifies unless it carries the signature `sign` gives
//! for what it asks, written as `sign` writes it.

#![no_main]

use depot::store::signing::{Grant, SIGNED_PATH_PREFIX, SignatureError, UrlSigner};
use libfuzzer_sys::fuzz_target;

type Pairs = Vec<(String, String)>;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').collect();
    let line = |i: usize| lines.get(i).copied().unwrap_or_default();
    let optional = |i: usize| line(i).strip_prefix('=').map(str::to_string);
    let size = match optional(3).map(|s| s.parse::<u64>()) {
        None => None,
        Some(Ok(size)) => Some(size),
        Some(Err(_)) => return,
    };
    let grant = Grant {
        method: line(0).to_string(),
        key: line(1).to_string(),
        expires: line(2).parse().unwrap_or(0),
        size,
        sha256: optional(4),
        disposition: optional(5),
    };
    let now = line(6).parse().unwrap_or(grant.expires);
    let replacement = line(7).bytes().next().unwrap_or(b'0');
    let signer = UrlSigner::new([7; 32]);
    let pairs = signed_pairs(&signer, &grant);
    signed_url_verifies(&signer, &grant, &pairs, now);
    every_change_is_refused(&signer, &grant, &pairs, replacement);
    attack(&signer, &grant.key, line(8), now);
});

/// The query pairs of the URL `sign` gives for `grant`.
fn signed_pairs(signer: &UrlSigner, grant: &Grant) -> Pairs {
    let url = signer.url(grant);
    let query = url
        .strip_prefix(SIGNED_PATH_PREFIX)
        .and_then(|rest| rest.strip_prefix(grant.key.as_str()))
        .and_then(|rest| rest.strip_prefix('?'))
        .unwrap_or_else(|| panic!("{url:?} is not <prefix><key>?<query>"));
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn signed_url_verifies(signer: &UrlSigner, grant: &Grant, pairs: &Pairs, now: i64) {
    let method = grant.method.as_str();
    let at = now.min(grant.expires);
    assert_eq!(
        signer.verify(method, &grant.key, pairs, at),
        Ok(grant.clone())
    );
    if let Some(late) = grant.expires.checked_add(1) {
        let answer = signer.verify(method, &grant.key, pairs, late.max(now));
        assert_eq!(answer, Err(SignatureError::Expired));
    }
    for other in ["GET", "HEAD", "PUT", "DELETE", "POST"] {
        let allowed = other == method || (method == "GET" && other == "HEAD");
        let answer = signer.verify(other, &grant.key, pairs, at);
        if allowed {
            assert_eq!(answer, Ok(grant.clone()), "{other} of a {method} URL");
        } else {
            assert_eq!(
                answer,
                Err(SignatureError::WrongMethod),
                "{other} of {method}"
            );
        }
    }
}

/// A byte of the key, of a parameter's name or value changed (ASCII case flipped, the lowest
/// bit flipped, or set to `replacement`): never verifies.
fn every_change_is_refused(signer: &UrlSigner, grant: &Grant, pairs: &Pairs, replacement: u8) {
    let at = grant.expires;
    let method = grant.method.as_str();
    for key in mutations(&grant.key, replacement) {
        let answer = signer.verify(method, &key, pairs, at);
        assert_eq!(answer, Err(SignatureError::Mismatch), "key {key:?}");
    }
    for (i, (name, value)) in pairs.iter().enumerate() {
        let mut changed = pairs.clone();
        for name in mutations(name, replacement) {
            changed[i] = (name.clone(), value.clone());
            let answer = signer.verify(method, &grant.key, &changed, at);
            assert!(answer.is_err(), "{name:?} for parameter {:?}", pairs[i].0);
        }
        for value in mutations(value, replacement) {
            changed[i] = (name.clone(), value.clone());
            let answer = signer.verify(method, &grant.key, &changed, at);
            assert!(
                answer.is_err(),
                "{name}={value:?} instead of {:?}",
                pairs[i].1
            );
        }
    }
}

/// `s` with one byte changed, each way that leaves valid UTF-8 and a different string: at every
/// position of a string up to 64 bytes (a signature), at 64 positions spread over a longer one
/// (their offset set by `replacement`), so that long inputs stay fast.
fn mutations(s: &str, replacement: u8) -> Vec<String> {
    let stride = s.len().div_ceil(64).max(1);
    let mut out = Vec::new();
    for i in (usize::from(replacement) % stride..s.len()).step_by(stride) {
        let b = s.as_bytes()[i];
        for new in [b ^ 0x20, b ^ 0x01, replacement] {
            if new == b {
                continue;
            }
            let mut bytes = s.as_bytes().to_vec();
            bytes[i] = new;
            if let Ok(changed) = String::from_utf8(bytes) {
                out.push(changed);
            }
        }
    }
    out
}

/// A query an attacker wrote verifies only with the signature `sign` writes for its grant.
fn attack(signer: &UrlSigner, key: &str, query: &str, now: i64) {
    let pairs: Pairs = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    for method in ["GET", "HEAD", "PUT"] {
        let Ok(grant) = signer.verify(method, key, &pairs, now) else {
            continue;
        };
        let signature = |pairs: &Pairs| {
            pairs
                .iter()
                .find(|(k, _)| k == "signature")
                .map(|(_, v)| v.clone())
        };
        let genuine = signature(&signed_pairs(signer, &grant));
        assert_eq!(
            signature(&pairs),
            genuine,
            "{query:?} verified as {grant:?}"
        );
    }
}
