//! The HTTP side of OIDC verification: which URLs may be fetched (https, or http only to a
//! loopback host), the hardened client (timeout, few redirects, none to an insecure URL, no
//! name resolved to an internal address), the bounded GET of a JSON document, and the cache
//! lifetime of a response from its headers. Nothing here knows about keys or tokens.
//!
//! Internal addresses (loopback, private, link-local, shared, unique-local) are reached only
//! when an operator named one as the issuer (a test's or a sidecar's): an issuer's discovery
//! document cannot send depot to one, and no public name may resolve to one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, CACHE_CONTROL, DATE, EXPIRES, HeaderMap};
use reqwest::{Client, Url, redirect};
use serde::de::DeserializeOwned;

/// A discovery document or a JWKS is a few KiB; anything near this is hostile or broken.
pub(crate) const MAX_BODY: usize = 1 << 20;
const MAX_REDIRECTS: usize = 3;

/// Bounds on how long a fetched document is trusted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    pub default_ttl: Duration,
    pub min_ttl: Duration,
    pub max_ttl: Duration,
}

/// Parses `raw` and checks it may be fetched: https anywhere, plain http only to a loopback
/// host (so tests can run an issuer on 127.0.0.1 while production requires TLS), and no
/// credentials.
pub(crate) fn secure_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    if !is_secure(&url) {
        return Err("neither https nor http to a loopback host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("has credentials".to_owned());
    }
    Ok(url)
}

/// `secure_url`, and no query or fragment: OIDC issuer identifiers have none.
pub(crate) fn secure_issuer(raw: &str) -> Result<Url, String> {
    let url = secure_url(raw)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("has a query or fragment".to_owned());
    }
    Ok(url)
}

pub(crate) fn is_secure(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host_str().is_some(),
        "http" => is_loopback(url),
        _ => false,
    }
}

/// Is `ip` an address inside a network rather than on the internet?
pub(crate) fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal_ip(IpAddr::V4(v4)))
        }
    }
}

/// Does `url` name an internal host: `localhost` or an internal address literal?
pub(crate) fn is_internal(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(is_internal_ip)
}

/// May the keys of `issuer` be fetched from `jwks`: a public https URL, or an internal one
/// only on an internal issuer's own host.
pub(crate) fn jwks_allowed(issuer: &Url, jwks: &Url) -> Result<(), String> {
    if !is_internal(jwks) {
        return Ok(());
    }
    if is_internal(issuer) && issuer.host_str() == jwks.host_str() {
        Ok(())
    } else {
        Err("an internal address, named by an issuer that is not".to_owned())
    }
}

