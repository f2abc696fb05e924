//! Embeds the model, the input and the expected output named by
//! `EMBER_MODEL`, `EMBER_INPUT` and `EMBER_EXPECT` (written by `cargo xtask
//! build`) and the audio clip named by `EMBER_WAV` (keyword-spotting app),
//! sizes the arena from the model's header, checks that model and arena fit
//! the board, and passes the board's linker scripts to the linker.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn fail(msg: String) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

fn read(var: &str, required: bool) -> (Vec<u8>, String) {
    println!("cargo:rerun-if-env-changed={var}");
    match std::env::var_os(var).filter(|p| !p.is_empty()) {
        Some(p) => {
            let path = PathBuf::from(p);
            println!("cargo:rerun-if-changed={}", path.display());
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| fail(format!("{var}={}: {e}", path.display())));
            (bytes, path.display().to_string())
        }
        None if required => fail(format!(
            "{var} is not set: it names the compiled model to embed (`cargo xtask build --board B --model M` sets it)"
        )),
        None => (Vec::new(), String::new()),
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The selected board's `cargo:KEY=…` metadata (from its `links` build script).
fn board_meta(key: &str) -> Option<String> {
    let suffix = format!("_{}", key.to_uppercase());
    std::env::vars()
        .find(|(k, _)| k.starts_with("DEP_EMBER_BOARD_") && k.ends_with(&suffix))
        .map(|(_, v)| v)
}

/// The mask of the kernels `model` runs on, read with the runtime itself.
/// Every kernel when `EMBER_KERNELS=all`, and when the blob does not load
/// on the host (the firmware then reports why, as it would for any bad
/// model).
fn kernel_bits(model: &[u8]) -> u128 {
    println!("cargo:rerun-if-env-changed=EMBER_KERNELS");
    match std::env::var("EMBER_KERNELS").as_deref() {
        Ok("all") => return ember_runtime::Kernels::ALL.bits(),
        Ok("model") | Err(_) => {}
        Ok(other) => fail(format!(
            "EMBER_KERNELS={other}: expected `model` (the kernels the embedded model runs on, the default) or `all`"
        )),
    }
    // The loader reads the blob in place, which needs 16-byte alignment.
    let mut words = vec![0u128; model.len().div_ceil(16)];
    let aligned: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    aligned[..model.len()].copy_from_slice(model);
    match ember_runtime::Model::load(&aligned[..model.len()]).and_then(|m| m.kernels()) {
        Ok(k) => k.bits(),
        Err(e) => {
            println!("cargo:warning=the embedded model does not load on the host ({e}); linking every kernel");
            ember_runtime::Kernels::ALL.bits()
        }
    }
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let (model, model_path) = read("EMBER_MODEL", true);
    let (input, _) = read("EMBER_INPUT", false);
    let (expect, _) = read("EMBER_EXPECT", false);
    let (wav, wav_path) = read("EMBER_WAV", false);
    let (frame, frame_path) = read("EMBER_FRAME", false);
    let env_or = |var: &str, default: &str| -> String {
        println!("cargo:rerun-if-env-changed={var}");
        std::env::var(var).unwrap_or_else(|_| default.to_string())
    };
    let frame_w: usize = env_or("EMBER_FRAME_WIDTH", "0").parse().unwrap_or(0);
    let frame_h: usize = env_or("EMBER_FRAME_HEIGHT", "0").parse().unwrap_or(0);
    if frame_w * frame_h * 3 != frame.len() {
        fail(format!(
            "EMBER_FRAME has {} bytes, not {frame_w}×{frame_h} RGB888 (EMBER_FRAME_WIDTH/HEIGHT)",
            frame.len()
        ));
    }
    let labels = env_or("EMBER_LABELS", "");
    // A firmware built with a public key loads only blobs it signed.
    let pubkey = env_or("EMBER_MODEL_PUBKEY", "");
    let pubkey: Option<Vec<u8>> = (!pubkey.trim().is_empty()).then(|| {
        let hex = pubkey.trim();
        (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .ok()
            .filter(|k| k.len() == 32 && hex.len() == 64)
            .unwrap_or_else(|| {
                fail(format!(
                    "EMBER_MODEL_PUBKEY={hex}: expected an Ed25519 public key, 64 hexadecimal digits (`ember keygen` writes one to KEY.pub)"
                ))
            })
    });
    // The signature check firmware tampers with a RAM copy of the blob.
    let sweep = env_or("EMBER_SIGN_SWEEP", "0") == "1";
    // The A/B update firmware keeps two slots (record + blob) in RAM.
    let ota = env_or("EMBER_OTA", "0") == "1";
    let pixel_scale: f32 = env_or("EMBER_PIXEL_SCALE", "1.0").parse().unwrap_or(1.0);

    if model.len() < 96 || &model[..4] != b"EMBR" {
        fail(format!(
            "{model_path} is not a compiled Ember model (compile the .onnx with `ember compile` or let `cargo xtask build` do it)"
        ));
    }
    let arena = (u32_at(&model, 20) as usize).max(16).next_multiple_of(16);

    let board = board_meta("name").unwrap_or_else(|| fail("no board feature enabled".into()));
    let flash: usize = board_meta("flash_bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let ram: usize = board_meta("ram_bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Boards with a region for simulated sensor data keep the recording
    // and the frame there (`.sensor_data`), out of the code flash.
    let sensor: usize = board_meta("sensor_bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bulk = wav.len() + frame.len();
    let in_flash = if sensor > 0 { 0 } else { bulk };
    if sensor > 0 && bulk > sensor {
        fail(format!(
            "the recording and frame ({bulk} B) do not fit {board}'s sensor-data region ({sensor} B)"
        ));
    }
    // Boards with a region for large models (external flash) keep a model
    // there when it does not fit the code flash (`.model_data`).
    let model_region: usize = board_meta("model_bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let model_apart = model_region > 0
        && model.len() + input.len() + expect.len() + in_flash > flash
        && model.len() <= model_region;
    let model_in_flash = if model_apart { 0 } else { model.len() };
    if model_region > 0 && model.len() > model_region && model.len() > flash {
        fail(format!(
            "the model does not fit {board}'s flash ({flash} B) nor its model region ({model_region} B): {} B",
            model.len()
        ));
    }
    let in_code_flash = model_in_flash + input.len() + expect.len() + in_flash;
    if in_code_flash > flash {
        fail(format!(
            "the model does not fit {board}'s flash: model {model_in_flash} B + input {} B + expected output {} B{} = {in_code_flash} B > {flash} B, over by {} B before any code",
            input.len(),
            expect.len(),
            if in_flash > 0 {
                format!(" + recording and frame {in_flash} B")
            } else {
                String::new()
            },
            in_code_flash - flash
        ));
    }
    if arena > ram {
        fail(format!(
            "the model's arena does not fit {board}'s RAM: arena {arena} B > {ram} B, over by {} B before stack and statics",
            arena - ram
        ));
    }

    let write = |name: &str, bytes: &[u8]| -> PathBuf {
        let p = out.join(name);
        std::fs::write(&p, bytes).unwrap_or_else(|e| fail(format!("{}: {e}", p.display())));
        p
    };
    let m = write("model.ember", &model);
    let i = write("input.bin", &input);
    let e = write("expect.bin", &expect);
    let w = write("clip.wav", &wav);
    let fr = write("frame.rgb", &frame);
    let name = Path::new(&model_path)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut src = String::new();
    let _ = writeln!(src, "/// Model file the firmware was built with.");
    let _ = writeln!(src, "pub const NAME: &str = {name:?};");
    let kernels = kernel_bits(&model);
    let _ = writeln!(
        src,
        "/// The kernels the model runs on: the firmware links only these."
    );
    let _ = writeln!(src, "pub struct ModelKernels;");
    let _ = writeln!(
        src,
        "impl ember_runtime::KernelSet for ModelKernels {{ const KERNELS: ember_runtime::Kernels = ember_runtime::Kernels::from_bits({kernels:#x}); }}"
    );
    let _ = writeln!(
        src,
        "/// The public key the embedded blob must be signed with (`None`: unsigned blobs load)."
    );
    match &pubkey {
        Some(k) => {
            let _ = writeln!(
                src,
                "pub const MODEL_PUBKEY: Option<[u8; 32]> = Some({k:?});"
            );
        }
        None => {
            let _ = writeln!(src, "pub const MODEL_PUBKEY: Option<[u8; 32]> = None;");
        }
    }
    let _ = writeln!(
        src,
        "/// Bytes of RAM the signature check firmware copies the blob into (0: no tampering sweep)."
    );
    let _ = writeln!(
        src,
        "pub const SIGN_SWEEP_BYTES: usize = {};",
        if sweep { model.len() } else { 0 }
    );
    let _ = writeln!(
        src,
        "/// Bytes of one A/B slot of the update firmware: 64-byte record area + blob (0: no slots)."
    );
    let _ = writeln!(
        src,
        "pub const OTA_SLOT_BYTES: usize = {};",
        if ota {
            (64 + model.len()).next_multiple_of(16)
        } else {
            0
        }
    );
    let _ = writeln!(src, "/// Arena bytes (from the model header).");
    let _ = writeln!(src, "pub const ARENA_BYTES: usize = {arena};");
    let _ = writeln!(
        src,
        "/// The compiled model, 16-byte aligned, read in place."
    );
    let _ = writeln!(
        src,
        "#[used] #[no_mangle] {}pub static EMBER_MODEL: ember_runtime::Aligned<[u8; {}]> = ember_runtime::Aligned(*include_bytes!({:?}));",
        if model_apart {
            "#[link_section = \".model_data\"] "
        } else {
            ""
        },
        model.len(),
        m.display()
    );
    let _ = writeln!(src, "/// Input bytes (all inputs, in order).");
    let _ = writeln!(
        src,
        "pub static INPUT: &[u8] = include_bytes!({:?});",
        i.display()
    );
    let _ = writeln!(
        src,
        "/// Expected output bytes (all outputs, in order; empty = no check)."
    );
    let _ = writeln!(
        src,
        "pub static EXPECT: &[u8] = include_bytes!({:?});",
        e.display()
    );
    let _ = writeln!(
        src,
        "/// Audio clip for the keyword-spotting app (empty = none)."
    );
    let section = if sensor > 0 {
        "#[link_section = \".sensor_data\"] "
    } else {
        ""
    };
    let _ = writeln!(
        src,
        "{section}static WAV_BYTES: [u8; {}] = *include_bytes!({:?});\npub static WAV: &[u8] = &WAV_BYTES;",
        wav.len(),
        w.display()
    );
    let clip = Path::new(&wav_path)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let _ = writeln!(src, "/// Name of the audio clip.");
    let _ = writeln!(src, "pub const WAV_NAME: &str = {clip:?};");
    let _ = writeln!(
        src,
        "/// Camera frame for the vision app, RGB888 (empty = none)."
    );
    let _ = writeln!(
        src,
        "{section}static FRAME_DATA: [u8; {}] = *include_bytes!({:?});\npub static FRAME: &[u8] = &FRAME_DATA;",
        frame.len(),
        fr.display()
    );
    let _ = writeln!(src, "/// Bytes in the frame.");
    let _ = writeln!(src, "pub const FRAME_BYTES: usize = {};", frame.len());
    let _ = writeln!(src, "/// Frame width.");
    let _ = writeln!(src, "pub const FRAME_WIDTH: u16 = {frame_w};");
    let _ = writeln!(src, "/// Frame height.");
    let _ = writeln!(src, "pub const FRAME_HEIGHT: u16 = {frame_h};");
    let frame_name = Path::new(&frame_path)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let _ = writeln!(src, "/// Name of the frame's source image.");
    let _ = writeln!(src, "pub const FRAME_NAME: &str = {frame_name:?};");
    let _ = writeln!(src, "/// Class labels, in output order.");
    let _ = writeln!(
        src,
        "pub static LABELS: &[&str] = &{:?};",
        labels
            .split(',')
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
    );
    let _ = writeln!(src, "/// Pixel normalisation the model was trained with.");
    let _ = writeln!(src, "pub const PIXEL_SCALE: f32 = {pixel_scale:?};");
    write("model.rs", src.as_bytes());

    if let Some(script) = board_meta("linker_script") {
        println!("cargo:rustc-link-arg=-T{script}");
    }
    println!("cargo:rustc-link-arg=-Tdefmt.x");
    println!("cargo:rerun-if-changed=build.rs");
}
