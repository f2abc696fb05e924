//! Fuzzes the PNG reader (`ember_vision::png::decode_rgb888_bytes`, the
//! one `ember see` reads files with) and, for what it decodes, what `see`
//! does next: the centred crop to the model's aspect ratio, the bilinear
//! resize to its input (96×96, 32×32, or a tall 49×10, chosen by the input
//! length) and the int8 quantization table.
#![no_main]

use ember_vision::png::{decode_rgb888_bytes, MAX_DECODED_BYTES};
use ember_vision::{resize_bilinear_rgb888, ImageRef, Normalize, PixelFormat, QuantLut};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((rgb, w, h)) = decode_rgb888_bytes(data) else {
        return;
    };
    assert_eq!(rgb.len(), w * h * 3);
    assert!(rgb.len() <= MAX_DECODED_BYTES);
    let (mw, mh) = [(96, 96), (32, 32), (10, 49)][data.len() % 3];
    let img = ImageRef::new(&rgb, w, h, PixelFormat::Rgb888).expect("a decoded image is valid");
    let crop = img
        .center_crop_to_aspect(mw, mh)
        .expect("a crop of a valid image");
    let mut resized = vec![0u8; mw * mh * 3];
    resize_bilinear_rgb888(&crop, &mut resized, mw, mh).expect("resize");
    let norm = Normalize {
        pixel_scale: 1.0 / 255.0,
        pixel_offset: 0.0,
    };
    let mut x = vec![0i8; resized.len()];
    QuantLut::new(&norm, 1.0 / 255.0, -128)
        .apply(&resized, &mut x)
        .expect("quantize");
});
