//! Random secrets shown once (API keys, shared links): `<kind>_<id>_<secret>`
//! with a public 32-bit id (to find the row) and 160 random bits, stored as
//! the id and the SHA-256 of the whole token. SHA-256 without a salt or
//! stretching is right here: the tokens are random, not passwords, so there
//! is nothing to guess from a leaked hash. Compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes of the secret part: 160 bits.
const SECRET_BYTES: usize = 20;
const ID_BYTES: usize = 4;

/// A freshly made token: the whole (shown once) and what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    pub token: String,
    /// `<kind>_<id>`: public, stored, how a token finds its row.
    pub prefix: String,
    pub hash: String,
}

fn random(n: usize) -> Result<Vec<u8>, getrandom::Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf)?;
    Ok(buf)
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token of `kind` (`ak` keys, `sl` shared links).
pub fn mint(kind: &str) -> Result<Minted, getrandom::Error> {
    let prefix = format!("{kind}_{}", hex::encode(random(ID_BYTES)?));
    let token = format!("{prefix}_{}", hex::encode(random(SECRET_BYTES)?));
    Ok(Minted {
        hash: hash(&token),
        prefix,
        token,
    })
}

/// The prefix a presented token claims, if it has the shape of `kind`.
pub fn prefix_of<'t>(kind: &str, token: &'t str) -> Option<&'t str> {
    let rest = token.strip_prefix(kind)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    let shaped = id.len() == ID_BYTES * 2
        && secret.len() == SECRET_BYTES * 2
        && id.bytes().chain(secret.bytes()).all(|b| b.is_ascii_hexdigit());
    shaped.then(|| &token[..kind.len() + 1 + id.len()])
}

/// Whether `token` is the one whose hash is `stored`, in constant time.
pub fn matches(token: &str, stored: &str) -> bool {
    hash(token).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_shaped_and_verified_by_hash() {
        let a = mint("ak").ok().unwrap_or_else(|| Minted {
            token: String::new(),
            prefix: String::new(),
            hash: String::new(),
        });
        let b = mint("ak").map(|m| m.token).unwrap_or_default();
        assert_ne!(a.token, b);
        assert_eq!(a.token.len(), 2 + 1 + 8 + 1 + 40);
        assert_eq!(prefix_of("ak", &a.token), Some(a.prefix.as_str()));
        assert!(matches(&a.token, &a.hash));
        assert!(!matches(&b, &a.hash));
        assert!(!a.hash.contains(&a.token[12..]), "the secret is not stored");
        assert_eq!(prefix_of("sl", &a.token), None);
        assert_eq!(prefix_of("ak", "ak_1234_short"), None);
        assert_eq!(prefix_of("ak", &format!("{}x", a.token)), None);
    }
}
