//! The Cortex-M DSP targets' widened filters: a `cortex-m4` blob carries
//! an int16 copy of every convolution and fully connected filter in the
//! `SMLAD` kernels' order, runs exactly as the blob without it (`--no-packed-weights`), and
//! a copy that differs from its filter is refused at load.

use ember_compiler::{aligned_arena, AlignedBlob, Options};
use ember_runtime::format::crc32;
use ember_runtime::kernels::opt::{dsp_weights_len, pack_weights_dsp, DSP_WEIGHTS_MARK};
use ember_runtime::{Error, Interpreter, Model};
use ember_tests::{mlperf, vectors};
use ndarray::ArrayD;

fn kws_m4(packed: bool) -> Vec<u8> {
    let opts = Options {
        target: "cortex-m4".parse().expect("known target"),
        no_packed_weights: !packed,
        ..Default::default()
    };
    let path = mlperf("kws", "kws_int8_qdq.onnx");
    ember_compiler::compile_file(&path, &opts)
        .expect("kws compiles")
        .blob
}

/// Where each widened filter's end marker sits in `blob`.
fn marks(blob: &[u8]) -> Vec<usize> {
    let m: Vec<u8> = DSP_WEIGHTS_MARK
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    blob.windows(m.len())
        .enumerate()
        .filter(|(_, w)| *w == m.as_slice())
        .map(|(i, _)| i)
        .collect()
}

fn outputs(blob: &[u8], rows: &[i8], per: usize) -> Result<Vec<i8>, Error> {
    let b = AlignedBlob::new(blob);
    let m = Model::load(b.bytes())?;
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::new(&m, arena.bytes_mut())?;
    let mut out = Vec::new();
    for row in rows.chunks_exact(per) {
        it.input_mut(0)?.copy_from(row)?;
        it.invoke()?;
        out.extend(it.output(0)?.bytes.iter().map(|&b| b as i8));
    }
    Ok(out)
}

#[test]
fn the_widened_layout_pairs_rows_and_swaps_the_middle_values() {
    // Two rows of six: one whole group of four per row, two values left.
    let w: Vec<i8> = (1..=12).collect();
    let mut p = vec![0i16; dsp_weights_len(2, 6)];
    assert_eq!(p.len(), 2 * 4 + 2);
    pack_weights_dsp(&w, 2, 6, &mut p);
    assert_eq!(&p[..8], &[1, 3, 2, 4, 7, 9, 8, 10]);
    assert_eq!(&p[8..], &DSP_WEIGHTS_MARK);
    // No whole pair of channels, or no whole group: nothing to pack.
    assert_eq!(dsp_weights_len(1, 64), 0);
    assert_eq!(dsp_weights_len(8, 3), 0);
}

#[test]
fn a_cortex_m4_blob_carries_widened_filters_and_runs_as_without_them() {
    let (with, without) = (kws_m4(true), kws_m4(false));
    // kws has five convolutions and one fully connected layer; each
    // filter is stored again, two bytes per value: the four 64×64
    // pointwise filters alone add 32 KB.
    assert_eq!(
        marks(&with).len(),
        6,
        "one widened filter per convolution and dense layer"
    );
    assert!(marks(&without).is_empty());
    assert!(with.len() > without.len() + 2 * 4 * 64 * 64);
    let x: ArrayD<i8> = vectors("kws", "mfcc_int8");
    let per = x.len() / x.shape()[0];
    let flat: Vec<i8> = x.iter().copied().take(8 * per).collect();
    assert_eq!(
        outputs(&with, &flat, per).expect("runs"),
        outputs(&without, &flat, per).expect("runs")
    );
}

#[test]
fn a_widened_filter_that_differs_from_its_filter_is_refused() {
    let mut blob = kws_m4(true);
    let at = *marks(&blob).first().expect("a widened filter");
    // The last weight before the marker.
    let i = at - 2;
    let v = i16::from_le_bytes([blob[i], blob[i + 1]]);
    blob[i..i + 2].copy_from_slice(&(v ^ 1).to_le_bytes());
    let c = crc32(&blob[16..]);
    blob[12..16].copy_from_slice(&c.to_le_bytes());
    let b = AlignedBlob::new(&blob);
    let err = Model::load(b.bytes()).expect_err("a corrupted copy is refused");
    assert!(
        err.to_string()
            .contains("packed weights differ from the filter"),
        "{err}"
    );
}
