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

/// A PNG chunk: length, type, data, CRC-32 of type and data.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    c.extend_from_slice(&body);
    c.extend_from_slice(&ember_runtime::format::crc32(&body).to_be_bytes());
    c
}

/// A small file claiming a huge image (issue 24: a 69-byte PNG claiming
/// 65535×65535 RGBA16 made the reader allocate 17 GB up front) and a real
/// decompression bomb are refused from the header, at once.
#[test]
fn huge_pngs_are_refused_before_decoding() {
    let png = |w: u32, h: u32, depth: u8, color: u8, idat: &[u8]| {
        let mut f = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
        f.extend(chunk(b"IHDR", &ihdr));
        f.extend(chunk(b"IDAT", idat));
        f.extend(chunk(b"IEND", &[]));
        f
    };
    // zlib: a stored empty block.
    let empty = [
        0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
    ];
    let dir = std::env::temp_dir().join(format!("ember-png-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in [
        ("claims.png", png(65535, 65535, 16, 6, &empty)),
        ("gray.png", png(32768, 32768, 8, 0, &empty)),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, &bytes).unwrap();
        let t = std::time::Instant::now();
        let e = ember_vision::png::decode_rgb888(&p).expect_err("must be refused");
        assert!(
            e.to_string().contains("decodes to more than the 256 MiB"),
            "{name}: {e}"
        );
        assert!(t.elapsed().as_secs() < 2, "{name}: {:?}", t.elapsed());
    }
    // A small real image still decodes.
    let ok = dir.join("small.png");
    let mut raw = vec![];
    for _ in 0..2 {
        raw.extend_from_slice(&[0, 10, 20, 30, 40, 50, 60]);
    }
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend_from_slice(&(raw.len() as u16).to_le_bytes());
    z.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
    z.extend_from_slice(&raw);
    let adler = {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in &raw {
            a = (a + x as u32) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    };
    z.extend_from_slice(&adler.to_be_bytes());
    std::fs::write(&ok, png(2, 2, 8, 2, &z)).unwrap();
    let (px, w, h) = ember_vision::png::decode_rgb888(&ok).unwrap();
    assert_eq!((w, h, px.len()), (2, 2, 12));
}
