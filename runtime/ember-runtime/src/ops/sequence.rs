//! Registration of the sequence-model (transformer) operators: batched
//! MatMul, fused attention, layer norm, element-wise functions, gather,
//! dynamically quantized fully connected, reductions, and the small
//! cast/compare/where/expand ops of attention-mask subgraphs.

use super::{cast, cast_mut, check_const, kernel_of, Ctx};
use crate::error::Result;
use crate::format::{variant, DType, OpCode, Storage, SCRATCH_INPUT};
use crate::kernel_set::{built, Kernel, KernelSet};
use crate::kernels::{
    self,
    attention::AttentionParams,
    broadcast::Broadcast,
    logic::{elem_size, CompareOp, Elems},
    matmul::StridedView,
    reduce::ReduceOp,
    unary::UnaryOp,
};
use crate::model::TensorInfo;

/// A strided view from params `i..i + 3` (strides) with the given extents.
fn view(c: &Ctx<'_, '_>, extents: (usize, usize, usize), i: usize) -> Result<StridedView> {
    Ok(StridedView {
        batch: extents.0,
        rows: extents.1,
        cols: extents.2,
        s_batch: c.pu(i)?,
        s_row: c.pu(i + 1)?,
        s_col: c.pu(i + 2)?,
    })
}

fn fits(v: &StridedView, t: &TensorInfo<'_>) -> bool {
    matches!(v.span(), Some(s) if s <= t.numel())
}

struct MatMulGeom {
    a: StridedView,
    b: StridedView,
}

fn matmul_geom(c: &Ctx<'_, '_>) -> Result<MatMulGeom> {
    let (batch, m, n, k) = (c.pu(0)?, c.pu(1)?, c.pu(2)?, c.pu(3)?);
    Ok(MatMulGeom {
        a: view(c, (batch, m, k), 4)?,
        b: view(c, (batch, k, n), 7)?,
    })
}

fn attention_params(c: &Ctx<'_, '_>, has_mask: bool) -> Result<AttentionParams> {
    let (h, sq, sk, d, dv) = (c.pu(0)?, c.pu(1)?, c.pu(2)?, c.pu(3)?, c.pu(4)?);
    Ok(AttentionParams {
        q: view(c, (h, sq, d), 5)?,
        k: view(c, (h, sk, d), 8)?,
        v: view(c, (h, sk, dv), 11)?,
        y: view(c, (h, sq, dv), 14)?,
        mask: if has_mask {
            Some(view(c, (h, sq, sk), 17)?)
        } else {
            None
        },
        scale: c.pf(20)?,
    })
}

/// `(outer, n, inner)` of a gather along `axis` of `x`.
fn gather_split(c: &Ctx<'_, '_>, x: &TensorInfo<'_>) -> Result<(usize, usize, usize)> {
    let axis = c.pu(0)?;
    c.check(axis < x.rank, "gather axis out of range")?;
    let d = x.dims();
    Ok((
        d[..axis].iter().product(),
        d[axis],
        d[axis + 1..].iter().product(),
    ))
}

fn is_f32(t: &TensorInfo<'_>) -> bool {
    t.dtype == DType::F32
}

fn check_scratch(c: &Ctx<'_, '_>, bytes: usize) -> Result<()> {
    let s = c.input(SCRATCH_INPUT)?;
    c.check(
        s.storage == Storage::Arena && s.dtype == DType::I8 && s.size >= bytes,
        "scratch must be an int8 arena tensor of the kernel's scratch size",
    )
}

fn const_f32_vec<'a>(
    c: &Ctx<'_, 'a>,
    t: &TensorInfo<'_>,
    len: usize,
    what: &'static str,
) -> Result<&'a [f32]> {
    check_const(c, t, DType::F32, what)?;
    c.check(t.numel() == len, what)?;
    let b = c.model.const_bytes(t).ok_or(c.err(what))?;
    cast(b)
}

