//! A SHA-256 a client declares for the bytes it sends: lower-case hex, parsed once at the edge
//! from hex (`X-Checksum-SHA256`, an upload session's `sha256`) or from an RFC 9530
//! `Content-Digest` field (`sha-256=:<base64>:`).

use base64::Engine;

/// A declared SHA-256, 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// 64 hex digits, either case.
    pub fn parse(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(hex.to_ascii_lowercase()))
    }

    /// The `sha-256` member of a `Content-Digest` field value: `None` if it has none,
    /// `Some(Err(()))` if that member is not 32 bytes of base64 between colons.
    pub fn from_content_digest(field: &str) -> Option<Result<Self, ()>> {
        let member = field.split(',').find_map(|member| {
            let (algorithm, value) = member.split_once('=')?;
            algorithm
                .trim()
                .eq_ignore_ascii_case("sha-256")
                .then(|| value.trim())
        })?;
        let decoded = member
            .strip_prefix(':')
            .and_then(|v| v.strip_suffix(':'))
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .filter(|bytes| bytes.len() == 32);
        Some(decoded.map(|bytes| Self(hex::encode(bytes))).ok_or(()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hex_in_either_case() {
        let upper = EMPTY.to_ascii_uppercase();
        assert_eq!(Sha256Hex::parse(&upper).unwrap().as_str(), EMPTY);
        assert_eq!(Sha256Hex::parse(&EMPTY[1..]), None);
        assert_eq!(Sha256Hex::parse(&format!("{}g", &EMPTY[1..])), None);
    }

    #[test]
    fn content_digest_members() {
        let b64 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let one = format!("sha-256=:{b64}:");
        assert_eq!(
            Sha256Hex::from_content_digest(&one)
                .unwrap()
                .unwrap()
                .as_str(),
            EMPTY
        );
        let several = format!("sha-512=:AAAA:, SHA-256=:{b64}:");
        assert_eq!(
            Sha256Hex::from_content_digest(&several)
                .unwrap()
                .unwrap()
                .as_str(),
            EMPTY
        );
        assert_eq!(Sha256Hex::from_content_digest("sha-512=:AAAA:"), None);
        assert_eq!(
            Sha256Hex::from_content_digest("sha-256=:AAAA:"),
            Some(Err(()))
        );
        assert_eq!(
            Sha256Hex::from_content_digest(&format!("sha-256={b64}")),
            Some(Err(()))
        );
    }
}
