//! Signing blobs for over-the-air updates: the host half of
//! [`ember_runtime::signature`]. Keys are Ed25519 seeds; key files hold
//! 64 hexadecimal digits (the secret seed, or the public key) and a newline.

use ember_runtime::format::{SIGNATURE_MAGIC, SIGNATURE_TRAILER_BYTES};
use ember_runtime::signature::PUBLIC_KEY_BYTES;
use ember_runtime::{Error, Model};

use crate::AlignedBlob;

/// An Ed25519 signing key (its 32-byte seed).
#[derive(Clone)]
pub struct SigningKey {
    pair: ed25519_compact::KeyPair,
}

impl SigningKey {
    /// The key of a 32-byte secret seed (take it from a secure random
    /// source).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SigningKey {
            pair: ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed)),
        }
    }

    /// The 32-byte seed.
    pub fn seed(&self) -> [u8; 32] {
        *self.pair.sk.seed()
    }

    /// The public key that verifies this key's signatures.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_BYTES] {
        *self.pair.pk
    }

    /// `blob` (a valid blob, signed or not) followed by this key's
    /// signature trailer; a trailer already there is replaced, as is any
    /// padding after the blob.
    pub fn sign(&self, blob: &[u8]) -> Result<Vec<u8>, Error> {
        let aligned = AlignedBlob::new(blob);
        let model = Model::load(aligned.bytes())?;
        let total = model.blob_bytes();
        let mut signed = Vec::with_capacity(total + SIGNATURE_TRAILER_BYTES);
        signed.extend_from_slice(&blob[..total]);
        signed.extend_from_slice(&SIGNATURE_MAGIC);
        signed.extend_from_slice(&self.public_key()[..8]);
        let sig = self.pair.sk.sign(&signed, None);
        signed.extend_from_slice(&sig[..]);
        Ok(signed)
    }
}

/// 32 bytes as 64 lowercase hexadecimal digits.
pub fn to_hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hexadecimal digits (surrounding whitespace ignored) as 32 bytes.
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_bad_text() {
        let k = [0xa5u8; 32];
        assert_eq!(from_hex(&format!(" {}\n", to_hex(&k))), Some(k));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex(&"zz".repeat(32)), None);
        assert_eq!(from_hex(&"é".repeat(32)), None);
    }
}
