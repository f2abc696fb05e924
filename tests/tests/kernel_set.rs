//! A build that links only some kernels (a firmware's `KernelSet`) runs the
//! models those kernels cover exactly as the full runtime does, and refuses
//! every other model with an error that names the missing kernel.

use ember_compiler::{aligned_arena, AlignedBlob, Options};
use ember_runtime::{Error, Interpreter, Kernel, KernelSet, Kernels, Model};
use ember_tests::{mlperf, vectors};
use ndarray::ArrayD;

/// The kernels of the MLPerf Tiny keyword-spotting CNN compiled for the
/// Cortex-M55.
struct Kws;
impl KernelSet for Kws {
    const KERNELS: Kernels = Kernels::NONE
        .with(Kernel::ConvS8Opt)
        .with(Kernel::DepthwiseS8Opt)
        .with(Kernel::GlobalAvgPoolS8Opt)
        .with(Kernel::FullyConnectedS8Opt)
        .with(Kernel::SoftmaxS8);
}

/// The same without the depthwise convolution.
struct KwsWithoutDepthwise;
impl KernelSet for KwsWithoutDepthwise {
    const KERNELS: Kernels = Kernels::from_bits(
        Kws::KERNELS.bits() & !Kernels::NONE.with(Kernel::DepthwiseS8Opt).bits(),
    );
}

fn kws_m55() -> AlignedBlob {
    let opts = Options {
        target: "cortex-m55".parse().expect("known target"),
        ..Default::default()
    };
    let path = mlperf("kws", "kws_int8_qdq.onnx");
    let c = ember_compiler::compile_file(&path, &opts).expect("kws compiles");
    AlignedBlob::new(&c.blob)
}

/// Runs one row on the kernels of `S`.
fn run<S: KernelSet>(m: &Model<'_>, row: &[i8]) -> Result<Vec<i8>, Error> {
    let mut arena = aligned_arena(m.arena_bytes());
    let mut it = Interpreter::<S>::with_kernels(m, arena.bytes_mut())?;
    it.input_mut(0)?.copy_from(row)?;
    it.invoke()?;
    Ok(it.output(0)?.bytes.iter().map(|&b| b as i8).collect())
}

#[test]
fn a_model_lists_the_kernels_it_runs_on() {
    let blob = kws_m55();
    let m = Model::load(blob.bytes()).expect("kws loads");
    let names: Vec<_> = m
        .kernels()
        .expect("kernels")
        .iter()
        .map(|k| k.name())
        .collect();
    assert_eq!(
        names,
        [
            "conv2d_s8_opt",
            "depthwise_conv2d_s8_opt",
            "fully_connected_s8_opt",
            "global_avg_pool_s8_opt",
            "softmax_s8"
        ]
    );
    assert_eq!(m.kernels().expect("kernels"), Kws::KERNELS);
    assert_eq!(m.op_kernel(1), Ok(Kernel::DepthwiseS8Opt));
}

#[test]
fn the_models_own_kernels_give_the_full_runtimes_outputs() {
    let blob = kws_m55();
    let all = Model::load(blob.bytes()).expect("kws loads");
    let only = Model::load_with::<Kws>(blob.bytes()).expect("kws loads with its own kernels");
    let x: ArrayD<i8> = vectors("kws", "mfcc_int8");
    let per = x.len() / x.shape()[0];
    let flat: Vec<i8> = x.iter().copied().collect();
    for row in flat.chunks(per).take(4) {
        let want = run::<ember_runtime::AllKernels>(&all, row).expect("full runtime runs");
        assert_eq!(run::<Kws>(&only, row), Ok(want));
    }
}

#[test]
fn a_missing_kernel_is_named_at_load_and_at_bind() {
    let blob = kws_m55();
    let missing = Error::KernelNotBuilt {
        op: 1,
        kernel: Kernel::DepthwiseS8Opt,
    };
    let err = Model::load_with::<KwsWithoutDepthwise>(blob.bytes()).map(|_| ());
    assert_eq!(err, Err(missing));
    let msg = missing.to_string();
    assert!(
        msg.contains("op #1") && msg.contains("depthwise_conv2d_s8_opt"),
        "{msg}"
    );
    // A model loaded with every kernel still cannot run on fewer.
    let m = Model::load(blob.bytes()).expect("kws loads");
    let row = vec![0i8; m.input_info(0).expect("input").size];
    assert_eq!(run::<KwsWithoutDepthwise>(&m, &row), Err(missing));
}