/// Validates one of this module's ops.
pub(super) fn validate(c: &Ctx<'_, '_>) -> Result<()> {
    let y = c.output()?;
    match c.op.opcode {
        OpCode::MatMul => {
            c.need_inputs(2, 2)?;
            c.need_params(10)?;
            let (a, b) = (c.input(0)?, c.input(1)?);
            c.check(is_f32(&a) && is_f32(&b) && is_f32(&y), "matmul is f32 only")?;
            let g = matmul_geom(c)?;
            c.check(
                fits(&g.a, &a) && fits(&g.b, &b),
                "matmul view outside its tensor",
            )?;
            c.check(
                StridedView::dense(g.a.batch, g.a.rows, g.b.cols).numel() == Some(y.numel()),
                "matmul output size",
            )
        }
        OpCode::Attention => {
            c.need_inputs(SCRATCH_INPUT + 1, SCRATCH_INPUT + 1)?;
            c.need_params(21)?;
            let (q, k, v) = (c.input(0)?, c.input(1)?, c.input(2)?);
            let mask = c.opt_input(3)?;
            c.check(c.op.input(4).is_none(), "attention input 4 must be empty")?;
            c.check(
                is_f32(&q)
                    && is_f32(&k)
                    && is_f32(&v)
                    && is_f32(&y)
                    && mask.is_none_or(|m| is_f32(&m)),
                "attention is f32 only",
            )?;
            let p = attention_params(c, mask.is_some())?;
            c.check(
                fits(&p.q, &q)
                    && fits(&p.k, &k)
                    && fits(&p.v, &v)
                    && p.y.is_permutation_of(y.numel()),
                "attention view outside its tensor",
            )?;
            if let (Some(mv), Some(m)) = (p.mask, mask) {
                c.check(fits(&mv, &m), "attention mask view outside its tensor")?;
            }
            c.check(p.scale.is_finite(), "attention scale not finite")?;
            check_scratch(
                c,
                kernels::attention::attention_f32_scratch_size(p.k.rows, p.v.cols),
            )
        }
        OpCode::LayerNorm => {
            c.need_inputs(2, 3)?;
            c.need_params(1)?;
            let x = c.input(0)?;
            c.check(
                is_f32(&x) && is_f32(&y) && x.dims() == y.dims() && x.rank >= 1,
                "layer norm: f32, same shape",
            )?;
            let d = x.dims()[x.rank - 1];
            const_f32_vec(
                c,
                &c.input(1)?,
                d,
                "layer norm gamma must be constant f32 [D]",
            )?;
            if let Some(b) = c.opt_input(2)? {
                const_f32_vec(c, &b, d, "layer norm beta must be constant f32 [D]")?;
            }
            let eps = c.pf(0)?;
            c.check(eps.is_finite() && eps >= 0.0, "layer norm epsilon")
        }
        OpCode::Unary => {
            c.need_inputs(1, 1)?;
            c.need_params(1)?;
            let x = c.input(0)?;
            c.check(
                UnaryOp::from_i32(c.p(0)?).is_some(),
                "unknown unary function",
            )?;
            c.check(
                is_f32(&x) && is_f32(&y) && x.numel() == y.numel(),
                "unary: f32, same size",
            )
        }
        OpCode::Gather => {
            c.need_inputs(2, 2)?;
            c.need_params(1)?;
            let (x, idx) = (c.input(0)?, c.input(1)?);
            c.check(idx.dtype == DType::I32, "gather indices must be i32")?;
            c.check(
                x.dtype == y.dtype && x.quant == y.quant,
                "gather changes type or quantization",
            )?;
            let (outer, _, inner) = gather_split(c, &x)?;
            c.check(
                outer
                    .checked_mul(idx.numel())
                    .and_then(|v| v.checked_mul(inner))
                    == Some(y.numel()),
                "gather output size",
            )
        }
        OpCode::DynamicFullyConnected => {
            c.need_inputs(SCRATCH_INPUT + 1, SCRATCH_INPUT + 1)?;
            c.need_params(0)?;
            let (x, w) = (c.input(0)?, c.input(1)?);
            check_const(c, &w, DType::I8, "dynamic fc weights must be constant int8")?;
            c.check(
                w.rank == 2 && x.rank >= 1 && is_f32(&x) && is_f32(&y),
                "dynamic fc shapes",
            )?;
            let (n, k) = (w.dims()[0], w.dims()[1]);
            c.check(
                x.dims()[x.rank - 1] == k && k <= kernels::dynamic_fc::MAX_DEPTH,
                "dynamic fc depth",
            )?;
            let rows = x.numel() / k.max(1);
            c.check(
                rows.checked_mul(n) == Some(y.numel()),
                "dynamic fc output size",
            )?;
            let ws = c.input(2)?;
            let wsn = if ws.numel() == 1 { 1 } else { n };
            let s = const_f32_vec(
                c,
                &ws,
                wsn,
                "dynamic fc weight scales must be constant f32 [N or 1]",
            )?;
            c.check(
                s.iter().all(|v| v.is_finite()),
                "dynamic fc weight scale not finite",
            )?;
            if let Some(b) = c.opt_input(3)? {
                const_f32_vec(c, &b, n, "dynamic fc bias must be constant f32 [N]")?;
            }
            // The weight sums are checked against the weights, so the
            // kernel can trust them.
            let sums = c.input(4)?;
            check_const(
                c,
                &sums,
                DType::I32,
                "dynamic fc weight sums must be constant i32 [N]",
            )?;
            c.check(
                sums.numel() == n,
                "dynamic fc weight sums must be constant i32 [N]",
            )?;
            let sums: &[i32] = cast(c.model.const_bytes(&sums).ok_or(c.err("weight sums"))?)?;
            let wb: &[i8] = cast(c.model.const_bytes(&w).ok_or(c.err("weights"))?)?;
            let ok = k == 0
                || wb
                    .chunks_exact(k)
                    .zip(sums)
                    .all(|(r, &s)| r.iter().map(|&v| v as i32).sum::<i32>() == s);
            c.check(ok, "dynamic fc weight sums do not match the weights")?;
            check_scratch(
                c,
                kernels::dynamic_fc::fully_connected_dynamic_scratch_size(rows, k),
            )
        }
        OpCode::Reduce => {
            c.need_inputs(1, 1)?;
            c.need_params(4)?;
            let x = c.input(0)?;
            c.check(ReduceOp::from_i32(c.p(0)?).is_some(), "unknown reduction")?;
            let (o, n, i) = (c.pu(1)?, c.pu(2)?, c.pu(3)?);
            c.check(is_f32(&x) && is_f32(&y), "reduce is f32 only")?;
            c.check(
                o.checked_mul(n).and_then(|v| v.checked_mul(i)) == Some(x.numel())
                    && o.checked_mul(i) == Some(y.numel()),
                "reduce shape",
            )
        }
        OpCode::Cast => {
            c.need_inputs(1, 1)?;
            c.need_params(1)?;
            let x = c.input(0)?;
            c.check(x.numel() == y.numel(), "cast changes the size")?;
            c.check(matches!(c.p(0)?, 0 | 1), "cast to_bool must be 0 or 1")?;
            c.check(c.p(0)? == 0 || y.dtype == DType::U8, "bool casts output u8")
        }
        OpCode::Compare => {
            c.need_inputs(2, 2)?;
            c.need_params(1)?;
            let (a, b) = (c.input(0)?, c.input(1)?);
            c.check(CompareOp::from_i32(c.p(0)?).is_some(), "unknown comparison")?;
            c.check(
                a.dtype == b.dtype && y.dtype == DType::U8,
                "compare: same input types, u8 output",
            )?;
            Broadcast::new(a.dims(), b.dims(), y.dims())
                .map_err(|_| c.err("compare shapes do not broadcast"))?;
            Ok(())
        }
        OpCode::Where => {
            c.need_inputs(3, 3)?;
            c.need_params(0)?;
            let (cd, a, b) = (c.input(0)?, c.input(1)?, c.input(2)?);
            c.check(cd.dtype == DType::U8, "where condition must be u8")?;
            c.check(
                a.dtype == y.dtype && b.dtype == y.dtype,
                "where operands and output differ in type",
            )?;
            let ok = Broadcast::into_shape(a.dims(), b.dims(), y.dims()).is_ok()
                && Broadcast::into_shape(cd.dims(), a.dims(), y.dims()).is_ok();
            c.check(ok, "where shapes do not broadcast")
        }
        OpCode::Expand => {
            c.need_inputs(1, 1)?;
            c.need_params(0)?;
            let x = c.input(0)?;
            c.check(
                x.dtype == y.dtype && x.quant == y.quant,
                "expand changes the type",
            )?;
            Broadcast::new(x.dims(), y.dims(), y.dims())
                .map_err(|_| c.err("expand shapes do not broadcast"))?;
            Ok(())
        }
        _ => Err(c.err("not a sequence op")),
    }
}

