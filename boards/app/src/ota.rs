//! A/B model slots that survive power loss, for over-the-air model updates.
//!
//! The flash holds two slots; each starts with a 32-byte commit record and
//! keeps its blob at [`BLOB_OFFSET`] (16-byte aligned, read in place). A
//! record names its blob's length and a sequence number, and ends with a
//! CRC-32 of itself. An update goes to the slot that is not running:
//!
//! 1. its record is erased first, so a half-written slot is never trusted;
//! 2. the new blob is programmed;
//! 3. the blob's signature is checked where it now lies;
//! 4. the record is programmed, its CRC word last: the commit.
//!
//! At boot the slot with an intact record, a blob whose signature verifies
//! and the highest sequence number runs. Power lost before the commit's
//! last word leaves the old slot the only valid one; after it, the new slot
//! wins. Only what is in flash outlives a power cut, so cutting between any
//! two flash operations (and tearing the one in progress) reaches every
//! state a cut at any instruction could leave.

use ember_runtime::format::crc32;
use ember_runtime::signature::{self, PUBLIC_KEY_BYTES};

/// Bytes of a commit record.
pub const RECORD_BYTES: usize = 32;
/// Where a slot's blob starts.
pub const BLOB_OFFSET: usize = 64;
const RECORD_MAGIC: [u8; 8] = *b"EMBROTA1";

/// The power failed during a flash operation.
#[derive(Debug)]
pub struct PowerCut;

/// Word-programmable flash (a NOR flash or MRAM driver, or a simulated one).
pub trait Flash {
    /// The whole flash, as read through the memory bus.
    fn bytes(&self) -> &[u8];
    /// Programs the 4 bytes at `at` (a multiple of 4); one operation.
    fn program(&mut self, at: usize, word: [u8; 4]) -> Result<(), PowerCut>;
}

/// What a slot's intact commit record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Higher runs first.
    pub seq: u32,
    /// Bytes of the signed blob.
    pub len: usize,
}

/// The two slots of a flash.
pub struct Slots<F> {
    flash: F,
    slot_bytes: usize,
}

impl<F: Flash> Slots<F> {
    /// Two slots of `slot_bytes` each (a multiple of 16) at the start of
    /// `flash`.
    pub fn new(flash: F, slot_bytes: usize) -> Self {
        Slots { flash, slot_bytes }
    }

    /// The flash.
    pub fn flash(&mut self) -> &mut F {
        &mut self.flash
    }

    fn slot(&self, i: usize) -> &[u8] {
        self.flash
            .bytes()
            .get(i * self.slot_bytes..(i + 1) * self.slot_bytes)
            .unwrap_or(&[])
    }

    /// Slot `i`'s record, if it is intact.
    pub fn record(&self, i: usize) -> Option<Record> {
        let r = self.slot(i).get(..RECORD_BYTES)?;
        let word = |at: usize| u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
        if r[..8] != RECORD_MAGIC || word(28) != crc32(&r[..28]) {
            return None;
        }
        let len = word(12) as usize;
        (len <= self.slot_bytes.saturating_sub(BLOB_OFFSET)).then_some(Record { seq: word(8), len })
    }

    /// Slot `i`'s signed blob as its record describes it.
    pub fn blob(&self, i: usize, rec: Record) -> &[u8] {
        self.slot(i)
            .get(BLOB_OFFSET..BLOB_OFFSET + rec.len)
            .unwrap_or(&[])
    }

    /// The slot to run: intact record, signature valid, highest sequence.
    pub fn active(&self, key: &[u8; PUBLIC_KEY_BYTES]) -> Option<(usize, Record)> {
        (0..2)
            .filter_map(|i| {
                let rec = self.record(i)?;
                signature::verify(self.blob(i, rec), key).ok()?;
                Some((i, rec))
            })
            .max_by_key(|&(_, rec)| rec.seq)
    }

    fn program(&mut self, at: usize, bytes: &[u8]) -> Result<(), PowerCut> {
        for (k, chunk) in bytes.chunks(4).enumerate() {
            let mut word = [0xff; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            self.flash.program(at + 4 * k, word)?;
        }
        Ok(())
    }

    /// Writes `signed` into slot `target` as sequence `seq` by the four
    /// steps of the module documentation. `Ok(false)` if the blob does not
    /// fit or its signature does not verify in place (the slot is then left
    /// uncommitted).
    pub fn install(
        &mut self,
        target: usize,
        seq: u32,
        signed: &[u8],
        key: &[u8; PUBLIC_KEY_BYTES],
    ) -> Result<bool, PowerCut> {
        let base = target * self.slot_bytes;
        if target > 1 || signed.len() > self.slot_bytes.saturating_sub(BLOB_OFFSET) {
            return Ok(false);
        }
        self.program(base, &[0xff; RECORD_BYTES])?;
        self.program(base + BLOB_OFFSET, signed)?;
        let placed = Record {
            seq,
            len: signed.len(),
        };
        if signature::verify(self.blob(target, placed), key).is_err() {
            return Ok(false);
        }
        let mut rec = [0u8; RECORD_BYTES];
        rec[..8].copy_from_slice(&RECORD_MAGIC);
        rec[8..12].copy_from_slice(&seq.to_le_bytes());
        rec[12..16].copy_from_slice(&(signed.len() as u32).to_le_bytes());
        let crc = crc32(&rec[..28]);
        rec[28..].copy_from_slice(&crc.to_le_bytes());
        self.program(base, &rec)?;
        Ok(true)
    }
}

/// RAM standing in for flash on a simulated board, with a power cut at
/// operation `cut_at`: that word is left torn (its first two bytes new, the
/// rest old) and every later operation fails.
pub struct SimFlash<'a> {
    /// The memory.
    pub mem: &'a mut [u8],
    /// Operations done so far.
    pub ops: u32,
    /// The operation the power fails in (`u32::MAX`: never).
    pub cut_at: u32,
}

impl Flash for SimFlash<'_> {
    fn bytes(&self) -> &[u8] {
        self.mem
    }

    fn program(&mut self, at: usize, word: [u8; 4]) -> Result<(), PowerCut> {
        let cut = self.ops >= self.cut_at;
        let dst = self.mem.get_mut(at..at + 4).ok_or(PowerCut)?;
        if cut {
            if self.ops == self.cut_at {
                dst[..2].copy_from_slice(&word[..2]);
            }
            return Err(PowerCut);
        }
        dst.copy_from_slice(&word);
        self.ops += 1;
        Ok(())
    }
}
