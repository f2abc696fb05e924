//! The image front end (`ember-vision`, the code the boards run) turns the
//! shared PNGs into exactly the reference int8 inputs, and the compiled
//! models then give TFLite's reference label for every image.

use ember_runtime::{Interpreter, Model};
use ember_tests::{argmax, compile, mlperf, row_names, shared_dir, vectors};
use ember_vision::{resize_bilinear_rgb888, ImageRef, Normalize, PixelFormat, QuantLut};
use ndarray::{ArrayD, Axis};

fn check(model: &str, size: usize, pixel_scale: f32) {
    let blob = compile(&mlperf(model, &format!("{model}_int8_qdq.onnx")));
    let m = Model::load(blob.bytes()).unwrap();
    let q = m.input_info(0).unwrap().quant.unwrap();
    let inputs: ArrayD<i8> = vectors(model, "input_int8");
    let golden: ArrayD<i8> = vectors(model, "int8_tflite_ref_out");
    let lut = QuantLut::new(
        &Normalize {
            pixel_scale,
            pixel_offset: 0.0,
        },
        q.scale,
        q.zero_point,
    );
    let names = row_names(model);
    assert_eq!(names.len(), inputs.shape()[0]);
    for (row, name) in names.iter().enumerate() {
        let png = shared_dir().join(format!("images/{name}_{size}.png"));
        let (rgb, w, h) = ember_vision::png::decode_rgb888(&png).unwrap();
        let img = ImageRef::new(&rgb, w, h, PixelFormat::Rgb888).unwrap();
        let crop = img.center_crop_to_aspect(size, size).unwrap();
        let mut resized = vec![0u8; size * size * 3];
        resize_bilinear_rgb888(&crop, &mut resized, size, size).unwrap();
        let mut x = vec![0i8; resized.len()];
        lut.apply(&resized, &mut x).unwrap();
        let want = inputs.index_axis(Axis(0), row);
        let diff = x.iter().zip(want.iter()).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "{model} {name}: {diff} input values differ");

        let mut arena = ember_compiler::aligned_arena(m.arena_bytes());
        let mut it = Interpreter::new(&m, arena.bytes_mut()).unwrap();
        it.input_mut(0).unwrap().copy_from(&x).unwrap();
        it.invoke().unwrap();
        let out = it.output(0).unwrap().as_i8().unwrap().to_vec();
        let g = golden.index_axis(Axis(0), row);
        assert_eq!(
            argmax(&out),
            argmax(g.as_slice().unwrap()),
            "{model} {name}: label differs from the reference"
        );
    }
}

#[test]
fn vww_from_png_matches_reference_inputs_and_labels() {
    check("vww", 96, 1.0 / 255.0);
}

#[test]
fn ic_from_png_matches_reference_inputs_and_labels() {
    check("ic", 32, 1.0);
}
