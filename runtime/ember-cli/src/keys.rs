//! `ember keygen`, `ember sign`, `ember verify`: Ed25519 keys and signed
//! blobs for over-the-air model updates (the firmware side is
//! `ember_runtime::signature`).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ember_compiler::sign::{from_hex, to_hex, SigningKey};
use ember_compiler::AlignedBlob;

/// The public key file that goes with the secret key file `key`.
pub fn public_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// Writes a new secret key to `key` (readable by its owner only) and its
/// public key to `key.pub`; refuses to overwrite either.
pub fn keygen(key: &Path) -> Result<PathBuf> {
    let public = public_path(key);
    for p in [key, &public] {
        if p.exists() {
            bail!("{} exists: not overwriting a key", p.display());
        }
    }
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .context("cannot read random bytes from /dev/urandom")?;
    let k = SigningKey::from_seed(seed);
    write_secret(key, &format!("{}\n", to_hex(&k.seed())))?;
    std::fs::write(&public, format!("{}\n", to_hex(&k.public_key())))
        .with_context(|| format!("cannot write {}", public.display()))?;
    Ok(public)
}

#[cfg(unix)]
fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(not(unix))]
fn write_secret(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A 32-byte key from a file of 64 hex digits.
pub fn read_key(path: &Path, what: &str) -> Result<[u8; 32]> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    std::str::from_utf8(&text)
        .ok()
        .and_then(from_hex)
        .with_context(|| {
            format!(
                "{}: not a {what} (expected 64 hexadecimal digits)",
                path.display()
            )
        })
}

/// Signs the blob at `model` with the secret key at `key`, writing the
/// signed blob to `output` (default: `model` itself).
pub fn sign(model: &Path, key: &Path, output: Option<&Path>) -> Result<PathBuf> {
    let k = SigningKey::from_seed(read_key(key, "secret key")?);
    let blob = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let signed = k
        .sign(&blob)
        .with_context(|| format!("{}: not a valid blob, not signing it", model.display()))?;
    let out = output.unwrap_or(model).to_path_buf();
    std::fs::write(&out, signed).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(out)
}

/// Checks the signature of the blob at `model` with the public key at
/// `public`, then validates the blob as the firmware would.
pub fn verify(model: &Path, public: &Path) -> Result<()> {
    let key = read_key(public, "public key")?;
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let aligned = AlignedBlob::new(&bytes);
    let m = ember_runtime::Model::load_signed(aligned.bytes(), &key)
        .with_context(|| format!("{}", model.display()))?;
    m.check_arena_plan(&mut vec![0; m.arena_plan_scratch_bytes()])
        .with_context(|| format!("{}", model.display()))?;
    Ok(())
}
