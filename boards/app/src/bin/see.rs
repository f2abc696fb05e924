//! Vision on the device, from a camera frame to a label: the board's camera
//! (on simulated boards, a frame embedded in flash served through the same
//! `Camera` interface) → centre crop to the model's aspect ratio → bilinear
//! resize straight into the model's input tensor → quantization with the
//! model's input parameters (a 256-entry table) → the model → label and
//! confidence, with instruction counts for preprocessing and the model.
#![no_std]
#![no_main]

use ember_board::io::{Camera, FrameFormat, PixelFormat, StillCamera};
use ember_board::StaticArena;
use ember_runtime::{DType, Interpreter};
use ember_vision::{resize_bilinear_rgb888, ImageRef, Normalize, QuantLut};

/// The captured frame (the camera's DMA target on a real board).
static FRAME_BUF: StaticArena<{ model::FRAME_BYTES }> = StaticArena::new();

use ember_app::{board, model, run_app, ARENA};

board::entry!(start);

fn start() -> ! {
    run_app(run)
}

fn run<B: ember_board::Board>(b: &B) -> Result<i32, ember_runtime::Error> {
    defmt::println!(
        "ember-board {=str} unit {=str} hz {=u64} model {=str} image {=str}",
        B::NAME,
        B::TICK_UNIT,
        b.ticks_per_second(),
        model::NAME,
        model::FRAME_NAME
    );
    let format = FrameFormat {
        width: model::FRAME_WIDTH,
        height: model::FRAME_HEIGHT,
        pixels: PixelFormat::Rgb888,
    };
    let Some(mut camera) = StillCamera::new(model::FRAME, format) else {
        defmt::error!("ember-error no camera frame embedded (EMBER_FRAME)");
        return Ok(5);
    };
    let model = ember_app::load_model()?;
    let input = model.input_info(0)?;
    let d = input.dims();
    if d.len() != 4 || d[0] != 1 || d[3] != 3 || input.dtype != DType::I8 {
        defmt::error!("ember-error the model does not take an int8 NHWC RGB image");
        return Ok(5);
    }
    let (mh, mw) = (d[1], d[2]);
    let (Some(q_in), Some(q_out)) = (input.quant, model.output_info(0)?.quant) else {
        defmt::error!("ember-error the model's input and output must be quantized");
        return Ok(5);
    };
    let (Some(arena), Some(frame)) = (ARENA.take(), FRAME_BUF.take()) else {
        return Ok(3);
    };
    let mut it = Interpreter::<model::ModelKernels>::with_kernels(&model, arena)?;

    let t0 = b.now();
    if camera.capture(frame).is_err() {
        defmt::error!("ember-error camera capture failed");
        return Ok(5);
    }
    let t1 = b.now();
    let lut = QuantLut::new(
        &Normalize {
            pixel_scale: model::PIXEL_SCALE,
            pixel_offset: 0.0,
        },
        q_in.scale,
        q_in.zero_point,
    );
    let prepared = (|| {
        let img = ImageRef::new(
            frame,
            usize::from(format.width),
            usize::from(format.height),
            ember_vision::PixelFormat::Rgb888,
        )?;
        let crop = img.center_crop_to_aspect(mw, mh)?;
        let t = it
            .input_mut(0)
            .map_err(|_| ember_vision::VisionError::BadGeometry)?;
        resize_bilinear_rgb888(&crop, t.bytes, mw, mh)?;
        for v in t.bytes.iter_mut() {
            *v = lut.get(*v) as u8;
        }
        Ok::<(), ember_vision::VisionError>(())
    })();
    if let Err(e) = prepared {
        defmt::error!("ember-error preprocessing: {}", defmt::Display2Format(&e));
        return Ok(5);
    }
    let t2 = b.now();
    it.invoke()?;
    let t3 = b.now();

    let scores = it.output(0)?.as_i8()?;
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    let score = (i32::from(scores[best]) - q_out.zero_point) as f32 * q_out.scale;
    defmt::println!(
        "ember-see capture-ticks {=u64} preprocess-ticks {=u64} model-ticks {=u64}",
        t1 - t0,
        t2 - t1,
        t3 - t2
    );
    let label = model::LABELS.get(best).copied().unwrap_or("?");
    defmt::println!(
        "ember-saw {=str} class {=usize} score {=f32}",
        label,
        best,
        score
    );
    Ok(0)
}
