//! What the Ember firmware apps share: the board chosen by the Cargo
//! feature (`board`), the data embedded at build time (`model`), the arena,
//! the start-up/report/exit sequence, and a WAV recording played as a
//! microphone on simulated boards.
#![no_std]
#![deny(missing_docs)]

#[cfg(feature = "mps2-an386")]
pub use mps2_an386 as board;
#[cfg(feature = "mps3-an547")]
pub use mps3_an547 as board;
#[cfg(feature = "nrf52840-dk")]
pub use nrf52840_dk as board;
#[cfg(feature = "pico2")]
pub use pico2 as board;
#[cfg(feature = "stm32h735g-dk")]
pub use stm32h735g_dk as board;
#[cfg(feature = "virt-a53")]
pub use virt_a53 as board;

pub mod ota;

use ember_audio::wav::Wav;
use ember_board::io::Microphone;
use ember_board::StaticArena;

/// Model, input, expected output, recording and frame embedded by
/// `build.rs` (from `EMBER_MODEL`, `EMBER_INPUT`, …).
#[allow(missing_docs, dead_code)]
pub mod model {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}

/// Loads the embedded model on the kernels it runs on; a firmware built
/// with `EMBER_MODEL_PUBKEY` first checks the blob's signature and refuses
/// an unsigned or tampered one ([`ember_runtime::Error::BadSignature`]).
pub fn load_model() -> Result<ember_runtime::Model<'static>, ember_runtime::Error> {
    let blob: &'static [u8] = &model::EMBER_MODEL.0;
    match model::MODEL_PUBKEY {
        Some(key) => ember_runtime::Model::load_signed_with::<model::ModelKernels>(blob, &key),
        None => ember_runtime::Model::load_with::<model::ModelKernels>(blob),
    }
}

/// The tensor arena, sized from the model header at build time.
pub static ARENA: StaticArena<{ model::ARENA_BYTES }> = StaticArena::new();

/// Runs an app: paints the stack, brings the board up, runs `app`, reports
/// errors and the stack high-water mark, and exits with the app's code (2 on
/// a runtime error).
pub fn run_app(app: impl FnOnce(&board::Board) -> Result<i32, ember_runtime::Error>) -> ! {
    ember_board::stack::paint();
    let mut b = board::Board::init();
    let code = match app(&b) {
        Ok(code) => code,
        Err(e) => {
            defmt::error!("ember-error {}", e);
            2
        }
    };
    defmt::println!("ember-stack {=usize}", ember_board::stack::high_water());
    ember_board::finish(&mut b, code)
}

/// The recording embedded in flash (`model::WAV`) played as a microphone
/// (channel 0), for the voice apps on simulated boards.
pub struct WavMicrophone<'a> {
    wav: Wav<'a>,
    pos: usize,
}

impl WavMicrophone<'static> {
    /// The embedded recording; logs why and returns `None` if it is not a
    /// usable WAV.
    pub fn embedded() -> Option<Self> {
        match Wav::parse(model::WAV) {
            Ok(wav) => Some(WavMicrophone { wav, pos: 0 }),
            Err(e) => {
                defmt::error!(
                    "ember-error the embedded recording is not a usable WAV: {}",
                    defmt::Debug2Format(&e)
                );
                None
            }
        }
    }
}

/// The start every voice app shares: the board line (with the clip's
/// name), then the embedded recording as a microphone, which must be at
/// 16 kHz for `what` (the model named in the error). `None` after logging
/// why.
pub fn voice_app_start<B: ember_board::Board>(b: &B, what: &str) -> Option<WavMicrophone<'static>> {
    defmt::println!(
        "ember-board {=str} unit {=str} hz {=u64} model {=str} clip {=str}",
        B::NAME,
        B::TICK_UNIT,
        b.ticks_per_second(),
        model::NAME,
        model::WAV_NAME
    );
    let mic = WavMicrophone::embedded()?;
    if mic.sample_rate_hz() != 16_000 {
        defmt::error!(
            "ember-error the recording is sampled at {=u32} Hz; the {=str} model needs 16000 Hz",
            mic.sample_rate_hz(),
            what
        );
        return None;
    }
    Some(mic)
}

impl Microphone for WavMicrophone<'_> {
    type Error = core::convert::Infallible;

    fn sample_rate_hz(&self) -> u32 {
        self.wav.sample_rate
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.wav.frames().saturating_sub(self.pos));
        for (i, s) in buf[..n].iter_mut().enumerate() {
            *s = self.wav.sample(self.pos + i, 0);
        }
        self.pos += n;
        Ok(n)
    }
}
