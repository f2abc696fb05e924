//! Generates the MicroFlow model binding for `MICROFLOW_MODEL` (a .tflite
//! path) and the int8 input `MICROFLOW_INPUT` (raw bytes, NHWC or
//! `[1, K]`) of shape `MICROFLOW_INPUT_SHAPE` (e.g. `1,49,10,1`), both
//! written by `cargo xtask bench`, and passes the board's linker scripts.

use std::fmt::Write as _;
use std::path::PathBuf;

fn fail(msg: String) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

fn env(var: &str) -> String {
    println!("cargo:rerun-if-env-changed={var}");
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| fail(format!("{var} is not set (cargo xtask bench sets it)")))
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let model = env("MICROFLOW_MODEL");
    let input = env("MICROFLOW_INPUT");
    println!("cargo:rerun-if-changed={model}");
    println!("cargo:rerun-if-changed={input}");
    let shape: Vec<usize> = env("MICROFLOW_INPUT_SHAPE")
        .split(',')
        .map(|d| {
            d.trim()
                .parse()
                .unwrap_or_else(|_| fail("bad MICROFLOW_INPUT_SHAPE".into()))
        })
        .collect();
    let n: usize = shape.iter().product();
    let bytes = std::fs::read(&input).unwrap_or_else(|e| fail(format!("{input}: {e}")));
    if bytes.len() != n {
        fail(format!(
            "{input}: {} bytes, the shape {shape:?} needs {n}",
            bytes.len()
        ));
    }
    let mut s = String::new();
    writeln!(s, "#[microflow::model({model:?})]\npub struct Model;").ok();
    writeln!(
        s,
        "pub static INPUT: [i8; {n}] = {:?};",
        bytes.iter().map(|&b| b as i8).collect::<Vec<_>>()
    )
    .ok();
    match shape.as_slice() {
        [1, h, w, c] => {
            writeln!(
                s,
                "pub type Input = microflow::buffer::Buffer4D<i8, 1, {h}, {w}, {c}>;\n\
                 pub fn input() -> Input {{\n\
                 [nalgebra::SMatrix::from_fn(|y, x| {{\n\
                 let mut px = [0i8; {c}];\n\
                 px.copy_from_slice(&INPUT[(y * {w} + x) * {c}..(y * {w} + x + 1) * {c}]);\n\
                 px }})]\n}}"
            )
            .ok();
        }
        [1, k] => {
            writeln!(
                s,
                "pub type Input = microflow::buffer::Buffer2D<i8, 1, {k}>;\n\
                 pub fn input() -> Input {{ nalgebra::SMatrix::from_fn(|_, x| INPUT[x]) }}"
            )
            .ok();
        }
        other => fail(format!(
            "MicroFlow inputs are [1, H, W, C] or [1, K], not {other:?}"
        )),
    }
    std::fs::write(out.join("model.rs"), s).unwrap_or_else(|e| fail(format!("{e}")));
    let script = std::env::vars()
        .find(|(k, _)| k.starts_with("DEP_EMBER_BOARD_") && k.ends_with("_LINKER_SCRIPT"))
        .map(|(_, v)| v)
        .unwrap_or_else(|| fail("no board feature enabled".into()));
    println!("cargo:rustc-link-arg=-T{script}");
    println!("cargo:rustc-link-arg=-Tdefmt.x");
}
