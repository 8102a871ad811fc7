//! Webhook authentication, checked over the raw body before anything parses it (docs/SPEC.md §12, peers.md §5).
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<64 lowercase hex>`, HMAC-SHA256 of the body keyed with the
//!   secret. The legacy SHA-1 `X-Hub-Signature` is never accepted on its own.
//! - GitLab: `X-Gitlab-Token` is the secret itself.
//! - Gitea and Forgejo: `X-Gitea-Signature` (or `X-Forgejo-Signature`): the same HMAC as GitHub's, hex
//!   with no `sha256=` prefix.
//!
//! Comparisons take the same time whatever the bytes: HMAC tags through `Mac::verify_slice`, tokens by
//! comparing their SHA-256 digests with `subtle`, so neither the token's content nor its length leaks.
//! An empty secret is refused outright: without a secret anyone could sign.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::event::Forge;
use super::headers;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "no webhook secret is configured, so no delivery can be verified\n\nhint: set the same secret in the \
         forge's webhook settings and in the server's repository config"
    )]
    NoSecret,
    #[error("the request has no `{header}` header\n\nhint: set a secret in the forge's webhook settings")]
    Missing { header: &'static str },
    #[error("the `{header}` header is sent {count} times; it must be sent once")]
    Duplicate { header: &'static str, count: usize },
    #[error("the `{header}` header uses the scheme `{found}`; expected `{expected}`")]
    WrongScheme { header: &'static str, found: String, expected: &'static str },
    #[error("the `{header}` header is malformed: {reason}")]
    Malformed { header: &'static str, reason: &'static str },
    #[error(
        "the `{header}` header does not match the body\n\nhint: the forge and the server must use the same \
         secret, and nothing between them may change the body"
    )]
    Mismatch { header: &'static str },
    #[error("the `webhook-timestamp` is {seconds} s away from now; at most {TOLERANCE_SECONDS} s are accepted")]
    Stale { seconds: i64 },
    #[error("the configured secret is not `whsec_` followed by base64")]
    BadSecret,
}

/// Checks that `body` was sent by the forge that knows `secret`.
pub fn verify(forge: Forge, secret: &[u8], headers: &[(String, String)], body: &[u8]) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    match forge {
        Forge::GitHub => {
            let (header, value) = one(headers, &["X-Hub-Signature-256"])?;
            let hex = match value.split_once('=') {
                Some(("sha256", hex)) => hex,
                Some((scheme, _)) => return Err(wrong_scheme(header, scheme, "sha256=<hex>")),
                None => return Err(wrong_scheme(header, "", "sha256=<hex>")),
            };
            check_hmac(header, secret, hex, body)
        }
        Forge::Gitea => {
            // Forgejo sends both headers; an older or stripped-down one may send only its own.
            let (header, value) = one(headers, &["X-Gitea-Signature", "X-Forgejo-Signature"])?;
            if let Some((scheme, _)) = value.split_once('=') {
                return Err(wrong_scheme(header, scheme, "<hex> (no prefix)"));
            }
            check_hmac(header, secret, value, body)
        }
        Forge::GitLab => {
            let (header, token) = one(headers, &["X-Gitlab-Token"])?;
            // Comparing digests makes the comparison's time independent of both content and length.
            let equal = Sha256::digest(token.as_bytes()).ct_eq(&Sha256::digest(secret));
            if bool::from(equal) { Ok(()) } else { Err(SignatureError::Mismatch { header }) }
        }
    }
}

/// How far `webhook-timestamp` may be from the server's clock, as the Standard Webhooks spec recommends.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Verifies a Standard Webhooks v1 signature (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature: v1,<base64>`), the scheme GitLab's signing tokens follow (peers.md §5.1, behind a
/// GitLab feature flag today). `secret` is `whsec_<base64 key>`; `now` is the current Unix time, passed in
/// so this stays pure. The signed content is `{id}.{timestamp}.{body}`; any one `v1` signature of the
/// space-separated list may match.
pub fn verify_standard_webhooks(
    secret: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    use base64::Engine;
    let base64 = base64::engine::general_purpose::STANDARD;
    let key = base64.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).map_err(|_| SignatureError::BadSecret)?;
    if key.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let (_, id) = one(headers, &["webhook-id"])?;
    let (_, timestamp) = one(headers, &["webhook-timestamp"])?;
    let (_, signatures) = one(headers, &["webhook-signature"])?;
    let sent: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed {
        header: "webhook-timestamp",
        reason: "expected the Unix time in seconds",
    })?;
    if now.abs_diff(sent) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale { seconds: now.saturating_sub(sent) });
    }
    let mut candidates = signatures.split(' ').filter_map(|s| s.strip_prefix("v1,")).peekable();
    if candidates.peek().is_none() {
        let found = signatures.split(',').next().unwrap_or_default().to_string();
        return Err(SignatureError::WrongScheme { header: "webhook-signature", found, expected: "v1,<base64>" });
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignatureError::BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matched = candidates
        .filter_map(|candidate| base64.decode(candidate).ok())
        .any(|tag| mac.clone().verify_slice(&tag).is_ok());
    if matched { Ok(()) } else { Err(SignatureError::Mismatch { header: "webhook-signature" }) }
}

/// The first of `names` that was sent (once), and its value.
fn one<'h>(headers: &'h [(String, String)], names: &[&'static str]) -> Result<(&'static str, &'h str), SignatureError> {
    for name in names {
        match headers::one(headers, name) {
            Ok(Some(value)) => return Ok((name, value)),
            Ok(None) => {}
            Err(count) => return Err(SignatureError::Duplicate { header: name, count }),
        }
    }
    Err(SignatureError::Missing { header: names[0] })
}

fn wrong_scheme(header: &'static str, found: &str, expected: &'static str) -> SignatureError {
    // The scheme is a short label; cap it so a garbage header does not end up whole in a log line.
    let found = found.chars().take(16).collect();
    SignatureError::WrongScheme { header, found, expected }
}

/// Checks `hex` (64 lowercase hex digits, as GitHub and Gitea send them) against HMAC-SHA256(secret, body).
fn check_hmac(header: &'static str, secret: &[u8], hex: &str, body: &[u8]) -> Result<(), SignatureError> {
    let lowercase_hex = hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex.len() != 64 || !lowercase_hex {
        return Err(SignatureError::Malformed { header, reason: "expected 64 lowercase hex digits" });
    }
    let tag = hex::decode(hex).map_err(|_| SignatureError::Malformed { header, reason: "not hex" })?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::NoSecret)?;
    mac.update(body);
    mac.verify_slice(&tag).map_err(|_| SignatureError::Mismatch { header })
}

#[cfg(test)]
mod tests;
