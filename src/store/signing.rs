//! Short-lived URLs the local blob store signs itself (HMAC-SHA256), so the presigned handoff
//! works without S3 and a client follows one code path. A grant names the method, the key, its
//! expiry and, for uploads, the exact size and optional SHA-256; any change to any of them, or
//! a late or wrong-method use, is refused.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// Where the local store's signed URLs are served (`<prefix><key>?<grant>`).
pub const SIGNED_PATH_PREFIX: &str = "/-/blob/";

/// What a signed URL allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `GET` (also allows `HEAD`) or `PUT`.
    pub method: String,
    pub key: String,
    /// Unix seconds after which the URL is refused.
    pub expires: i64,
    /// Exact size of an upload.
    pub size: Option<u64>,
    /// Lower-case hex SHA-256 an upload must have.
    pub sha256: Option<String>,
    /// `Content-Disposition` of a download.
    pub disposition: Option<String>,
}

/// Why a signed URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the URL is not signed or its signature does not match")]
    Mismatch,
    #[error("the URL has expired")]
    Expired,
    #[error("the URL does not allow this method")]
    WrongMethod,
}

pub struct UrlSigner {
    key: [u8; 32],
}

impl UrlSigner {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The signing key kept in `path` (created with a random key, readable by the owner only,
    /// on first use), so URLs stay valid across restarts and across processes sharing it.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        if let Ok(bytes) = std::fs::read(path)
            && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
        {
            return Ok(Self::new(key));
        }
        // A fresh key goes to a temporary file that is synced and then renamed over `path`:
        // a crash leaves the old file or the whole new key, never a truncated one.
        let key: [u8; 32] = rand::random();
        let temp = path.with_extension(format!("{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(&key)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            dir.sync_all()?;
        }
        Ok(Self::new(key))
    }

    fn mac(&self, grant: &Grant) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key size");
        // Length-prefixed fields, each optional one after a presence byte: no two different
        // grants share a canonical form, and an absent parameter is not an empty one.
        let size = grant.size.map(|s| s.to_string());
        let fields = [
            Some(grant.method.as_str()),
            Some(grant.key.as_str()),
            Some(&grant.expires.to_string()),
            size.as_deref(),
            grant.sha256.as_deref(),
            grant.disposition.as_deref(),
        ];
        for field in fields {
            match field {
                None => mac.update(&[0]),
                Some(value) => {
                    mac.update(&[1]);
                    mac.update(&(value.len() as u64).to_be_bytes());
                    mac.update(value.as_bytes());
                }
            }
        }
        mac
    }

    /// The path and query of a URL carrying `grant`.
    pub fn url(&self, grant: &Grant) -> String {
        let signature = hex::encode(self.mac(grant).finalize().into_bytes());
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("method", &grant.method);
        query.append_pair("expires", &grant.expires.to_string());
        if let Some(size) = grant.size {
            query.append_pair("size", &size.to_string());
        }
        if let Some(sha) = &grant.sha256 {
            query.append_pair("sha256", sha);
        }
        if let Some(d) = &grant.disposition {
            query.append_pair("disposition", d);
        }
        query.append_pair("signature", &signature);
        format!("{SIGNED_PATH_PREFIX}{}?{}", grant.key, query.finish())
    }

