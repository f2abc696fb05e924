//! Fuzzes the CLI's `.npy` reader (`ember_cli::npy::read_into`) into the
//! input of a small model: the first byte picks a float32 input [1, 3, 4]
//! or an int8 input [2, 5], the rest is the file. When the file is
//! accepted the model runs once. The reader takes a path, so each process
//! writes the bytes to one file of its own in the temporary folder.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use ember_compiler::{aligned_arena, AlignedBlob};
use ember_fuzz::{compile_fixed, tiny_float, tiny_int8};
use ember_runtime::{Interpreter, Model};
use libfuzzer_sys::fuzz_target;

/// The two models, compiled and loaded once (the blobs live in a static
/// of their own, which the models borrow).
fn models() -> &'static [Model<'static>] {
    static BLOBS: OnceLock<[AlignedBlob; 2]> = OnceLock::new();
    static M: OnceLock<Vec<Model<'static>>> = OnceLock::new();
    M.get_or_init(|| {
        BLOBS
            .get_or_init(|| {
                [
                    compile_fixed(&tiny_float(), "float"),
                    compile_fixed(&tiny_int8(), "int8"),
                ]
            })
            .iter()
            .map(|b| Model::load(b.bytes()).expect("harness blob loads"))
            .collect()
    })
}

fn scratch_file() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        std::env::temp_dir().join(format!("ember-fuzz-npy-{}.npy", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, file)) = data.split_first() else {
        return;
    };
    let model = &models()[(which & 1) as usize];
    let path = scratch_file();
    std::fs::write(path, file).expect("write the scratch .npy");
    let mut arena = aligned_arena(model.arena_bytes());
    let mut it = Interpreter::new(model, arena.bytes_mut()).expect("bind");
    let info = model.input_info(0).expect("input 0");
    let mut dst = it.input_mut(0).expect("input 0");
    let allow_nonfinite = which & 2 != 0;
    if ember_cli::npy::read_into(path, &info, &mut dst, allow_nonfinite).is_ok() {
        it.invoke().expect("the model runs on an accepted input");
    }
});
