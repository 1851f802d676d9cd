//! Bearer secrets (enrollment tokens): 256 random bits, shown once, stored only as SHA-256.
//! A salted slow hash buys nothing for secrets this long; a fast one keeps checks cheap.

use sha2::{Digest, Sha256};

use super::AuthError;
use super::ca::random_bytes;

/// A new secret with its kind as a readable prefix (`ebk_enroll_…`).
pub fn generate(prefix: &str) -> Result<String, AuthError> {
    let bytes: [u8; 32] = random_bytes()?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// What is stored of a secret.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The catcher's redaction key (`data_dir/redaction.key`, 0600), made on first use: redacted
/// paths carry a keyed hash, so two views of one path match without revealing it to a guess.
pub fn redaction_key(path: &std::path::Path) -> Result<[u8; 32], AuthError> {
    use edgebackup_common::files::{create_private, read_private};
    if !path.exists() {
        let key: [u8; 32] = random_bytes()?;
        // Replicas starting together on one data directory: the first key written wins.
        if create_private(path, hex::encode(key).as_bytes())? {
            return Ok(key);
        }
    }
    let text = read_private(path)?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut key)
        .map_err(|_| AuthError::Crypto(format!("{} is not a 64-digit hex key", path.display())))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_random_and_stored_hashed() {
        let a = super::generate("ebk_enroll_").unwrap();
        let b = super::generate("ebk_enroll_").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("ebk_enroll_") && a.len() == 11 + 64, "{a}");
        assert_eq!(super::hash(&a).len(), 64);
        assert_ne!(super::hash(&a), a);
    }
}