/// Runs one of this module's ops.
pub(super) fn eval<S: KernelSet>(
    c: &Ctx<'_, '_>,
    ins: &[&[u8]],
    out: &mut [u8],
    scratch: &mut [u8],
) -> Result<()> {
    let x = c.input(0)?;
    let y = c.output()?;
    let need = |k: Kernel| {
        debug_assert_eq!(
            kernel_of(c.model, c.op),
            Ok(k),
            "kernel_of and eval disagree"
        );
        built::<S>(c.op.index, k)
    };
    match c.op.opcode {
        OpCode::MatMul => {
            need(Kernel::MatMul)?;
            let g = matmul_geom(c)?;
            kernels::matmul::matmul_f32(cast(ins[0])?, &g.a, cast(ins[1])?, &g.b, cast_mut(out)?)
        }
        OpCode::Attention => {
            need(Kernel::Attention)?;
            let has_mask = c.op.input(3).is_some();
            let p = attention_params(c, has_mask)?;
            let mask = if has_mask {
                Some(cast::<f32>(ins[3])?)
            } else {
                None
            };
            let n = kernels::attention::attention_f32_scratch_size(p.k.rows, p.v.cols);
            let s: &mut [f32] = cast_mut(scratch.get_mut(..n).ok_or(c.err("scratch"))?)?;
            kernels::attention::attention_f32(
                cast(ins[0])?,
                cast(ins[1])?,
                cast(ins[2])?,
                mask,
                &p,
                s,
                cast_mut(out)?,
            )
        }
        OpCode::LayerNorm => {
            let beta = if c.op.input(2).is_some() {
                Some(cast::<f32>(ins[2])?)
            } else {
                None
            };
            need(Kernel::LayerNorm)?;
            kernels::layer_norm::layer_norm_f32(
                cast(ins[0])?,
                cast(ins[1])?,
                beta,
                c.pf(0)?,
                cast_mut(out)?,
            )
        }
        OpCode::Unary => {
            let op = UnaryOp::from_i32(c.p(0)?).ok_or(c.err("unary kind"))?;
            need(Kernel::Unary)?;
            kernels::unary::unary_f32(op, cast(ins[0])?, cast_mut(out)?)
        }
        OpCode::Gather => {
            let (outer, n, inner) = gather_split(c, &x)?;
            need(Kernel::Gather)?;
            kernels::gather::gather(
                ins[0],
                outer,
                n,
                inner,
                elem_size(x.dtype),
                cast(ins[1])?,
                out,
            )
        }
        OpCode::DynamicFullyConnected => {
            let w = c.input(1)?;
            let (n, k) = (w.dims()[0], w.dims()[1]);
            let rows = x.numel() / k.max(1);
            let bias = if c.op.input(3).is_some() {
                Some(cast::<f32>(ins[3])?)
            } else {
                None
            };
            let kernel = if c.op.variant == variant::DYNAMIC_FC {
                need(Kernel::DynamicFullyConnectedOpt)?;
                kernels::opt::dynamic_fc::fully_connected_dynamic_f32_opt
            } else {
                need(Kernel::DynamicFullyConnected)?;
                kernels::dynamic_fc::fully_connected_dynamic_f32
            };
            kernel(
                cast(ins[0])?,
                rows,
                k,
                cast(ins[1])?,
                n,
                cast(ins[2])?,
                cast(ins[4])?,
                bias,
                cast_mut(scratch)?,
                cast_mut(out)?,
            )
        }
        OpCode::Reduce => {
            let op = ReduceOp::from_i32(c.p(0)?).ok_or(c.err("reduce kind"))?;
            need(Kernel::Reduce)?;
            kernels::reduce::reduce_f32(
                op,
                cast(ins[0])?,
                c.pu(1)?,
                c.pu(2)?,
                c.pu(3)?,
                cast_mut(out)?,
            )
        }
        OpCode::Cast => {
            need(Kernel::Cast)?;
            kernels::logic::cast(
                Elems::new(ins[0], x.dtype, x.numel())?,
                x.numel(),
                out,
                y.dtype,
                c.p(0)? == 1,
            )
        }
        OpCode::Compare => {
            let b = c.input(1)?;
            let op = CompareOp::from_i32(c.p(0)?).ok_or(c.err("compare kind"))?;
            need(Kernel::Compare)?;
            kernels::logic::compare(
                op,
                Elems::new(ins[0], x.dtype, x.numel())?,
                x.dims(),
                Elems::new(ins[1], b.dtype, b.numel())?,
                b.dims(),
                out,
                y.dims(),
            )
        }
        OpCode::Where => {
            let (a, b) = (c.input(1)?, c.input(2)?);
            need(Kernel::Where)?;
            kernels::logic::where_select(
                ins[0],
                x.dims(),
                ins[1],
                a.dims(),
                ins[2],
                b.dims(),
                elem_size(y.dtype),
                out,
                y.dims(),
            )
        }
        OpCode::Expand => {
            need(Kernel::Expand)?;
            kernels::logic::expand(ins[0], x.dims(), elem_size(x.dtype), out, y.dims())
        }
        _ => Err(c.err("not a sequence op")),
    }
}

/// Multiply-accumulates of one of this module's ops (element count for
/// element-wise ones).
pub(super) fn macs(c: &Ctx<'_, '_>) -> u64 {
    let m = |v: &[usize]| v.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64));
    let Ok(y) = c.output() else { return 0 };
    match c.op.opcode {
        OpCode::MatMul => match (c.pu(0), c.pu(1), c.pu(2), c.pu(3)) {
            (Ok(b), Ok(mm), Ok(n), Ok(k)) => m(&[b, mm, n, k]),
            _ => 0,
        },
        OpCode::Attention => match (c.pu(0), c.pu(1), c.pu(2), c.pu(3), c.pu(4)) {
            (Ok(h), Ok(sq), Ok(sk), Ok(d), Ok(dv)) => m(&[h, sq, sk, d + dv]),
            _ => 0,
        },
        OpCode::DynamicFullyConnected => match c.input(0) {
            Ok(x) if x.rank >= 1 => m(y.dims()).saturating_mul(x.dims()[x.rank - 1] as u64),
            _ => 0,
        },
        _ => m(y.dims()),
    }
}
