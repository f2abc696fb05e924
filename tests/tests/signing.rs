//! Signed blobs (issue 24): a blob signed with `ember_compiler::sign` loads
//! with the signer's public key, and changing any one byte of it, dropping
//! the signature or signing with another key is refused with
//! `Error::BadSignature` before the blob is read.

use ember_compiler::sign::SigningKey;
use ember_compiler::AlignedBlob;
use ember_runtime::format::SIGNATURE_TRAILER_BYTES;
use ember_runtime::{Error, Model};
use ember_tests::{compile, mlperf};

fn key(n: u8) -> SigningKey {
    SigningKey::from_seed([n; 32])
}

fn kws_blob() -> Vec<u8> {
    compile(&mlperf("kws", "kws_int8_qdq.onnx"))
        .bytes()
        .to_vec()
}

fn load_signed(bytes: &[u8], public: &[u8; 32]) -> Result<usize, Error> {
    let blob = AlignedBlob::new(bytes);
    Model::load_signed(blob.bytes(), public).map(|m| m.num_ops())
}

#[test]
fn signed_kws_blob_loads_and_every_changed_byte_is_refused() {
    let blob = kws_blob();
    let k = key(7);
    let signed = k.sign(&blob).unwrap();
    assert_eq!(signed.len(), blob.len() + SIGNATURE_TRAILER_BYTES);
    let ops = Model::load(AlignedBlob::new(&blob).bytes())
        .unwrap()
        .num_ops();
    assert_eq!(load_signed(&signed, &k.public_key()), Ok(ops));
    // Padding after the trailer (a flash page) is not part of what was signed.
    let mut padded = signed.clone();
    padded.extend_from_slice(&[0xff; 100]);
    assert_eq!(load_signed(&padded, &k.public_key()), Ok(ops));
    // Every byte, the header, the weights and the trailer alike, changed
    // once: two threads share the ~70,000 verifications.
    let public = k.public_key();
    let accepted: Vec<usize> = std::thread::scope(|s| {
        let halves: Vec<_> = (0..2)
            .map(|half| {
                let signed = &signed;
                s.spawn(move || {
                    let mut bytes = signed.clone();
                    let mut accepted = vec![];
                    for i in (half..bytes.len()).step_by(2) {
                        bytes[i] ^= 0x5a;
                        match load_signed(&bytes, &public) {
                            Err(Error::BadSignature(_)) => {}
                            _ => accepted.push(i),
                        }
                        bytes[i] ^= 0x5a;
                    }
                    accepted
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(accepted.is_empty(), "changed bytes accepted: {accepted:?}");
}

#[test]
fn unsigned_foreign_and_truncated_blobs_are_refused_by_name() {
    let blob = kws_blob();
    let k = key(1);
    let signed = k.sign(&blob).unwrap();
    let reason = |r: Result<usize, Error>| match r {
        Err(Error::BadSignature(why)) => why,
        other => panic!("expected a signature error, got {other:?}"),
    };
    assert_eq!(
        reason(load_signed(&blob, &k.public_key())),
        "the blob is not signed"
    );
    assert_eq!(
        reason(load_signed(&signed, &key(2).public_key())),
        "signed with another key"
    );
    // A key whose first 8 bytes match but the rest do not.
    let mut near = k.public_key();
    near[31] ^= 1;
    assert!(reason(load_signed(&signed, &near)).contains("does not match"));
    for len in [0, 10, 95, blob.len(), signed.len() - 1] {
        let r = reason(load_signed(&signed[..len], &k.public_key()));
        assert!(
            r == "too short to be a blob" || r == "the blob is not signed",
            "{len}: {r}"
        );
    }
    // Signing a signed blob replaces its signature.
    let resigned = key(2).sign(&signed).unwrap();
    assert_eq!(resigned.len(), signed.len());
    assert!(load_signed(&resigned, &key(2).public_key()).is_ok());
    // What is signed must be a valid blob.
    let mut broken = blob.clone();
    broken[200] ^= 1;
    assert!(matches!(
        k.sign(&broken),
        Err(Error::ChecksumMismatch { .. })
    ));
}
