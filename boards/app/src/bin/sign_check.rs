//! Signed blobs on the device: built with `EMBER_MODEL_PUBKEY` and a blob
//! signed with its key (`cargo xtask sign-check`), it measures what the
//! signature check costs (the check alone, and the whole signed load), and,
//! when built with `EMBER_SIGN_SWEEP=1`, changes one byte at a time of a RAM
//! copy of the blob at spread positions (header, sections, weights,
//! trailer), drops the signature and tries another key: every one must be
//! refused with `BadSignature`. Exits 0 only if all of that holds.
#![no_std]
#![no_main]

use ember_board::StaticArena;
use ember_runtime::format::SIGNATURE_TRAILER_BYTES;
use ember_runtime::{signature, Error};

use ember_app::{board, model, run_app};

board::entry!(start);

/// The RAM copy the sweep tampers with.
static COPY: StaticArena<{ model::SIGN_SWEEP_BYTES }> = StaticArena::new();

/// Positions spread evenly over the blob, besides the header's first 16
/// bytes and every fourth byte of the trailer.
const SPREAD: usize = 128;

fn start() -> ! {
    run_app(run)
}

fn run<B: ember_board::Board>(b: &B) -> Result<i32, Error> {
    defmt::println!(
        "ember-board {=str} unit {=str} hz {=u64} model {=str}",
        B::NAME,
        B::TICK_UNIT,
        b.ticks_per_second(),
        model::NAME
    );
    let Some(key) = model::MODEL_PUBKEY else {
        defmt::error!("ember-error built without EMBER_MODEL_PUBKEY: nothing to check");
        return Ok(6);
    };
    let blob: &[u8] = &model::EMBER_MODEL.0;
    let t0 = b.now();
    let verified = signature::verify(blob, &key)?;
    let verify = b.now() - t0;
    let t0 = b.now();
    let model = ember_app::load_model()?;
    let load = b.now() - t0;
    defmt::println!(
        "ember-sign bytes {=usize} verify-ticks {=u64} signed-load-ticks {=u64} ops {=usize}",
        verified.len(),
        verify,
        load,
        model.num_ops()
    );
    if model::SIGN_SWEEP_BYTES == 0 {
        return Ok(0);
    }
    let Some(copy) = COPY.take() else {
        return Ok(3);
    };
    let Some(copy) = copy.get_mut(..blob.len()) else {
        return Ok(3);
    };
    copy.copy_from_slice(blob);
    let n = copy.len();
    let trailer = n.saturating_sub(SIGNATURE_TRAILER_BYTES);
    let positions = (0..16)
        .chain((0..SPREAD).map(|k| k * n / SPREAD))
        .chain((trailer..n).step_by(4));
    let (mut tried, mut refused) = (0usize, 0usize);
    for at in positions {
        copy[at] ^= 0x5a;
        tried += 1;
        match signature::verify(copy, &key) {
            Err(Error::BadSignature(_)) => refused += 1,
            _ => defmt::error!("ember-error changed byte {=usize} accepted", at),
        }
        copy[at] ^= 0x5a;
    }
    // Unsigned (the trailer cut off), and signed for another key.
    let mut other = key;
    other[0] ^= 1;
    let mut near = key;
    near[31] ^= 1;
    for attempt in [
        signature::verify(&copy[..trailer], &key),
        signature::verify(copy, &other),
        signature::verify(copy, &near),
    ] {
        tried += 1;
        match attempt {
            Err(Error::BadSignature(_)) => refused += 1,
            _ => defmt::error!("ember-error an unsigned or foreign blob was accepted"),
        }
    }
    // And the genuine copy still verifies.
    let genuine = signature::verify(copy, &key).is_ok();
    defmt::println!(
        "ember-sign sweep tried {=usize} refused {=usize} genuine {=bool}",
        tried,
        refused,
        genuine
    );
    Ok(if refused == tried && genuine { 0 } else { 1 })
}
