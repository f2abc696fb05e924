//! Ed25519-signed blobs, for models that arrive over the air: a firmware
//! built with the signer's public key accepts a blob only if its signature
//! trailer (layout in [`crate::format`]) verifies, and checks that before
//! it parses, validates or runs any of the blob.
//!
//! ```text
//! static KEY: [u8; 32] = *include_bytes!("model.pub.bin");
//! let model = ember_runtime::Model::load_signed(BLOB, &KEY)?;
//! ```
//!
//! Verification hashes the whole blob (SHA-512) and does one Ed25519 check;
//! its cost on the simulated boards is reported by `cargo xtask
//! sign-check`.

use crate::error::{Error, Result};
use crate::format::{HEADER_BYTES, SIGNATURE_MAGIC, SIGNATURE_TRAILER_BYTES};
use crate::kernel_set::{AllKernels, KernelSet};
use crate::model::Model;
use ed25519_compact::{PublicKey, Signature};

/// Bytes of an Ed25519 public key.
pub const PUBLIC_KEY_BYTES: usize = 32;

/// Checks the signature trailer of `signed` against `public_key` and
/// returns the blob it covers (without the trailer; bytes after the
/// trailer are ignored, as flash padding is). Only the header's length
/// field is read before the signature is checked, to find the trailer;
/// the signature covers that field too.
pub fn verify<'a>(signed: &'a [u8], public_key: &[u8; PUBLIC_KEY_BYTES]) -> Result<&'a [u8]> {
    let total = signed
        .get(8..12)
        .filter(|_| signed.len() >= HEADER_BYTES)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or(Error::BadSignature("too short to be a blob"))?;
    let trailer = total
        .checked_add(SIGNATURE_TRAILER_BYTES)
        .and_then(|end| signed.get(total..end))
        .ok_or(Error::BadSignature("the blob is not signed"))?;
    if trailer[..8] != SIGNATURE_MAGIC {
        return Err(Error::BadSignature("the blob is not signed"));
    }
    if trailer[8..16] != public_key[..8] {
        return Err(Error::BadSignature("signed with another key"));
    }
    let key = PublicKey::new(*public_key);
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&trailer[16..]);
    key.verify(&signed[..total + 16], &Signature::new(sig))
        .map_err(|_| Error::BadSignature("signature does not match (tampered or corrupt)"))?;
    Ok(&signed[..total])
}

impl<'a> Model<'a> {
    /// [`Self::load`] for a signed blob: refuses it with
    /// [`Error::BadSignature`] unless its signature verifies with
    /// `public_key` ([`verify`]), before reading anything else of it.
    pub fn load_signed(signed: &'a [u8], public_key: &[u8; PUBLIC_KEY_BYTES]) -> Result<Model<'a>> {
        Self::load_signed_with::<AllKernels>(signed, public_key)
    }

    /// [`Self::load_with`] for a signed blob (see [`Self::load_signed`]).
    pub fn load_signed_with<S: KernelSet>(
        signed: &'a [u8],
        public_key: &[u8; PUBLIC_KEY_BYTES],
    ) -> Result<Model<'a>> {
        Self::load_with::<S>(verify(signed, public_key)?)
    }
}