    /// Check a request for `key` with `method` at `now` (unix seconds) against its query.
    pub fn verify(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
        now: i64,
    ) -> Result<Grant, SignatureError> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let grant = Grant {
            method: get("method").ok_or(SignatureError::Mismatch)?,
            key: key.to_string(),
            expires: get("expires")
                .and_then(|e| e.parse().ok())
                .ok_or(SignatureError::Mismatch)?,
            size: match get("size") {
                Some(s) => Some(s.parse().map_err(|_| SignatureError::Mismatch)?),
                None => None,
            },
            sha256: get("sha256"),
            disposition: get("disposition"),
        };
        // Only the signature as `url` writes it (lower-case hex): an upper-cased one decodes to
        // the same bytes, but is another URL.
        let lower_hex = |s: &String| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let signature = get("signature")
            .filter(lower_hex)
            .and_then(|s| hex::decode(s).ok())
            .ok_or(SignatureError::Mismatch)?;
        self.mac(&grant)
            .verify_slice(&signature)
            .map_err(|_| SignatureError::Mismatch)?;
        if now > grant.expires {
            return Err(SignatureError::Expired);
        }
        let allowed = grant.method == method || (grant.method == "GET" && method == "HEAD");
        if !allowed {
            return Err(SignatureError::WrongMethod);
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_of(url: &str) -> (String, Vec<(String, String)>) {
        let (path, query) = url.split_once('?').unwrap();
        let key = path.strip_prefix(SIGNED_PATH_PREFIX).unwrap().to_string();
        let pairs = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        (key, pairs)
    }

    fn grant() -> Grant {
        Grant {
            method: "PUT".into(),
            key: "uploads/abc".into(),
            expires: 1_000,
            size: Some(17),
            sha256: Some("ab".repeat(32)),
            disposition: None,
        }
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let signer = UrlSigner::new([7; 32]);
        let (key, query) = query_of(&signer.url(&grant()));
        assert_eq!(signer.verify("PUT", &key, &query, 1_000), Ok(grant()));
        assert_eq!(
            signer.verify("PUT", &key, &query, 1_001),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            signer.verify("GET", &key, &query, 10),
            Err(SignatureError::WrongMethod)
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let signer = UrlSigner::new([7; 32]);
        let (key, query) = query_of(&signer.url(&grant()));
        assert_eq!(
            signer.verify("PUT", "uploads/abd", &query, 10),
            Err(SignatureError::Mismatch)
        );
        for (name, value) in [
            ("size", "18"),
            ("expires", "99999"),
            ("sha256", "00"),
            ("method", "GET"),
        ] {
            let changed: Vec<(String, String)> = query
                .iter()
                .map(|(k, v)| {
                    let v = if k == name {
                        value.to_string()
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect();
            assert_eq!(
                signer.verify("PUT", &key, &changed, 10),
                Err(SignatureError::Mismatch),
                "{name}"
            );
        }
        let other = UrlSigner::new([8; 32]);
        assert_eq!(
            other.verify("PUT", &key, &query, 10),
            Err(SignatureError::Mismatch)
        );
        let unsigned: Vec<(String, String)> = query
            .into_iter()
            .filter(|(k, _)| k != "signature")
            .collect();
        assert_eq!(
            signer.verify("PUT", &key, &unsigned, 10),
            Err(SignatureError::Mismatch)
        );
    }

    /// Found by the `signing` fuzz target (fuzz/regressions/signing/): a signature with its
    /// hex digits upper-cased verified, so one grant had many URLs.
    #[test]
    fn only_the_signature_as_written_verifies() {
        let signer = UrlSigner::new([7; 32]);
        let (key, query) = query_of(&signer.url(&grant()));
        let signature = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .find(|(k, _)| k == "signature")
                .unwrap()
                .1
                .clone()
        };
        let written = signature(&query);
        assert!(written.bytes().any(|b| b.is_ascii_lowercase()), "{written}");
        for changed in [
            written.to_uppercase(),
            written.replacen(|c: char| c.is_ascii_lowercase(), "A", 1),
        ] {
            let upper: Vec<(String, String)> = query
                .iter()
                .map(|(k, v)| {
                    let v = if k == "signature" {
                        changed.clone()
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect();
            assert_eq!(
                signer.verify("PUT", &key, &upper, 10),
                Err(SignatureError::Mismatch),
                "{changed}"
            );
        }
        assert_eq!(signer.verify("PUT", &key, &query, 10), Ok(grant()));
    }

    #[test]
    fn an_absent_parameter_is_not_an_empty_one() {
        let signer = UrlSigner::new([7; 32]);
        let bare = Grant {
            sha256: None,
            disposition: None,
            ..grant()
        };
        let (key, mut query) = query_of(&signer.url(&bare));
        assert_eq!(signer.verify("PUT", &key, &query, 10), Ok(bare.clone()));
        for name in ["sha256", "disposition"] {
            let mut with_empty = query.clone();
            with_empty.push((name.to_string(), String::new()));
            assert_eq!(
                signer.verify("PUT", &key, &with_empty, 10),
                Err(SignatureError::Mismatch),
                "an empty {name} appended"
            );
        }
        // And the other way round: a grant of an empty value does not verify without it.
        let empty = Grant {
            disposition: Some(String::new()),
            ..bare
        };
        let (_, with_empty) = query_of(&signer.url(&empty));
        query.retain(|(k, _)| k != "signature");
        query.extend(with_empty.into_iter().filter(|(k, _)| k == "signature"));
        assert_eq!(
            signer.verify("PUT", &key, &query, 10),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_short_key_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        std::fs::write(&path, b"cut short").unwrap();
        let signer = UrlSigner::load_or_create(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), signer.key);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    }

    #[test]
    fn the_key_survives_a_restart_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let first = UrlSigner::load_or_create(&path).unwrap();
        let again = UrlSigner::load_or_create(&path).unwrap();
        assert_eq!(first.key, again.key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
