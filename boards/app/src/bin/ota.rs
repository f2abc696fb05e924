//! A/B model update across power cuts (simulated boards): boots the slot
//! that [`ember_app::ota`] picks from the flash image `ota-flash.bin` in the
//! emulator's working directory (installing the embedded signed blob as
//! the factory image into a blank flash), runs its model on the embedded
//! input and checks the output; then, if `ota-plan.bin` asks for an update,
//! writes the embedded blob into the other slot with the power failing at
//! flash operation `cut` (exit 7), and saves the flash image for the next
//! boot. `cargo xtask ota-sweep` drives it.
#![no_std]
#![no_main]

use ember_board::semihosting::{read_file, write_file};
use ember_board::StaticArena;
use ember_runtime::{Error, Interpreter, Model};

use ember_app::ota::{SimFlash, Slots};
use ember_app::{board, model, run_app, ARENA};

board::entry!(start);

const IMAGE: &[u8] = b"ota-flash.bin\0";
const PLAN: &[u8] = b"ota-plan.bin\0";

/// The simulated flash: two slots.
static FLASH: StaticArena<{ 2 * model::OTA_SLOT_BYTES }> = StaticArena::new();

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
    let (Some(key), Some(mem)) = (model::MODEL_PUBKEY, FLASH.take()) else {
        defmt::error!("ember-error built without EMBER_MODEL_PUBKEY or EMBER_OTA");
        return Ok(6);
    };
    if mem.is_empty() {
        defmt::error!("ember-error built without EMBER_OTA: no slots");
        return Ok(6);
    }
    mem.fill(0xff);
    if read_file(IMAGE, mem).is_some_and(|n| n != mem.len()) {
        defmt::error!("ember-error the flash image is not the size of the slots");
        return Ok(6);
    }
    let mut plan = [0u8; 8];
    let (update, cut) = match read_file(PLAN, &mut plan) {
        Some(8) => (
            u32::from_le_bytes([plan[0], plan[1], plan[2], plan[3]]) == 1,
            u32::from_le_bytes([plan[4], plan[5], plan[6], plan[7]]),
        ),
        _ => (false, u32::MAX),
    };
    let signed: &[u8] = &model::EMBER_MODEL.0;
    let mut slots = Slots::new(
        SimFlash {
            mem,
            ops: 0,
            cut_at: u32::MAX,
        },
        model::OTA_SLOT_BYTES,
    );
    if slots.active(&key).is_none() && slots.record(0).is_none() && slots.record(1).is_none() {
        defmt::println!("ember-ota factory-install slot 0");
        if !slots.install(0, 1, signed, &key).unwrap_or(false) {
            defmt::error!("ember-error the factory blob does not install");
            return Ok(1);
        }
    }
    let Some((slot, rec)) = slots.active(&key) else {
        defmt::error!("ember-error no slot holds a valid model");
        return Ok(1);
    };
    defmt::println!("ember-ota boot slot {=usize} seq {=u32}", slot, rec.seq);
    {
        let blob = slots.blob(slot, rec);
        let m = Model::load_signed_with::<model::ModelKernels>(blob, &key)?;
        let Some(arena) = ARENA.take() else {
            return Ok(3);
        };
        let mut it = Interpreter::<model::ModelKernels>::with_kernels(&m, arena)?;
        let mut off = 0;
        for i in 0..m.num_inputs() {
            let t = it.input_mut(i)?;
            let n = t.bytes.len();
            let Some(src) = model::INPUT.get(off..off + n) else {
                return Ok(4);
            };
            t.bytes.copy_from_slice(src);
            off += n;
        }
        it.invoke()?;
        let mut off = 0;
        for i in 0..m.num_outputs() {
            let out = it.output(i)?;
            let n = out.bytes.len();
            if model::EXPECT.get(off..off + n) != Some(out.bytes) {
                defmt::error!(
                    "ember-error slot {=usize} runs but its output is wrong",
                    slot
                );
                return Ok(1);
            }
            off += n;
        }
        defmt::println!("ember-ota model ok");
    }
    let mut code = 0;
    if update {
        let target = 1 - slot;
        slots.flash().cut_at = cut;
        match slots.install(target, rec.seq + 1, signed, &key) {
            Ok(true) => defmt::println!(
                "ember-ota updated slot {=usize} seq {=u32} ops {=u32}",
                target,
                rec.seq + 1,
                slots.flash().ops
            ),
            Ok(false) => {
                defmt::error!("ember-error the new blob does not verify in its slot");
                return Ok(1);
            }
            Err(_) => {
                defmt::println!("ember-ota power-cut at op {=u32}", cut);
                code = 7;
            }
        }
    }
    if !write_file(IMAGE, slots.flash().mem) {
        defmt::error!("ember-error cannot save the flash image");
        return Ok(1);
    }
    Ok(code)
}
