//! Validation shared by the operators with weights (convolutions and fully
//! connected layers): dtype rules, requantization, and the extra constant
//! inputs of their optimized variants.

use crate::error::Result;
use crate::format::{DType, FOLDED_BIAS_INPUT, PACKED_WEIGHTS_INPUT, REQUANT_BLOCKS_INPUT};
use crate::kernels;
use crate::model::TensorInfo;

use super::ctx::{cast, Ctx};
use super::params::Bounds;

/// The dtype rules of ops with weights: int8 activations need constant
/// int8 weights, an optional constant int32 bias of `channels`, a requant
/// tensor and int8 bounds; float ones need f32 weights and bias and f32
/// bounds.
pub(super) fn validate_weights(
    c: &Ctx<'_, '_>,
    x: &TensorInfo<'_>,
    w: &TensorInfo<'_>,
    y: &TensorInfo<'_>,
    channels: usize,
    act: Bounds,
) -> Result<()> {
    match x.dtype {
        DType::I8 => {
            c.check(y.dtype == DType::I8, "int8 input needs an int8 output")?;
            c.check_const(w, DType::I8, "int8 weights must be constant int8")?;
            c.quant_of(x)?;
            c.quant_of(y)?;
            c.quant_of(w)?;
            if let Some(b) = c.opt_input(2)? {
                c.check_const(&b, DType::I32, "int8 bias must be constant int32")?;
                c.check(b.numel() == channels, "bias length ≠ output channels")?;
            }
            let rq = c
                .opt_input(3)?
                .ok_or(c.err("int8 op needs a requant tensor"))?;
            c.check_requant(&rq, channels)?;
            c.check_act_i8(act)?;
        }
        DType::F32 => {
            c.check(
                y.dtype == DType::F32 && w.dtype == DType::F32,
                "float op must be all f32",
            )?;
            if let Some(b) = c.opt_input(2)? {
                c.check(
                    b.dtype == DType::F32 && b.numel() == channels,
                    "float bias must be f32 of the output channels",
                )?;
            }
            c.check(c.op.input(3).is_none(), "float op takes no requant")?;
            c.check_act_f32(act)?;
        }
        _ => return Err(c.err("supports i8 and f32 only")),
    }
    Ok(())
}

/// An f32 optimized variant: an f32 op, and the scratch it needs.
pub(super) fn validate_f32_opt(c: &Ctx<'_, '_>, x: &TensorInfo<'_>, scratch: usize) -> Result<()> {
    c.check(x.dtype == DType::F32, "f32 kernel variant on a non-f32 op")?;
    c.check_scratch(scratch, true, "f32 kernel variant without its scratch")
}

/// What every int8 optimized variant needs: an int8 op, a constant i32
/// folded bias of `channels` at [`FOLDED_BIAS_INPUT`], and, when the kernel
/// needs `scratch` bytes, an int8 arena tensor at least that large at
/// [`SCRATCH_INPUT`](crate::format::SCRATCH_INPUT); a blocked requantization table at
/// [`REQUANT_BLOCKS_INPUT`], when present, must say exactly what the
/// requant pairs say.
pub(super) fn validate_opt(
    c: &Ctx<'_, '_>,
    x: &TensorInfo<'_>,
    channels: usize,
    scratch: usize,
    blocks_allowed: bool,
) -> Result<()> {
    c.check(x.dtype == DType::I8, "optimized variants are int8 only")?;
    let fb = c
        .opt_input(FOLDED_BIAS_INPUT)?
        .ok_or(c.err("optimized variant without a folded bias"))?;
    c.check_const(&fb, DType::I32, "folded bias must be constant int32")?;
    c.check(
        fb.numel() == channels,
        "folded bias length ≠ output channels",
    )?;
    c.check_scratch(scratch, true, "optimized variant without its scratch")?;
    if let Some(t) = c.opt_input(REQUANT_BLOCKS_INPUT)? {
        // The table must say exactly what the [mult, shift] pairs say, so
        // the Helium epilogue computes what the reference would.
        c.check(
            blocks_allowed && c.tflite(),
            "blocked requant only for convolutions with TFLite rounding",
        )?;
        c.check_const(&t, DType::I32, "blocked requant must be constant int32")?;
        let rq = c.input(3)?;
        let pairs: &[i32] = cast(c.const_bytes(&rq, "requant out of range")?)?;
        c.check(
            pairs.len() == 2 * channels,
            "blocked requant needs per-channel requant pairs",
        )?;
        let blocks: &[i32] = cast(c.const_bytes(&t, "blocked requant out of range")?)?;
        c.check(
            blocks.len() == channels / 4 * kernels::opt::REQUANT_BLOCK_WORDS,
            "blocked requant length",
        )?;
        let mut want = [0i32; kernels::opt::REQUANT_BLOCK_WORDS];
        for (b, blk) in blocks.chunks_exact(want.len()).enumerate() {
            let p = pairs
                .get(8 * b..8 * b + 8)
                .ok_or(c.err("blocked requant length"))?;
            kernels::opt::requant_blocks(p, 4, &mut want);
            c.check(
                blk == want,
                "blocked requant disagrees with the requant pairs",
            )?;
        }
    }
    Ok(())
}

/// A packed filter, when present, must hold exactly the filter's values in
/// one of the two layouts, told apart by the length:
/// [`kernels::opt::pack_weights_s16`]'s (NEON) or
/// [`kernels::opt::pack_weights_dsp`]'s (Cortex-M DSP); `dsp_only` refuses
/// the NEON one. Checked element by element: the kernels read only the
/// packed copy.
pub(super) fn validate_packed_weights(
    c: &Ctx<'_, '_>,
    w: &TensorInfo<'_>,
    co: usize,
    k: usize,
    dsp_only: bool,
) -> Result<()> {
    let Some(t) = c.opt_input(PACKED_WEIGHTS_INPUT)? else {
        return Ok(());
    };
    let dsp = t.numel() == kernels::opt::dsp_weights_len(co, k);
    if dsp_only {
        c.check(dsp, "fully connected packed weights must be the DSP layout")?;
    }
    c.check_const(&t, DType::I16, "packed weights must be constant int16")?;
    c.check(
        dsp || t.numel() == kernels::opt::packed_weights_len(co, k),
        "packed weights length does not fit the filter",
    )?;
    let packed: &[i16] = cast(c.const_bytes(&t, "packed weights out of range")?)?;
    let wd: &[i8] = cast(c.const_bytes(w, "filter out of range")?)?;
    let same = if dsp {
        kernels::opt::dsp_weights_match(wd, co, k, packed)
    } else {
        kernels::opt::packed_weights_match(wd, co, k, packed)
    };
    c.check(same, "packed weights differ from the filter")
}
