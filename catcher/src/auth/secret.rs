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
