//! Fuzzes the blob loader and, for blobs that validate, one invocation.
//! The input's first byte chooses whether the checksum is recomputed, so
//! the fuzzer also reaches the structural validation behind it.
#![no_main]

use ember_runtime::format::crc32;
use ember_runtime::{Aligned, Interpreter, Model};
use libfuzzer_sys::fuzz_target;

static mut ARENA: Aligned<[u8; 1 << 20]> = Aligned([0; 1 << 20]);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut buf = vec![0u128; rest.len().div_ceil(16)];
    let bytes: &mut [u8] = bytemuck_bytes(&mut buf);
    let bytes = &mut bytes[..rest.len()];
    bytes.copy_from_slice(rest);
    if mode & 1 == 1 && bytes.len() >= 16 {
        let c = crc32(&bytes[16..]);
        bytes[12..16].copy_from_slice(&c.to_le_bytes());
    }
    if let Ok(model) = Model::load(bytes) {
        // SAFETY: libFuzzer runs targets on one thread; nothing else touches ARENA.
        let arena = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
        if let Ok(mut it) = Interpreter::new(&model, &mut arena.0) {
            let _ = it.invoke();
        }
    }
});

fn bytemuck_bytes(w: &mut [u128]) -> &mut [u8] {
    // SAFETY: u128 has no padding and every bit pattern is a valid u8.
    unsafe { core::slice::from_raw_parts_mut(w.as_mut_ptr() as *mut u8, core::mem::size_of_val(w)) }
}
