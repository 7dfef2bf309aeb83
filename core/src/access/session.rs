//! The dashboard's login session: a cookie naming the key that logged in,
//! with an expiry, signed (HMAC-SHA256) with the session secret. The key is
//! looked up on each use, so revoking it ends its sessions.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A session's lifetime.
pub const SESSION_SECONDS: i64 = 12 * 60 * 60;

fn mac(secret: &[u8], payload: &str) -> String {
    // HMAC accepts a key of any length.
    let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    m.update(payload.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The cookie value for `key_name` until `expires` (Unix seconds).
pub fn sign(secret: &[u8], key_name: &str, expires: i64) -> String {
    let payload = format!("{key_name}.{expires}");
    format!("{payload}.{}", mac(secret, &payload))
}

/// The key name of a cookie value whose signature holds and that has not
/// expired at `now` (Unix seconds).
pub fn verify(secret: &[u8], value: &str, now: i64) -> Option<String> {
    let (payload, sig) = value.rsplit_once('.')?;
    let (name, expires) = payload.rsplit_once('.')?;
    let expires: i64 = expires.parse().ok()?;
    let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
        return None;
    };
    m.update(payload.as_bytes());
    let sig = hex::decode(sig).ok()?;
    m.verify_slice(&sig).ok()?;
    (expires > now).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_expiring_and_tamper_evident() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let v = sign(secret, "dash", 1_000);
        assert_eq!(verify(secret, &v, 999).as_deref(), Some("dash"));
        assert_eq!(verify(secret, &v, 1_000), None, "expired");
        assert_eq!(verify(b"another secret", &v, 999), None);
        assert_eq!(verify(secret, &v.replace("dash", "root"), 999), None);
        assert_eq!(
            verify(secret, &sign(secret, "dash", 2_000).replace("2000", "9999"), 999),
            None
        );
        assert_eq!(verify(secret, "garbage", 0), None);
    }
}