/// Resolves names as the system does, leaving out internal addresses (except for the name
/// `localhost` itself), so a public name cannot point a fetch inside the network.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let local = host.eq_ignore_ascii_case("localhost");
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| local || !is_internal_ip(a.ip()))
                .collect();
            if found.is_empty() {
                let why = format!("{host} resolves to no public address");
                return Err(why.into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    // `Url` canonicalises IP hosts (e.g. `127.1` -> `127.0.0.1`); IPv6 comes bracketed.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The client every discovery and JWKS fetch goes through. Redirects are followed only a few
/// times and never to a URL `is_secure` refuses, so https cannot be downgraded by a 302.
pub(crate) fn client(timeout: Duration) -> Result<Client, String> {
    let policy = redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if !is_secure(attempt.url()) {
            attempt.error("redirect to an insecure URL")
        } else if is_internal(attempt.url()) && !attempt.previous().first().is_some_and(is_internal)
        {
            attempt.error("redirect to an internal address")
        } else {
            attempt.follow()
        }
    });
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(policy)
        .dns_resolver(Arc::new(PublicOnly))
        .user_agent(concat!("depot-oidc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// GETs `url` and parses its JSON body, reading at most `MAX_BODY` bytes. Returns the value and
/// its cache lifetime. Errors read "GET {url}: {what}".
pub(crate) async fn get_json<T: DeserializeOwned>(
    client: &Client,
    url: &Url,
    lifetimes: &Lifetimes,
) -> Result<(T, Duration), String> {
    let fail = |what: String| format!("GET {url}: {what}");
    let mut response = client
        .get(url.clone())
        .header(ACCEPT, "application/json, application/jwk-set+json")
        .send()
        .await
        .map_err(|e| fail(describe(e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(status.as_u16().to_string()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(fail(format!("body over {MAX_BODY} bytes")));
    }
    let ttl = lifetime(response.headers(), lifetimes);
    // Read chunk by chunk so a body without (or lying about) Content-Length is still capped.
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fail(describe(e)))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(fail(format!("body over {MAX_BODY} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    let value = serde_json::from_slice(&body).map_err(|e| fail(format!("invalid JSON ({e})")))?;
    Ok((value, ttl))
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_redirect() {
        "refused redirect".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        // reqwest's Display repeats the URL, which the caller already prefixes.
        e.without_url().to_string()
    }
}

/// How long a response may be cached: `Cache-Control: max-age`, else `Expires` minus `Date`,
/// else the default; then clamped to `[min_ttl, max_ttl]`. `no-cache`, `no-store` and
/// `max-age=0` count as zero and so become `min_ttl`: an issuer that forbids caching must not
/// turn every verification into a fetch.
pub(crate) fn lifetime(headers: &HeaderMap, lifetimes: &Lifetimes) -> Duration {
    let raw = cache_control_max_age(headers)
        .or_else(|| expires_minus_date(headers))
        .unwrap_or(lifetimes.default_ttl);
    let max = lifetimes.max_ttl.max(lifetimes.min_ttl);
    raw.max(lifetimes.min_ttl).min(max)
}

fn cache_control_max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            return Some(Duration::ZERO);
        };
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            let secs =
                if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                    0
                } else if name.eq_ignore_ascii_case("max-age") {
                    // A malformed max-age means "stale" (RFC 9111 §4.2.1).
                    arg.and_then(|a| a.parse().ok()).unwrap_or(0)
                } else {
                    // s-maxage is for shared caches; public/private/must-revalidate change nothing.
                    continue;
                };
            found = Some(found.map_or(secs, |f| f.min(secs)));
        }
    }
    found.map(Duration::from_secs)
}

fn expires_minus_date(headers: &HeaderMap) -> Option<Duration> {
    let expires = headers.get(EXPIRES)?;
    // An unparseable Expires (e.g. "0") means already expired (RFC 9111 §5.3).
    let Some(expires) = expires
        .to_str()
        .ok()
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return Some(Duration::ZERO);
    };
    let date = headers
        .get(DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .unwrap_or_else(SystemTime::now);
    Some(expires.duration_since(date).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const L: Lifetimes = Lifetimes {
        default_ttl: Duration::from_secs(3600),
        min_ttl: Duration::from_secs(60),
        max_ttl: Duration::from_secs(86400),
    };

    fn ttl(pairs: &[(reqwest::header::HeaderName, &str)]) -> u64 {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, HeaderValue::from_str(value).unwrap());
        }
        lifetime(&headers, &L).as_secs()
    }

    #[test]
    fn cache_control_rules() {
        assert_eq!(ttl(&[]), 3600);
        assert_eq!(ttl(&[(CACHE_CONTROL, "public, max-age=300")]), 300);
        assert_eq!(ttl(&[(CACHE_CONTROL, "max-age=\"900\"")]), 900);
        assert_eq!(ttl(&[(CACHE_CONTROL, "max-age=5")]), 60);
        assert_eq!(ttl(&[(CACHE_CONTROL, "max-age=0")]), 60);
        assert_eq!(ttl(&[(CACHE_CONTROL, "no-store")]), 60);
        assert_eq!(ttl(&[(CACHE_CONTROL, "max-age=600, no-cache")]), 60);
        assert_eq!(ttl(&[(CACHE_CONTROL, "max-age=bogus")]), 60);
        assert_eq!(ttl(&[(CACHE_CONTROL, "max-age=99999999")]), 86400);
        assert_eq!(ttl(&[(CACHE_CONTROL, "s-maxage=10")]), 3600);
        assert_eq!(ttl(&[(CACHE_CONTROL, "s-maxage=10, max-age=120")]), 120);
    }

    #[test]
    fn expires_rules() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let expires = "Sun, 06 Nov 1994 09:49:37 GMT";
        assert_eq!(ttl(&[(DATE, date), (EXPIRES, expires)]), 3600);
        assert_eq!(
            ttl(&[(DATE, date), (EXPIRES, "Sun, 06 Nov 1994 10:49:37 GMT")]),
            7200
        );
        assert_eq!(ttl(&[(DATE, date), (EXPIRES, "0")]), 60);
        assert_eq!(ttl(&[(DATE, expires), (EXPIRES, date)]), 60);
        // max-age wins over Expires.
        assert_eq!(
            ttl(&[
                (CACHE_CONTROL, "max-age=120"),
                (DATE, date),
                (EXPIRES, expires)
            ]),
            120
        );
    }

    #[test]
    fn url_rules() {
        for ok in [
            "https://gitlab.com",
            "https://token.actions.githubusercontent.com",
            "http://127.0.0.1:8080",
            "http://127.3.4.5",
            "http://localhost:1234/path",
            "http://[::1]:99",
        ] {
            assert!(secure_issuer(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.invalid",
            "http://10.0.0.1",
            "http://[::2]",
            "http://localhost.example.com",
            "ftp://127.0.0.1",
            "https://user:pw@gitlab.com",
            "https://gitlab.com/?q=1",
            "https://gitlab.com/#x",
            "gitlab.com",
            "",
        ] {
            assert!(secure_issuer(bad).is_err(), "{bad}");
        }
        assert!(secure_url("https://gitlab.com/oauth/discovery/keys?v=2").is_ok());
    }
}
