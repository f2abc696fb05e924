//! `cargo bench -p ember-tests`: host wall-clock per inference of the
//! MLPerf Tiny models, compiled for the generic target (optimized int8
//! kernels in their portable form on int8 models; not a test).

use std::time::Instant;

use ember_compiler::aligned_arena;
use ember_runtime::{Interpreter, Model};
use ember_tests::{compile, mlperf};

fn main() {
    println!("| model | file | MACs | arena B | blob B | µs / inference | MMAC/s |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (model, file) in [
        ("kws", "kws_int8_qdq.onnx"),
        ("vww", "vww_int8_qdq.onnx"),
        ("ic", "ic_int8_qdq.onnx"),
        ("ad", "ad_int8_qdq.onnx"),
        ("sww", "sww_int8_qdq.onnx"),
        ("kws", "kws_float32.onnx"),
        ("vww", "vww_float32.onnx"),
        ("ic", "ic_float32.onnx"),
    ] {
        let blob = compile(&mlperf(model, file));
        let m = Model::load(blob.bytes()).unwrap();
        let mut arena = aligned_arena(m.arena_bytes());
        let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
        it.invoke().unwrap(); // warm-up (inputs are zeros)
        let t0 = Instant::now();
        let mut n = 0u32;
        while t0.elapsed().as_secs_f64() < 1.0 || n < 5 {
            it.invoke().unwrap();
            n += 1;
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
        let macs = m.total_macs();
        println!(
            "| {model} | {file} | {macs} | {} | {} | {us:.0} | {:.0} |",
            m.arena_bytes(),
            m.blob_bytes(),
            macs as f64 / us
        );
    }
}
